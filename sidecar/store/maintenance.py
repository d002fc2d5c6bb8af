"""The sweep's and the cleaner's SQL: a singleton lock, stuck jobs, retention in batches.

Every statement here is bounded (LIMIT) and uses an index that holds only
the rows it wants, so a sweep costs what there is to do, not the table size.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from sidecar.states import DOCUMENT_ENDS, JOB_ENDS, Status, sql_in
from sidecar.states import DONE_WITH_FILE as FILE_DONE
from sidecar.store.base import StoreBase
from sidecar.store.counts import add_counts
from sidecar.store.retry import retried
from sidecar.store.rows import LogEntry

RETENTION_BATCH = 500
ENDED = tuple(map(str, JOB_ENDS))
# Documents whose file is never read again (a retry resumes failed and cancelled ones):
# their path goes with their name, as WPForms' stored file name holds the person's.
DONE_WITH_FILE = sql_in(FILE_DONE)
# Retention's reads, each bounded and on the index that holds just its rows (the
# tests EXPLAIN them): parameters (status, days, limit), (days, limit), (days, limit).
VALUES_TO_DROP = (
    "SELECT id FROM {jobs} FORCE INDEX (keep_values)"
    " WHERE status = %s AND values_dropped_at IS NULL"
    " AND updated_at < UTC_TIMESTAMP(3) - INTERVAL %s DAY"
    " LIMIT %s FOR UPDATE")
OLD_COMPLETED_JOBS = (
    f"SELECT id, form_id FROM {{jobs}} FORCE INDEX (completed)"
    f" WHERE status = '{Status.COMPLETED.value}'"
    " AND completed_at < UTC_TIMESTAMP(3) - INTERVAL %s DAY LIMIT %s FOR UPDATE")
OLD_LOG_ROWS = (
    "SELECT id FROM {log} FORCE INDEX (job) WHERE job_id IS NULL"
    " AND created_at < UTC_TIMESTAMP(3) - INTERVAL %s DAY LIMIT %s FOR UPDATE")
OLD_INCIDENTS = (  # open incidents have no resolved_at: never in this range
    "SELECT id FROM {incidents} FORCE INDEX (resolved_at)"
    " WHERE resolved_at < UTC_TIMESTAMP(3) - INTERVAL %s DAY LIMIT %s FOR UPDATE")


class Maintenance(StoreBase):
    @contextmanager
    def named_lock(self, name: str) -> Iterator[bool]:
        """MySQL's GET_LOCK on a connection of its own: True if this process holds it.

        A lock of a connection that dies is released by the server, so a killed
        sweeper never blocks the next one.
        """
        conn = self.db.connect()
        cur = conn.cursor()
        held = False
        try:
            cur.execute("SELECT GET_LOCK(%s, 0)", (self.lock_name(name),))
            (got,) = cur.fetchone()  # type: ignore[misc]
            held = got == 1
            yield held
        finally:
            try:  # released now: the server ends a closed session a moment later
                if held:
                    cur.execute("SELECT RELEASE_LOCK(%s)", (self.lock_name(name),))
                    cur.fetchall()
            finally:
                conn.close()  # closing the session releases the lock in any case

    def meta(self, name: str) -> str | None:
        with self.db.transaction() as cur:
            cur.execute(f"SELECT value FROM {self.t.meta} WHERE name = %s", (name,))
            row = cur.fetchone()
        return str(row["value"]) if row else None

    @retried
    def set_meta(self, name: str, value: str) -> None:
        with self.db.transaction() as cur:
            cur.execute(f"INSERT INTO {self.t.meta} (name, value, updated_at)"
                        " VALUES (%s, %s, UTC_TIMESTAMP(3)) ON DUPLICATE KEY UPDATE"
                        " value = VALUES(value), updated_at = VALUES(updated_at)", (name, value))

    def stuck_jobs(self, limit: int = 500) -> list[int]:
        """Jobs in the documents phase whose documents have all ended: settle them."""
        with self.db.transaction() as cur:
            cur.execute(
                f"SELECT j.id FROM {self.t.jobs} j FORCE INDEX (status_created)"
                f" WHERE j.status = '{Status.PROCESSING.value}' AND j.phase = 'documents'"
                f" AND NOT EXISTS (SELECT 1 FROM {self.t.documents} d WHERE d.job_id = j.id"
                f"  AND d.status NOT IN {sql_in(DOCUMENT_ENDS)})"
                " LIMIT %s", (limit,))
            return [int(r["id"]) for r in cur.fetchall()]

    def drop_ended_values(self, status: str, days: int) -> tuple[int, int]:
        """Forget the submitted values of `status` jobs that ended more than `days` ago.

        The snapshot goes (NULL), values_dropped_at is set, and the documents'
        original names are blanked (a file name is a value), and the paths of
        those uploaded or rejected (WPForms' stored name holds the person's; a
        failed or cancelled document keeps its path for a retry; a sealed one keeps
        its sealed place, name and path in one box, which Reveal no longer opens). Returns
        (jobs, documents changed). The keep_values index holds the jobs of a status
        that still have values in the order they ended, so each batch reads
        only rows it changes. A job's updated_at is when it ended: nothing
        changes an ended job's row but a new transition (a retry, a restart).
        """
        if status not in ENDED:
            raise ValueError(f"not an ended status: {status!r}")
        jobs = documents = 0
        while True:
            batch, changed = self._drop_values_batch(status, days)
            jobs, documents = jobs + batch, documents + changed
            if batch < RETENTION_BATCH:
                return jobs, documents

    @retried
    def _drop_values_batch(self, status: str, days: int) -> tuple[int, int]:
        """One batch of drop_ended_values in one transaction: (jobs, documents changed)."""
        with self.db.transaction() as cur:
            cur.execute(VALUES_TO_DROP.format(jobs=self.t.jobs), (status, days, RETENTION_BATCH))
            ids = [int(r["id"]) for r in cur.fetchall()]
            if not ids:
                return 0, 0
            marks = ", ".join(["%s"] * len(ids))
            # A sealed snapshot or place goes with its key id (the seal_key index then
            # holds only what still needs a key: the doctor's and `keys reseal`'s rows).
            cur.execute(f"UPDATE {self.t.jobs} SET snapshot = NULL, seal_key = NULL,"
                        f" values_dropped_at = UTC_TIMESTAMP(3) WHERE id IN ({marks})", ids)
            cur.execute(f"UPDATE {self.t.documents} SET original_name = '',"
                        f" path = IF(status IN {DONE_WITH_FILE}, '', path),"
                        f" seal_key = IF(status IN {DONE_WITH_FILE}, NULL, seal_key)"
                        f" WHERE job_id IN ({marks}) AND (original_name <> ''"
                        f" OR (status IN {DONE_WITH_FILE} AND path <> ''))", ids)
            return len(ids), int(cur.rowcount)

    def delete_old_jobs(self, days: int) -> tuple[int, int]:
        """Delete jobs completed more than `days` ago (their documents and logs go with them),
        and the log rows of no job (sweeps, pauses, retention) older than that: (jobs, rows).

        Failed and cancelled jobs are kept until someone resolves them (their values
        go after FORMRELAY_KEEP_FAILED_DAYS). Only completed jobs have completed_at
        (a restart clears it), so the `completed` index holds just them; rows of no
        job are read through the `job` index, where they are the NULL prefix.
        """
        jobs = self._delete_in_batches(self.t.jobs, OLD_COMPLETED_JOBS, days)
        rows = self._delete_in_batches(self.t.log, OLD_LOG_ROWS, days)
        return jobs, rows

    def delete_old_incidents(self, days: int) -> int:
        """Delete incidents resolved more than `days` ago; their outbox rows go with them
        (ON DELETE CASCADE). Open incidents stay, however old."""
        return self._delete_in_batches(f"{self.prefix}formrelay_incidents", OLD_INCIDENTS, days)

    @retried
    def file_removed(self, document_id: int, job_id: int, entry: LogEntry) -> None:
        """Record that the document's file left the uploads directory, with its log row."""
        with self.db.transaction() as cur:
            now = self.now(cur)
            cur.execute(f"UPDATE {self.t.documents} SET file_removed_at = %s WHERE id = %s",
                        (now, document_id))
            self._log(cur, job_id, document_id, entry, None, now)

    def _delete_in_batches(self, table: str, select: str, days: int) -> int:
        """Delete the rows `select` finds, a batch per short transaction, until fewer
        than a batch are left. The ids are read first, on the index named there (a
        DELETE takes no index hint)."""
        total = 0
        while True:
            deleted = self._delete_batch(table, select, days)
            total += deleted
            if deleted < RETENTION_BATCH:
                return total

    @retried
    def _delete_batch(self, table: str, select: str, days: int) -> int:
        with self.db.transaction() as cur:
            cur.execute(select.format(jobs=self.t.jobs, log=self.t.log,
                                      incidents=f"{self.prefix}formrelay_incidents"),
                        (days, RETENTION_BATCH))
            rows = cur.fetchall()
            ids = [int(r["id"]) for r in rows]
            if ids:
                cur.execute(f"DELETE FROM {table} WHERE id IN"
                            f" ({', '.join(['%s'] * len(ids))})", ids)
            if table == self.t.jobs:  # every job read is completed (locked FOR UPDATE)
                gone = Counter((int(r["form_id"]), str(Status.COMPLETED)) for r in rows)
                add_counts(cur, self.prefix, {key: -n for key, n in gone.items()})
            return len(ids)
