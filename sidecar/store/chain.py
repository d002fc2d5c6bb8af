"""A step's outcome and the claim of the job's next step, in one transaction.

A worker that sent a job's record goes on with its documents, one after the other,
without a round trip through the queue: the record's outcome creates the documents
with the first one already leased to it, and each document's outcome leases the next
claimable one in the same UPDATE. Every lease, log row and state transition is the
one the separate steps would write; only the statements that carried them are fewer.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Any

from sidecar.errors import LeaseLost, StoreError
from sidecar.states import CLAIMABLE, DOCUMENT_ENDS, Event, EventKind, State, Status
from sidecar.store.base import DOCUMENT, JOB, StoreBase, _as_written, settle_event
from sidecar.store.retry import retried
from sidecar.store.rows import Document, Job, LogEntry, NewDocument

CLAIM = Event(EventKind.CLAIM)


@dataclass(frozen=True)
class Next:
    """What a document's outcome left: its new state; the job's next document, leased
    to the same worker (or None); the job as locked; whether every other document of
    the job was uploaded then (so the next one is the last); the shared row watched;
    the database's clock, and the monotonic time it was read at."""

    state: State
    document: Document | None
    job: Job
    last: bool
    shared: str | None
    now: datetime
    read_at: float
J_COLUMNS = ", ".join(f"j.{f.name} AS j_{f.name}" for f in fields(Job))
D_COLUMNS = ", ".join(f"d.{f.name} AS d_{f.name}" for f in fields(Document))
NO_DATE = datetime(1970, 1, 1)


def since(db_now: datetime, monotonic_then: float) -> datetime:
    """The database's clock now, from a reading of it and the local monotonic clock
    (milliseconds, as DATETIME(3) keeps): the steps between a claim and its outcome
    need no second reading."""
    now = db_now + timedelta(seconds=max(0.0, time.monotonic() - monotonic_then))
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class ChainStore(StoreBase):
    @retried
    def record_sent(self, job: Job, owner: str, partner_id: str, documents: Sequence[NewDocument],
                    log: LogEntry, now: datetime, next_owner: str | None,
                    lease_seconds: int) -> tuple[State, Document | None]:
        """The record's outcome (job leased to `owner`, as `job` was written by its claim):
        the job moves on, and its documents are created, the first leased to `next_owner`.

        Returns the job's new state and that first document (None without documents).
        LeaseLost if the job is no longer `owner`'s.
        """
        event = Event(EventKind.RECORD_SENT, has_documents=bool(documents))
        with self.db.transaction() as cur:
            extra = {"values_dropped_at": None} if (  # names read anew (from WPForms):
                documents and job.values_dropped_at is not None) else None  # retention redrops
            new, _ = self._apply(cur, JOB, job, event, now, partner_id=partner_id, log=log,
                                 extra=extra, owner=owner)
            if not documents:
                return new, None
            rows = [_pending(job.id, d, now, job.partner) for d in documents]
            first = rows[0]
            if next_owner is not None:
                claimed, sets = self._next(DOCUMENT, first, CLAIM, now,
                                           lease=(next_owner, lease_seconds))
                first = rows[0] = _as_written(first, sets, claimed)
            columns = [f.name for f in fields(Document) if f.name != "id"]
            one = f"({', '.join(['%s'] * len(columns))})"
            cur.execute(f"INSERT INTO {self.t.documents} ({', '.join(columns)}) VALUES"
                        f" {', '.join([one] * len(rows))}",
                        [_value(getattr(r, c)) for r in rows for c in columns])
            return new, replace(first, id=int(cur.lastrowid))  # the first row's id

    @retried
    def document_done(self, job_id: int, document_id: int, owner: str, event: Event,
                      partner_id: str | None = None, log: LogEntry | None = None,
                      facts: dict[str, Any] | None = None, next_owner: str | None = None,
                      lease_seconds: int = 0, watch: str | None = None) -> Next:
        """A document's outcome (while `owner` holds it); the job settled if it was the
        last to end; and, with `next_owner`, the job's next claimable document leased to
        it. The job row and all its documents are locked in one statement, job first.
        """
        with self.db.transaction() as cur:
            shared = "NULL" if watch is None else (
                f"(SELECT value FROM {self.t.meta} WHERE name = %s)")
            cur.execute(f"SELECT {J_COLUMNS}, {D_COLUMNS}, {shared} AS shared,"
                        f" UTC_TIMESTAMP(3) AS db_now FROM {self.t.jobs} j"
                        f" JOIN {self.t.documents} d ON d.job_id = j.id WHERE j.id = %s"
                        " ORDER BY d.id FOR UPDATE", (*(() if watch is None else (watch,)),
                                                     job_id))
            raw = cur.fetchall()
            if not raw:
                raise StoreError(f"job {job_id} has no documents")
            now: datetime = raw[0]["db_now"]
            job = Job.from_row({k[2:]: v for k, v in raw[0].items() if k.startswith("j_")})
            docs = [Document.from_row({k[2:]: v for k, v in r.items() if k.startswith("d_")})
                    for r in raw]
            doc = next((d for d in docs if d.id == document_id), None)
            if doc is None or doc.lease_owner != owner:
                raise LeaseLost(f"document {document_id} is not leased to {owner}")
            new, sets = self._next(DOCUMENT, doc, event, now, partner_id=partner_id,
                                   extra=facts)
            writes: list[Any] = [(DOCUMENT, doc.id, sets, None)]
            self._log_step(DOCUMENT, doc, event, new, now, log)
            ended = [(new.status, new.last_error) if d.id == doc.id else
                     (Status(d.status), d.last_error) for d in docs]
            settled = None
            if new.status in DOCUMENT_ENDS:
                settled = settle_event(job, [(s, e, d.error_category if d.id != doc.id
                                              else sets["error_category"])
                                             for (s, e), d in zip(ended, docs, strict=True)])
            chained: Document | None = None
            last = False
            if settled is not None:
                job_new, job_sets = self._next(JOB, job, settled, now)
                writes.append((JOB, job.id, job_sets, None))
                self._log_step(JOB, job, settled, job_new, now, LogEntry(
                    "job.failed" if settled.error else "job.completed"))
            elif next_owner is not None:
                due = next((d for d in docs if d.id != doc.id and d.status in CLAIMABLE and (
                    d.next_attempt_at or NO_DATE) <= now), None)
                if due is not None:
                    claimed, claim_sets = self._next(DOCUMENT, due, CLAIM, now,
                                                     lease=(next_owner, lease_seconds))
                    writes.append((DOCUMENT, due.id, claim_sets, None))
                    chained = _as_written(due, claim_sets, claimed)
                    last = all(s == Status.UPLOADED for (s, _), d in zip(ended, docs, strict=True)
                               if d.id != due.id)
            self._write(cur, writes)
            value = raw[0]["shared"]
            return Next(new, chained, job, last, None if value is None else str(value), now,
                        time.monotonic())

    @retried
    def last_document_uploaded(self, job: Job, document: Document, owner: str,
                               partner_id: str, log: LogEntry, facts: dict[str, Any] | None,
                               now: datetime) -> State:
        """The upload of a job's last document, whose siblings were all seen uploaded
        under the lock that leased it (document_done's `last`), and the job completed:
        one UPDATE guarded by the lease and the job's state, no locking read. An uploaded
        document stays so until a restart, which changes the job's key generation."""
        with self.db.transaction() as cur:
            new, sets = self._next(DOCUMENT, document, Event(EventKind.UPLOADED), now,
                                   partner_id=partner_id, extra=facts)
            settled = settle_event(job, [(new.status, None, None)])
            if settled is None:
                raise StoreError(f"job {job.id} is not waiting on its documents")
            job_new, job_sets = self._next(JOB, job, settled, now)
            self._write(cur, [
                (JOB, job.id, job_sets, {"status": str(Status.PROCESSING),
                                         "phase": str(job.phase),
                                         "key_generation": job.key_generation}),
                (DOCUMENT, document.id, sets, owner)])
            self._log_step(DOCUMENT, document, Event(EventKind.UPLOADED), new, now, log)
            self._log_step(JOB, job, settled, job_new, now, LogEntry("job.completed"))
            return new


def _pending(job_id: int, d: NewDocument, now: datetime, partner: str) -> Document:
    return Document(
        id=0, job_id=job_id, field_id=d.field_id, position=d.position,
        original_name=d.original_name, path=d.path, size=d.size, detected_type=None,
        sha256=None, status=Status.PENDING, attempts=0, max_attempts=d.max_attempts,
        next_attempt_at=now, lease_owner=None, lease_expires_at=None,
        partner_document_id=None, last_error=None, error_category=None, created_at=now,
        uploaded_at=None, updated_at=now, partner=partner, label=d.label[:255],
        seal_key=d.seal_key)


def _value(value: Any) -> Any:
    return str(value) if isinstance(value, Status) else value
