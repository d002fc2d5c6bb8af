"""Claims: taking due work under a lease, and giving back work whose lease ran out.

A claim reads the `claim` index (due_priority, id), which holds only jobs that
wait (due_priority is NULL for every other status), in priority-then-age order,
so its cost follows the queue, never the history. With SKIP LOCKED each
claimer passes over rows another claimer has locked; without it (MariaDB <
10.6, MySQL < 8) candidates are read without locks and taken one by one under
a row lock that re-checks them, which is slower under contention but as safe.
"""

from __future__ import annotations

from typing import Any

from sidecar.states import Event, EventKind
from sidecar.store.base import DOCUMENT, JOB, Kind, StoreBase
from sidecar.store.rows import DOCUMENT_COLUMNS, JOB_COLUMNS, Document, Job, LogEntry

CLAIM = Event(EventKind.CLAIM)
DUE_JOBS = "due_priority IS NOT NULL AND next_attempt_at <= %s"


class ClaimStore(StoreBase):
    def claim(self, owner: str, limit: int, lease_seconds: int) -> list[Job]:
        """Take up to `limit` due jobs, highest priority (lowest number) first, then oldest."""
        if not self.skip_locked:
            return self._claim_without_skip_locked(owner, limit, lease_seconds)
        with self.db.transaction() as cur:
            now = self.now(cur)
            cur.execute(f"SELECT {JOB_COLUMNS} FROM {self.t.jobs} FORCE INDEX (claim)"
                        f" WHERE {DUE_JOBS} ORDER BY due_priority, id LIMIT %s"
                        " FOR UPDATE SKIP LOCKED", (now, limit))
            jobs = [Job.from_row(r) for r in cur.fetchall()]
            if not jobs:
                return []
            for job in jobs:
                self._apply(cur, JOB, job, CLAIM, now, lease=(owner, lease_seconds))
            ids = [job.id for job in jobs]
            cur.execute(f"SELECT {JOB_COLUMNS} FROM {self.t.jobs}"
                        f" WHERE id IN ({', '.join(['%s'] * len(ids))})", ids)
            by_id = {r["id"]: Job.from_row(r) for r in cur.fetchall()}
        return [by_id[i] for i in ids]

    def _claim_without_skip_locked(self, owner: str, limit: int, lease_seconds: int) -> list[Job]:
        with self.db.transaction() as cur:
            cur.execute(f"SELECT id FROM {self.t.jobs} FORCE INDEX (claim) WHERE {DUE_JOBS}"
                        " ORDER BY due_priority, id LIMIT %s", (self.now(cur), limit * 4))
            candidates = [int(r["id"]) for r in cur.fetchall()]
        taken: list[Job] = []
        for job_id in candidates:
            if len(taken) == limit:
                break
            job = self.claim_job(job_id, owner, lease_seconds)
            if job is not None:
                taken.append(job)
        return taken

    def claim_job(self, job_id: int, owner: str, lease_seconds: int) -> Job | None:
        """Lease one job if it is due; None when it is not (a duplicate or late task)."""
        row = self._claim_one(JOB, job_id, owner, lease_seconds)
        return row if isinstance(row, Job) else None

    def claim_document(self, document_id: int, owner: str, lease_seconds: int) -> Document | None:
        """Lease one document if it is due; None when it is not."""
        row = self._claim_one(DOCUMENT, document_id, owner, lease_seconds)
        return row if isinstance(row, Document) else None

    def _claim_one(self, kind: Kind, row_id: int, owner: str,
                   lease_seconds: int) -> Job | Document | None:
        with self.db.transaction() as cur:
            now = self.now(cur)
            row = self._select_for_update(cur, kind, row_id, skip_locked=True)
            due = row is not None and row.status in ("pending", "retrying") and (
                row.next_attempt_at is None or row.next_attempt_at <= now)
            if not due:
                return None
            assert row is not None
            self._apply(cur, kind, row, CLAIM, now, lease=(owner, lease_seconds))
            cur.execute(f"SELECT {kind.columns} FROM {kind.table(self.t)} WHERE id = %s",
                        (row_id,))
            return kind.row.from_row(cur.fetchone())

    def release_expired_leases(self, limit: int = 500) -> int:
        """Send work whose lease ran out back to the queue (or to failed, if out of attempts)."""
        released = 0
        for kind, columns in ((JOB, JOB_COLUMNS), (DOCUMENT, DOCUMENT_COLUMNS)):
            with self.db.transaction() as cur:
                now = self.now(cur)
                lock = " SKIP LOCKED" if self.skip_locked else ""
                cur.execute(f"SELECT {columns} FROM {kind.table(self.t)} FORCE INDEX (lease)"
                            " WHERE status = 'processing' AND lease_expires_at < %s"
                            f" LIMIT %s FOR UPDATE{lock}", (now, limit))
                for row in cur.fetchall():
                    stale: Any = kind.row.from_row(row)
                    self._apply(cur, kind, stale, Event(EventKind.LEASE_EXPIRED), now,
                                log=LogEntry("lease.expired", f"lease of {stale.lease_owner}"
                                             " expired", level="warning"))
                    released += 1
        return released

    def count_due(self) -> int:
        """Jobs waiting to be claimed now (claimed-but-locked ones included)."""
        with self.db.transaction() as cur:
            cur.execute(f"SELECT COUNT(*) AS n FROM {self.t.jobs} FORCE INDEX (claim)"
                        f" WHERE {DUE_JOBS}", (self.now(cur),))
            return int(cur.fetchone()["n"])
