"""The job and document state machines: pure functions, no I/O.

    status x event -> new status, attempts, next attempt time, error

A job delivers its record (phase `record`), then each document in its own
step (phase `documents`, job stays `processing`, each document has its own
status and attempts), then ends (phase `done`). The store reads a row, asks
this module for the next state and writes it back in the same transaction;
leases and timestamps are the store's concern.

Times are naive UTC datetimes, as the database returns them; the retry delay
comes in with the event (the backoff is a separate, pure function).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from sidecar.errors import InvalidTransition


class Status(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    RETRYING = "retrying"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UPLOADED = "uploaded"  # documents only
    REJECTED = "rejected"  # documents only: failed a file check; retrying cannot help


class Phase(StrEnum):
    RECORD = "record"
    DOCUMENTS = "documents"
    DONE = "done"


class EventKind(StrEnum):
    CLAIM = "claim"
    RECORD_SENT = "record_sent"  # job
    DOCUMENTS_DONE = "documents_done"  # job: every document reached an end
    UPLOADED = "uploaded"  # document
    REJECTED = "rejected"  # document
    RETRYABLE_ERROR = "retryable_error"
    PERMANENT_ERROR = "permanent_error"
    LEASE_EXPIRED = "lease_expired"
    RELEASE = "release"  # give the claim back unspent: delivery is paused, no step is at fault
    CANCEL = "cancel"
    RETRY = "retry"  # admin: resume a failed or cancelled step, attempts reset
    RESTART = "restart"  # admin: the job from scratch, with a new key generation


JOB_STATUSES = (Status.PENDING, Status.PROCESSING, Status.RETRYING,
                Status.COMPLETED, Status.FAILED, Status.CANCELLED)
DOCUMENT_STATUSES = (*JOB_STATUSES, Status.UPLOADED, Status.REJECTED)
CLAIMABLE = (Status.PENDING, Status.RETRYING)
WAITING = (Status.PENDING, Status.RETRYING, Status.PROCESSING)  # not ended yet
DOCUMENT_ENDS = (Status.UPLOADED, Status.REJECTED, Status.FAILED, Status.CANCELLED)
JOB_ENDS = (Status.COMPLETED, Status.FAILED, Status.CANCELLED)
ENDED_FAILED = (Status.FAILED, Status.CANCELLED)  # ended without delivery: a retry resumes
# Documents whose file is never read again (a retry resumes failed and cancelled ones).
DONE_WITH_FILE = (Status.UPLOADED, Status.REJECTED)


def sql_in(statuses: tuple[Status, ...]) -> str:
    """A set of statuses as an SQL list, `('pending', 'retrying')`: every status list the
    store's SQL holds is built here, from the sets above (values are this module's own)."""
    return "(" + ", ".join(f"'{s.value}'" for s in statuses) + ")"


@dataclass(frozen=True)
class Event:
    kind: EventKind
    error: str | None = None  # the reason, for errors, rejections and a failed job end
    delay: float = 0.0  # seconds until the next attempt, for a retryable error
    has_documents: bool = False  # for record_sent
    category: str | None = None  # sidecar.errors.Category of `error`; the store infers some


@dataclass(frozen=True)
class State:
    """The part of a job or document row that the state machine decides."""

    status: Status
    attempts: int
    max_attempts: int
    next_attempt_at: datetime | None
    last_error: str | None = None
    phase: Phase = Phase.RECORD  # jobs only
    key_generation: int = 1  # jobs only


Rule = Callable[[State, Event, datetime], State]


def _claim(s: State, e: Event, now: datetime) -> State:
    if s.next_attempt_at is not None and s.next_attempt_at > now:
        raise InvalidTransition("step", f"{s.status} (not due)", e.kind)
    return replace(s, status=Status.PROCESSING, attempts=s.attempts + 1, next_attempt_at=None)


def _fail(s: State, error: str | None) -> State:
    return replace(s, status=Status.FAILED, next_attempt_at=None, last_error=error)


def _retryable(s: State, e: Event, now: datetime) -> State:
    if s.attempts >= s.max_attempts:
        return _fail(s, f"gave up after {s.attempts} attempts: {e.error}")
    return replace(s, status=Status.RETRYING, last_error=e.error,
                   next_attempt_at=now + timedelta(seconds=max(0.0, e.delay)))


def _permanent(s: State, e: Event, now: datetime) -> State:
    return _fail(s, e.error)


def _lease_expired(s: State, e: Event, now: datetime) -> State:
    # The worker died or hung mid-attempt; the attempt it took still counts, so
    # a submission that kills workers ends in `failed` instead of looping.
    return _retryable(s, Event(e.kind, error="lease expired: the worker stopped mid-attempt"), now)


def _release(s: State, e: Event, now: datetime) -> State:
    return replace(s, status=Status.RETRYING, attempts=max(0, s.attempts - 1), last_error=e.error,
                   next_attempt_at=now + timedelta(seconds=max(0.0, e.delay)))


def _cancel(s: State, e: Event, now: datetime) -> State:
    return replace(s, status=Status.CANCELLED, next_attempt_at=None, last_error=e.error)


def _record_sent(s: State, e: Event, now: datetime) -> State:
    if s.phase != Phase.RECORD:
        raise InvalidTransition("job", f"{s.status} in phase {s.phase}", e.kind)
    if e.has_documents:  # the job keeps its record attempts; each document counts its own
        return replace(s, phase=Phase.DOCUMENTS, last_error=None)
    return replace(s, status=Status.COMPLETED, phase=Phase.DONE, last_error=None)


def _documents_done(s: State, e: Event, now: datetime) -> State:
    if s.phase != Phase.DOCUMENTS:
        raise InvalidTransition("job", f"{s.status} in phase {s.phase}", e.kind)
    if e.error:
        return replace(_fail(s, e.error), phase=Phase.DONE)
    return replace(s, status=Status.COMPLETED, phase=Phase.DONE, last_error=None)


def _job_retry(s: State, e: Event, now: datetime) -> State:
    # Resume where it stopped: the record step again, or the documents (whose
    # failed steps the store resets with the document RETRY event).
    if s.phase == Phase.RECORD:
        return replace(s, status=Status.PENDING, attempts=0, next_attempt_at=now, last_error=None)
    return replace(s, status=Status.PROCESSING, phase=Phase.DOCUMENTS, next_attempt_at=None,
                   last_error=None)


def _job_restart(s: State, e: Event, now: datetime) -> State:
    return replace(s, status=Status.PENDING, phase=Phase.RECORD, attempts=0, next_attempt_at=now,
                   last_error=None, key_generation=s.key_generation + 1)


def _record_phase_only(rule: Rule) -> Rule:
    """Leases and errors of a job belong to its record step; documents carry their own."""

    def guarded(s: State, e: Event, now: datetime) -> State:
        if s.phase != Phase.RECORD:
            raise InvalidTransition("job", f"{s.status} in phase {s.phase}", e.kind)
        return rule(s, e, now)

    return guarded


def _uploaded(s: State, e: Event, now: datetime) -> State:
    return replace(s, status=Status.UPLOADED, next_attempt_at=None, last_error=None)


def _rejected(s: State, e: Event, now: datetime) -> State:
    return replace(s, status=Status.REJECTED, next_attempt_at=None, last_error=e.error)


def _document_retry(s: State, e: Event, now: datetime) -> State:
    return replace(s, status=Status.PENDING, attempts=0, next_attempt_at=now, last_error=None)


P, R, W = Status.PENDING, Status.RETRYING, Status.PROCESSING
C, F, X = Status.COMPLETED, Status.FAILED, Status.CANCELLED
K = EventKind

JOB_RULES: dict[tuple[Status, EventKind], Rule] = {
    (P, K.CLAIM): _claim,
    (R, K.CLAIM): _claim,
    (W, K.RECORD_SENT): _record_sent,
    (W, K.DOCUMENTS_DONE): _documents_done,
    (W, K.RETRYABLE_ERROR): _record_phase_only(_retryable),
    (W, K.PERMANENT_ERROR): _record_phase_only(_permanent),
    (W, K.LEASE_EXPIRED): _record_phase_only(_lease_expired),
    (W, K.RELEASE): _record_phase_only(_release),
    **{(s, K.CANCEL): _cancel for s in (P, R, W)},
    **{(s, K.RETRY): _job_retry for s in (F, X)},
    **{(s, K.RESTART): _job_restart for s in (P, R, C, F, X)},
}

DOCUMENT_RULES: dict[tuple[Status, EventKind], Rule] = {
    (P, K.CLAIM): _claim,
    (R, K.CLAIM): _claim,
    (W, K.UPLOADED): _uploaded,
    (W, K.REJECTED): _rejected,
    (W, K.RETRYABLE_ERROR): _retryable,
    (W, K.PERMANENT_ERROR): _permanent,
    (W, K.LEASE_EXPIRED): _lease_expired,
    (W, K.RELEASE): _release,
    **{(s, K.CANCEL): _cancel for s in (P, R, W)},
    **{(s, K.RETRY): _document_retry for s in (F, X)},
}


def job_transition(state: State, event: Event, now: datetime) -> State:
    """The job's next state, or InvalidTransition when the event is not allowed."""
    rule = JOB_RULES.get((state.status, event.kind))
    if rule is None:
        raise InvalidTransition("job", state.status, event.kind)
    return rule(state, event, now)


def document_transition(state: State, event: Event, now: datetime) -> State:
    """The document's next state, or InvalidTransition when the event is not allowed."""
    rule = DOCUMENT_RULES.get((state.status, event.kind))
    if rule is None:
        raise InvalidTransition("document", state.status, event.kind)
    return rule(state, event, now)


def documents_outcome(documents: list[tuple[Status, str | None]]) -> Event | None:
    """The job's documents_done event once every document has ended, else None.

    `documents` are (status, last error) in the job's document order; the
    reason names each that did not upload by its 1-based number.
    """
    if not documents or any(status not in DOCUMENT_ENDS for status, _ in documents):
        return None
    problems = [f"document {n} {status}: {error or 'no reason recorded'}"
                for n, (status, error) in enumerate(documents, 1) if status != Status.UPLOADED]
    return Event(EventKind.DOCUMENTS_DONE, "; ".join(problems) or None)
