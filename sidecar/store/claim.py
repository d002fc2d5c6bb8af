"""Claims: taking due work under a lease, and giving back work whose lease ran out.

The engine's one claim path: a doorbell names a job or a document, and the claim
takes that row by its primary key under a row lock (SKIP LOCKED where the server
has it: a second claimer of the same row gives up at once instead of waiting),
re-checks that it is waiting and due, and leases it. `due_work` finds what to ring
(the sweep, a resume, a worker's start) on the `claim` index (due_priority, id),
which holds only waiting jobs (due_priority is NULL for every other status), in
priority-then-age order, and on the documents' `due` index: both cost follow the
queue, never the history (bench/claim_scaling.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sidecar.states import CLAIMABLE, DOCUMENT_ENDS, Event, EventKind, Status, sql_in
from sidecar.store.base import DOCUMENT, JOB, Kind, StoreBase
from sidecar.store.retry import retried
from sidecar.store.rows import DOCUMENT_COLUMNS, JOB_COLUMNS, Document, Job, LogEntry

CLAIM = Event(EventKind.CLAIM)
# Given the shared row a claim watches (its value, the database's now): may it take?
Admit = Callable[[str | None, datetime, str], bool]  # (value, now, the row's partner)


@dataclass(frozen=True)
class PartnerRow:
    """Watch the claimed row's own partner's shared row: `base` for the default partner
    (and a row naming none), `base:<name>` for each other partner (sidecar.pause)."""

    base: str
    default: str


Watch = str | PartnerRow | None
DUE_JOBS = "due_priority IS NOT NULL AND next_attempt_at <= UTC_TIMESTAMP(3)"


class ClaimStore(StoreBase):
    def claim_job(self, job_id: int, owner: str, lease_seconds: int) -> Job | None:
        """Lease one job if it is due; None when it is not (a duplicate or late task)."""
        claimed = self._claim_one(JOB, job_id, owner, lease_seconds)
        return claimed[0] if claimed else None

    def claim_job_for_delivery(self, job_id: int, owner: str, lease_seconds: int,
                               max_attempts: int | None = None, watch: Watch = None,
                               admit: Admit | None = None, partner: str = ""
                               ) -> tuple[Job, str | None, str | None] | None:
        """claim_job, with the job's snapshot and the shared row `watch` (the outage pause)
        read in the same statement: (job, snapshot, shared value).

        `admit(shared value, now)` False (delivery is paused) takes nothing. `max_attempts`
        (the sidecar's FORMRELAY_MAX_ATTEMPTS) replaces the limit the row was created
        with: the bridge writes a default, the sidecar owns the policy. `partner` (the
        default partner's name) is written over a job's empty partner, by the same
        UPDATE: from then on the job keeps it.
        """
        claimed = self._claim_one(JOB, job_id, owner, lease_seconds, more=", snapshot",
                                  max_attempts=max_attempts, watch=watch, admit=admit,
                                  partner=partner)
        return (claimed[0], claimed[1]["snapshot"], claimed[1]["shared"]) if claimed else None

    def claim_document(self, document_id: int, owner: str, lease_seconds: int) -> Document | None:
        """Lease one document if it is due; None when it is not."""
        claimed = self._claim_one(DOCUMENT, document_id, owner, lease_seconds)
        return claimed[0] if claimed else None

    @retried
    def claim_document_for_delivery(self, document_id: int, owner: str, lease_seconds: int,
                                    watch: Watch = None, admit: Admit | None = None
                                    ) -> tuple[Document, Job, str | None] | None:
        """claim_document, with its job (read, not locked) in the same transaction, and
        the shared row `watch` as claim_job_for_delivery reads it."""
        with self.db.transaction() as cur:
            claimed = self._claim_in(cur, DOCUMENT, document_id, owner, lease_seconds,
                                     watch=watch, admit=admit)
            if claimed is None:
                return None
            cur.execute(f"SELECT {JOB_COLUMNS} FROM {self.t.jobs} WHERE id = %s",
                        (claimed[0].job_id,))
            return claimed[0], Job.from_row(cur.fetchone()), claimed[1]["shared"]

    @retried
    def _claim_one(self, kind: Kind, row_id: int, owner: str, lease_seconds: int,
                   more: str = "", max_attempts: int | None = None, watch: Watch = None,
                   admit: Admit | None = None, partner: str = ""
                   ) -> tuple[Any, dict[str, Any]] | None:
        with self.db.transaction() as cur:
            return self._claim_in(cur, kind, row_id, owner, lease_seconds, more, max_attempts,
                                  watch, admit, partner)

    def _claim_in(self, cur: Any, kind: Kind, row_id: int, owner: str, lease_seconds: int,
                  more: str = "", max_attempts: int | None = None, watch: Watch = None,
                  admit: Admit | None = None, partner: str = ""
                  ) -> tuple[Any, dict[str, Any]] | None:
        shared, params = self._watched(kind, watch)
        locked = self._select_for_update(cur, kind, row_id, skip_locked=True,
                                         more=f"{more}, {shared} AS shared", params=params)
        if locked is None:
            return None
        row, now, raw = locked
        if row.status not in CLAIMABLE or (
                row.next_attempt_at is not None and row.next_attempt_at > now):
            return None
        if admit is not None and not admit(raw["shared"], now, row.partner):
            return None
        extra: dict[str, Any] = {}
        if max_attempts is not None and max_attempts != row.max_attempts:
            row, extra = replace(row, max_attempts=max_attempts), {"max_attempts": max_attempts}
        if partner and kind is JOB and not row.partner:
            row, extra = replace(row, partner=partner), {**extra, "partner": partner}
        return self._apply(cur, kind, row, CLAIM, now, lease=(owner, lease_seconds),
                           extra=extra or None)[1], raw

    def _watched(self, kind: Kind, watch: Watch) -> tuple[str, tuple[Any, ...]]:
        """The claim's shared-row column (SQL) and its parameters."""
        if watch is None:
            return "NULL", ()
        if isinstance(watch, str):
            return f"(SELECT value FROM {self.t.meta} WHERE name = %s)", (watch,)
        table = kind.table(self.t)
        return (f"(SELECT value FROM {self.t.meta} WHERE name = IF({table}.partner IN ('', %s),"
                f" %s, CONCAT(%s, ':', {table}.partner)))", (watch.default, watch.base,
                                                             watch.base))

    def release_expired_leases(self, limit: int = 500) -> int:
        """Send work whose lease ran out back to the queue (or to failed, if out of attempts)."""
        return self._release("lease_expires_at < UTC_TIMESTAMP(3)", (), limit, "lease.expired",
                             "lease of {owner} expired")

    def release_leases_of(self, owner_prefix: str, limit: int = 500,
                          reason: str = "its worker stopped",
                          event: str = "lease.released") -> int:
        """Give back work still `processing` under leases whose owner starts with `owner_prefix`
        (a worker's id and ":", as it stops or once it is gone), as if the leases had
        expired, without waiting. `reason` ends the log row's message."""
        pattern = owner_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        message = "lease of {owner} released as " + reason.replace("{", "{{").replace("}", "}}")
        return self._release("lease_owner LIKE %s", (pattern + "%",), limit, event, message)

    def _release(self, where: str, params: tuple[Any, ...], limit: int, event: str,
                 message: str) -> int:
        released, ended_jobs = 0, set[int]()
        for kind, columns in ((JOB, JOB_COLUMNS), (DOCUMENT, DOCUMENT_COLUMNS)):
            count, ended = self._release_kind(kind, columns, where, params, limit, event,
                                              message)
            released, ended_jobs = released + count, ended_jobs | ended
        for job_id in ended_jobs:  # a document out of attempts may be its job's last
            self.settle_documents(job_id)
        return released

    @retried
    def _release_kind(self, kind: Kind, columns: str, where: str, params: tuple[Any, ...],
                      limit: int, event: str, message: str) -> tuple[int, set[int]]:
        """Release the jobs or the documents of _release: (how many, jobs of ended documents)."""
        released, ended_jobs = 0, set[int]()
        with self.db.transaction() as cur:
            lock = " SKIP LOCKED" if self.skip_locked else ""
            cur.execute(f"SELECT {columns}, UTC_TIMESTAMP(3) AS db_now"
                        f" FROM {kind.table(self.t)} FORCE INDEX (lease)"
                        f" WHERE status = '{Status.PROCESSING.value}' AND {where}"
                        f" LIMIT %s FOR UPDATE{lock}", (*params, limit))
            for raw in cur.fetchall():
                stale: Any = kind.row.from_row(raw)
                state, _ = self._apply(
                    cur, kind, stale, Event(EventKind.LEASE_EXPIRED), raw["db_now"],
                    log=LogEntry(event, message.format(owner=stale.lease_owner),
                                 level="warning"))
                if kind is DOCUMENT and state.status in DOCUMENT_ENDS:
                    ended_jobs.add(stale.job_id)
                released += 1
        return released, ended_jobs

    def due_work(self, limit: int = 1000) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Due jobs and due documents, as (id, priority), for ringing their doorbells."""
        with self.db.transaction() as cur:
            cur.execute(f"SELECT id, priority FROM {self.t.jobs} FORCE INDEX (claim)"
                        f" WHERE {DUE_JOBS} ORDER BY due_priority, id LIMIT %s", (limit,))
            jobs = [(int(r["id"]), int(r["priority"])) for r in cur.fetchall()]
            cur.execute(f"SELECT d.id, j.priority FROM {self.t.documents} d FORCE INDEX (due)"
                        f" JOIN {self.t.jobs} j ON j.id = d.job_id"
                        f" WHERE d.status IN {sql_in(CLAIMABLE)}"
                        " AND d.next_attempt_at <= UTC_TIMESTAMP(3) LIMIT %s", (limit,))
            documents = [(int(r["id"]), int(r["priority"])) for r in cur.fetchall()]
        return jobs, documents

    def count_due(self) -> int:
        """Jobs waiting to be claimed now (claimed-but-locked ones included)."""
        with self.db.transaction() as cur:
            cur.execute(f"SELECT COUNT(*) AS n FROM {self.t.jobs} FORCE INDEX (claim)"
                        f" WHERE {DUE_JOBS}")
            return int(cur.fetchone()["n"])
