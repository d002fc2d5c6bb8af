"""The sweep's and the cleaner's SQL: a singleton lock, stuck jobs, retention in batches.

Every statement here is bounded (LIMIT) and uses an index that holds only
the rows it wants, so a sweep costs what there is to do, not the table size.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sidecar.store.base import StoreBase

RETENTION_BATCH = 500


class Maintenance(StoreBase):
    @contextmanager
    def named_lock(self, name: str) -> Iterator[bool]:
        """MySQL's GET_LOCK on a connection of its own: True if this process holds it.

        A lock of a connection that dies is released by the server, so a killed
        sweeper never blocks the next one.
        """
        conn = self.db.connect()
        cur = conn.cursor()
        try:
            cur.execute("SELECT GET_LOCK(%s, 0)", (self.lock_name(name),))
            (got,) = cur.fetchone()  # type: ignore[misc]
            yield got == 1
        finally:
            conn.close()  # closing the session releases the lock

    def meta(self, name: str) -> str | None:
        with self.db.transaction() as cur:
            cur.execute(f"SELECT value FROM {self.t.meta} WHERE name = %s", (name,))
            row = cur.fetchone()
        return str(row["value"]) if row else None

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
                " WHERE j.status = 'processing' AND j.phase = 'documents'"
                f" AND NOT EXISTS (SELECT 1 FROM {self.t.documents} d WHERE d.job_id = j.id"
                "  AND d.status NOT IN ('uploaded', 'rejected', 'failed', 'cancelled'))"
                " LIMIT %s", (limit,))
            return [int(r["id"]) for r in cur.fetchall()]

    def drop_old_snapshots(self, days: int) -> int:
        """Forget the submitted values of jobs completed more than `days` ago."""
        return self._in_batches(
            f"UPDATE {self.t.jobs} SET snapshot = NULL WHERE status = 'completed'"
            " AND completed_at < UTC_TIMESTAMP(3) - INTERVAL %s DAY AND snapshot IS NOT NULL"
            " LIMIT %s", days)

    def delete_old_jobs(self, days: int) -> int:
        """Delete jobs completed more than `days` ago (their documents and logs go with them).

        Failed jobs are kept until someone resolves them.
        """
        jobs = self._in_batches(
            f"DELETE FROM {self.t.jobs} WHERE status = 'completed'"
            " AND completed_at < UTC_TIMESTAMP(3) - INTERVAL %s DAY LIMIT %s", days)
        self._in_batches(
            f"DELETE FROM {self.t.log} WHERE job_id IS NULL"
            " AND created_at < UTC_TIMESTAMP(3) - INTERVAL %s DAY LIMIT %s", days)
        return jobs

    def _in_batches(self, statement: str, days: int) -> int:
        """Run a bounded statement until it touches fewer rows than a batch.

        Each batch is its own short transaction, so no lock is held for long.
        """
        total = 0
        while True:
            with self.db.transaction() as cur:
                cur.execute(statement, (days, RETENTION_BATCH))
                changed = int(cur.rowcount)
            total += changed
            if changed < RETENTION_BATCH:
                return total
