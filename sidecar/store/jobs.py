"""Jobs, their documents and their log: create, read, and move through states."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mysql.connector import errorcode
from mysql.connector.errors import IntegrityError

from sidecar.errors import LeaseLost, StoreError
from sidecar.states import DOCUMENT_ENDS, Event, EventKind, State, Status
from sidecar.store.base import DOCUMENT, JOB, Kind, StoreBase
from sidecar.store.retry import retried
from sidecar.store.rows import (
    DOCUMENT_COLUMNS,
    JOB_COLUMNS,
    Document,
    Job,
    LogEntry,
    NewDocument,
    NewJob,
)


class JobStore(StoreBase):
    @retried
    def enqueue(self, job: NewJob) -> tuple[Job, bool]:
        """Insert a job, or return the one with the same reference: (job, created).

        The unique index on `reference` decides: the INSERT either lands or fails
        with a duplicate-key error, after which the existing row is read. There
        is no check-then-insert window for two writers to slip through.
        """
        with self.db.transaction() as cur:
            try:
                cur.execute(
                    f"INSERT INTO {self.t.jobs} (reference, source, partner, form_id, entry_id,"
                    " snapshot, seal_key, status, phase, priority, attempts, max_attempts,"
                    " next_attempt_at, created_at, updated_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, 'pending', 'record', %s, 0, %s,"
                    " UTC_TIMESTAMP(3), UTC_TIMESTAMP(3), UTC_TIMESTAMP(3))",
                    (job.reference, job.source, job.partner, job.form_id, job.entry_id,
                     job.snapshot, job.seal_key, job.priority, job.max_attempts),
                )
                created = True
            except IntegrityError as exc:
                if exc.errno != errorcode.ER_DUP_ENTRY:
                    raise
                created = False
            cur.execute(f"SELECT {JOB_COLUMNS} FROM {self.t.jobs} WHERE reference = %s",
                        (job.reference,))
            row = cur.fetchone()
            if created:
                self._log(cur, row["id"], None, LogEntry("job.created", f"from {job.source}"),
                          None, row["created_at"])
        return Job.from_row(row), created

    def get_job(self, job_id: int) -> Job | None:
        with self.db.transaction() as cur:
            cur.execute(f"SELECT {JOB_COLUMNS} FROM {self.t.jobs} WHERE id = %s", (job_id,))
            row = cur.fetchone()
        return Job.from_row(row) if row else None

    def job_status(self, job_id: int) -> tuple[Status, int] | None:
        """A job's status and priority (what a notify needs: two columns, not a Job)."""
        with self.db.transaction() as cur:
            cur.execute(f"SELECT status, priority FROM {self.t.jobs} WHERE id = %s", (job_id,))
            row = cur.fetchone()
        return (Status(row["status"]), int(row["priority"])) if row else None

    def get_document(self, document_id: int) -> Document | None:
        with self.db.transaction() as cur:
            cur.execute(f"SELECT {DOCUMENT_COLUMNS} FROM {self.t.documents} WHERE id = %s",
                        (document_id,))
            row = cur.fetchone()
        return Document.from_row(row) if row else None

    def documents(self, job_id: int) -> list[Document]:
        with self.db.transaction() as cur:
            cur.execute(f"SELECT {DOCUMENT_COLUMNS} FROM {self.t.documents} WHERE job_id = %s"
                        " ORDER BY id", (job_id,))
            return [Document.from_row(r) for r in cur.fetchall()]

    @retried
    def transition_job(self, job_id: int, event: Event, *, owner: str | None = None,
                       partner_id: str | None = None, documents: Sequence[NewDocument] = (),
                       log: LogEntry | None = None) -> State:
        """Apply an event to a job. With `owner`, only while that owner holds the lease.

        A record_sent event creates the job's document rows in the same
        transaction, so phase 2 never starts with half its documents.
        """
        if event.kind == EventKind.RECORD_SENT and event.has_documents != bool(documents):
            raise ValueError("record_sent: has_documents must match the documents given")
        with self.db.transaction() as cur:
            job, now = self._locked(cur, JOB, job_id, owner)
            new, _ = self._apply(cur, JOB, job, event, now, partner_id=partner_id, log=log)
            if documents:
                cur.executemany(
                    f"INSERT INTO {self.t.documents} (job_id, partner, field_id, label, position,"
                    " original_name, path, seal_key, size, status, attempts, max_attempts,"
                    " next_attempt_at, created_at, updated_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'pending', 0, %s, %s, %s, %s)",
                    [(job_id, job.partner, d.field_id, d.label[:255], d.position,
                      d.original_name, d.path, d.seal_key, d.size, d.max_attempts, now, now,
                      now)
                     for d in documents],
                )
                if job.values_dropped_at is not None:  # names read anew (from WPForms):
                    cur.execute(f"UPDATE {self.t.jobs} SET values_dropped_at = NULL"  # retention
                                " WHERE id = %s", (job_id,))  # drops them again when it ends
            if event.kind == EventKind.RESTART:  # from scratch: documents are found anew
                cur.execute(f"DELETE FROM {self.t.documents} WHERE job_id = %s", (job_id,))
            elif event.kind in (EventKind.RETRY, EventKind.CANCEL):
                self._cascade_to_documents(cur, job_id, event, now, log)
            return new

    @retried
    def transition_document(self, document_id: int, event: Event, *, owner: str | None = None,
                            partner_id: str | None = None, log: LogEntry | None = None,
                            facts: dict[str, Any] | None = None,
                            job_id: int | None = None) -> State:
        """Apply an event to one document. With `owner`, only while it holds the lease.

        `facts` records what the file checks found (size, detected_type, sha256).
        When the document ends, its job is settled in the same transaction. The
        job row is locked before the document's, the order every writer keeps.
        """
        unknown = set(facts or {}) - {"size", "detected_type", "sha256"}
        if unknown:
            raise ValueError(f"not document facts: {sorted(unknown)}")
        with self.db.transaction() as cur:
            if job_id is None:
                cur.execute(f"SELECT job_id FROM {self.t.documents} WHERE id = %s",
                            (document_id,))
                found = cur.fetchone()
                if found is None:
                    raise StoreError(f"document {document_id} does not exist")
                job_id = int(found["job_id"])
            job, _ = self._locked(cur, JOB, job_id, None)
            doc, now = self._locked(cur, DOCUMENT, document_id, owner)
            new, _ = self._apply(cur, DOCUMENT, doc, event, now, partner_id=partner_id, log=log,
                                 extra=facts)
            if new.status in DOCUMENT_ENDS:
                self._settle(cur, job, now)
            return new

    def _locked(self, cur: Any, kind: Kind, row_id: int, owner: str | None) -> tuple[Any, Any]:
        locked = self._select_for_update(cur, kind, row_id)
        if locked is None:
            raise StoreError(f"{kind.name} {row_id} does not exist")
        row, now, _ = locked
        if owner is not None and row.lease_owner != owner:
            raise LeaseLost(f"{kind.name} {row_id} is not leased to {owner}")
        return row, now

    def _cascade_to_documents(self, cur: Any, job_id: int, event: Event, now: Any,
                              log: LogEntry | None) -> None:
        """A job's retry resumes its failed or cancelled documents; a cancel stops the rest."""
        wanted = ((Status.FAILED, Status.CANCELLED) if event.kind == EventKind.RETRY
                  else (Status.PENDING, Status.RETRYING, Status.PROCESSING))
        cur.execute(f"SELECT {DOCUMENT_COLUMNS} FROM {self.t.documents} WHERE job_id = %s"
                    f" AND status IN ({', '.join(['%s'] * len(wanted))}) FOR UPDATE",
                    (job_id, *map(str, wanted)))
        for row in cur.fetchall():
            entry = LogEntry(f"document.{event.kind}", actor=log.actor if log else None)
            self._apply(cur, DOCUMENT, Document.from_row(row), event, now, log=entry)

    @retried
    def log(self, entry: LogEntry, job_id: int | None = None,
            document_id: int | None = None) -> None:
        """A log row that is not a state change (pauses, sweeps, admin notes)."""
        with self.db.transaction() as cur:
            self._log(cur, job_id, document_id, entry, None, self.now(cur))

    def job_log(self, job_id: int) -> list[dict[str, Any]]:
        with self.db.transaction() as cur:
            cur.execute(f"SELECT id, document_id, level, event, message, attempt, http_status,"
                        f" duration_ms, actor, created_at FROM {self.t.log} WHERE job_id = %s"
                        " ORDER BY id", (job_id,))
            return list(cur.fetchall())

    def document_counts_by_status(self) -> dict[str, int]:
        with self.db.transaction() as cur:
            cur.execute(f"SELECT status, COUNT(*) AS n FROM {self.t.documents} GROUP BY status")
            return {r["status"]: int(r["n"]) for r in cur.fetchall()}
