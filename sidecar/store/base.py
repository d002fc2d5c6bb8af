"""What every part of the store shares: the database, table names, the clock
and the one code path that writes a state change together with its log row."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sidecar.errors import Category, LeaseLost
from sidecar.events import emit
from sidecar.states import (
    Event,
    EventKind,
    Phase,
    State,
    Status,
    document_transition,
    documents_outcome,
    job_transition,
)
from sidecar.store.counts import count_change
from sidecar.store.db import Database
from sidecar.store.retry import retried
from sidecar.store.rows import (
    DOCUMENT_COLUMNS,
    JOB_COLUMNS,
    Document,
    Job,
    LogEntry,
    Tables,
)

MAX_ERROR_CHARS = 2000
LEVELS = {Status.FAILED: "error", Status.REJECTED: "error", Status.RETRYING: "warning"}
# A log event may say "record.{outcome}": the outcome is named from what happened.
OUTCOMES = {EventKind.RECORD_SENT: "sent", EventKind.UPLOADED: "uploaded",
            EventKind.REJECTED: "rejected", EventKind.RETRYABLE_ERROR: "retry",
            EventKind.PERMANENT_ERROR: "failed", EventKind.RELEASE: "paused"}
# The category of an error whose event names none.
CATEGORIES = {EventKind.LEASE_EXPIRED: Category.LEASE_EXPIRED, EventKind.CANCEL: Category.CANCELLED,
              EventKind.RELEASE: Category.PAUSED, EventKind.REJECTED: Category.REJECTED_FILE,
              EventKind.DOCUMENTS_DONE: Category.DOCUMENTS}


# What a write requires of its row: the lease owner, or columns and their values.
Guard = str | dict[str, Any] | None


@dataclass(frozen=True)
class Kind:
    """Jobs and documents go through the same write path with their own rules."""

    name: str
    table: Callable[[Tables], str]
    columns: str
    row: type[Job] | type[Document]
    rule: Callable[[State, Event, datetime], State]


JOB = Kind("job", lambda t: t.jobs, JOB_COLUMNS, Job, job_transition)
DOCUMENT = Kind("document", lambda t: t.documents, DOCUMENT_COLUMNS, Document, document_transition)


class StoreBase:
    def __init__(self, db: Database, prefix: str, skip_locked: bool | None = None) -> None:
        self.db = db
        self.prefix = prefix
        self.t = Tables.for_prefix(prefix)
        self._skip_locked = skip_locked  # None: ask the server once

    @property
    def skip_locked(self) -> bool:
        """Whether the server has `FOR UPDATE SKIP LOCKED` (MariaDB 10.6+, MySQL 8+)."""
        if self._skip_locked is None:
            flavour, version = self.db.server_version()
            self._skip_locked = version >= ((10, 6) if flavour == "mariadb" else (8, 0, 1))
        return self._skip_locked

    def lock_name(self, name: str) -> str:
        """A MySQL named lock for this site: lock names are server-wide (at most 64
        characters), and several sites may share a server, even a table prefix."""
        site = f"{self.db.settings.database}:{self.prefix}".encode()
        return f"{name}:{hashlib.sha256(site).hexdigest()[:16]}"

    @staticmethod
    def now(cur: Any) -> datetime:
        """The database's UTC clock: one clock for every host."""
        cur.execute("SELECT UTC_TIMESTAMP(3) AS now")
        now: datetime = cur.fetchone()["now"]
        return now

    def _select_for_update(self, cur: Any, kind: Kind, row_id: int, skip_locked: bool = False,
                           more: str = "", params: tuple[Any, ...] = ()
                           ) -> tuple[Any, datetime, dict[str, Any]] | None:
        """Lock one row: (the row, the database clock, the raw columns incl. `more`), or None.

        The clock comes with the row, in the same round trip.
        """
        lock = " SKIP LOCKED" if skip_locked and self.skip_locked else ""
        cur.execute(f"SELECT {kind.columns}{more}, UTC_TIMESTAMP(3) AS db_now"
                    f" FROM {kind.table(self.t)} WHERE id = %s FOR UPDATE{lock}", (*params, row_id))
        raw = cur.fetchone()
        return (kind.row.from_row(raw), raw["db_now"], raw) if raw else None

    def _apply(self, cur: Any, kind: Kind, current: Job | Document, event: Event,
               now: datetime, *, lease: tuple[str, int] | None = None,
               partner_id: str | None = None, log: LogEntry | None = None,
               extra: dict[str, Any] | None = None,
               owner: str | None = None) -> tuple[State, Any]:
        """Run the state machine on a row; write the result and its log row.

        The row is locked by the caller, or (with `owner`) written only while that owner
        still holds its lease (LeaseLost otherwise): every writer that takes a step from
        its lease holder clears or replaces `lease_owner`, so the owner check stands in
        for a locking read. Returns the new state and the row as written (no re-read
        needed). `extra` sets more columns in the same UPDATE (a document's checked facts).
        """
        new, sets = self._next(kind, current, event, now, lease=lease, partner_id=partner_id,
                               extra=extra)
        self._write(cur, [(kind, current.id, sets, owner)])
        self._log_step(kind, current, event, new, now, log)
        return new, _as_written(current, sets, new)

    def _next(self, kind: Kind, current: Job | Document, event: Event, now: datetime, *,
              lease: tuple[str, int] | None = None, partner_id: str | None = None,
              extra: dict[str, Any] | None = None) -> tuple[State, dict[str, Any]]:
        """The state machine's answer for a row, and the columns that write it. A job's
        status change is added to the status counts written before this transaction
        commits (the caller writes the row in it, or it rolls back)."""
        new = kind.rule(current.state, event, now)
        owner, expires = (lease[0], now + timedelta(seconds=lease[1])) if lease else (None, None)
        error = new.last_error[:MAX_ERROR_CHARS] if new.last_error else new.last_error
        sets: dict[str, Any] = {
            "status": str(new.status), "attempts": new.attempts,
            "next_attempt_at": new.next_attempt_at, "last_error": error,
            "error_category": _category(event, new, current),
            "lease_owner": owner, "lease_expires_at": expires, "updated_at": now,
        }
        if isinstance(current, Job):
            count_change(self.db, self.prefix, current.form_id, current.status, new.status)
            restarted = event.kind == EventKind.RESTART
            sets.update(
                phase=str(new.phase), key_generation=new.key_generation,
                started_at=current.started_at or (now if lease else None),
                completed_at=now if new.status == Status.COMPLETED
                else None if restarted else current.completed_at,
                failed_at=now if new.status == Status.FAILED
                else None if restarted else current.failed_at,
                partner_record_id=partner_id if partner_id is not None
                else None if restarted else current.partner_record_id,
            )
        else:
            sets.update(
                uploaded_at=now if new.status == Status.UPLOADED else current.uploaded_at,
                partner_document_id=partner_id or current.partner_document_id,
            )
        sets.update(extra or {})
        if error == current.last_error:  # unchanged (every row written is leased or locked):
            del sets["last_error"]  # a TEXT column in a multi-table UPDATE's SET puts
            # MariaDB's temporary table on disk: 1-1.5 ms a statement instead of 0.1 ms
        return new, sets

    def _write(self, cur: Any, rows: list[tuple[Kind, int, dict[str, Any], Guard]]) -> None:
        """Write one or more rows' new columns in one UPDATE (a multi-table UPDATE for
        several: a step's outcome with the next step's claim, a document with its job).
        A row's guard (a lease owner, or columns and the values they must still hold) is
        checked in the same statement; if any row fails its guard, nothing is written and
        LeaseLost is raised."""
        tables: list[str] = []
        assignments: list[str] = []
        where: list[str] = []
        params: list[Any] = []
        wheres: list[Any] = []
        for n, (kind, row_id, sets, guard) in enumerate(rows):
            dot = f"r{n}." if len(rows) > 1 else ""
            tables.append(f"{kind.table(self.t)} {dot[:-1]}".rstrip())
            assignments += [f"{dot}{col} = %s" for col in sets]
            params += list(sets.values())
            checks = {"lease_owner": guard} if isinstance(guard, str) else guard or {}
            where += [f"{dot}{col} = %s" for col in ("id", *checks)]
            wheres += [row_id, *checks.values()]
        cur.execute(f"UPDATE {', '.join(tables)} SET {', '.join(assignments)}"
                    f" WHERE {' AND '.join(where)}", (*params, *wheres))
        if any(guard for *_, guard in rows) and cur.rowcount != len(rows):
            # (Matched rows: the connection counts found rows, not only changed ones.)
            raise LeaseLost(f"{rows[-1][0].name} {rows[-1][1]}: the lease is no longer held")

    def _log_step(self, kind: Kind, current: Job | Document, event: Event, new: State,
                  now: datetime, log: LogEntry | None) -> None:
        if event.kind == EventKind.CLAIM:  # an attempt is logged by its outcome
            return
        entry = log or LogEntry(f"{kind.name}.{event.kind}")
        outcome = "failed" if new.status == Status.FAILED else OUTCOMES.get(event.kind, "")
        entry = replace(entry, event=entry.event.format(outcome=outcome))
        job_id = current.id if isinstance(current, Job) else current.job_id
        doc_id = None if isinstance(current, Job) else current.id
        self._log(None, job_id, doc_id, entry, new, now)

    @retried
    def settle_documents(self, job_id: int) -> State | None:
        """End the job once every document has ended; None while some are still going."""
        with self.db.transaction() as cur:
            locked = self._select_for_update(cur, JOB, job_id)
            return self._settle(cur, locked[0], locked[1]) if locked else None

    def _settle(self, cur: Any, job: Job, now: datetime) -> State | None:
        """With the job row locked: its documents_done event, if every document has ended.

        Because the job row is locked first, when the last two documents end at
        the same moment exactly one of them settles the job.
        """
        if (job.status, job.phase) != (Status.PROCESSING, Phase.DOCUMENTS):
            return None
        cur.execute(f"SELECT status, last_error, error_category FROM {self.t.documents}"
                    " WHERE job_id = %s ORDER BY id", (job.id,))
        rows = cur.fetchall()
        event = settle_event(job, [(Status(r["status"]), r["last_error"], r["error_category"])
                                   for r in rows])
        if event is None:
            return None
        entry = LogEntry("job.failed" if event.error else "job.completed")
        return self._apply(cur, JOB, job, event, now, log=entry)[0]

    def _log(self, cur: Any, job_id: int | None, document_id: int | None, entry: LogEntry,
             state: State | None, now: datetime) -> None:
        """Add a log row to this transaction: its rows are written together, in order, in
        one INSERT just before it commits (and dropped with it on a rollback)."""
        level = entry.level or (LEVELS.get(state.status, "info") if state else "info")
        message = entry.message or (
            f"{state.status} (attempt {state.attempts}/{state.max_attempts})" if state else "")
        if state and state.last_error and not entry.message:
            message += f": {state.last_error}"
        attempt = state.attempts if state else None
        self.db.after_commit(lambda: emit(entry.event, level, message, job_id, document_id,
                                          attempt, entry.http_status, entry.duration_ms))
        self.db.batch("log", self._flush_log).append((
            job_id, document_id, level, entry.event, message[:MAX_ERROR_CHARS], attempt,
            entry.http_status, entry.duration_ms, entry.actor, now))

    def _flush_log(self, cur: Any, rows: list[tuple[Any, ...]]) -> None:
        one = "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        cur.execute(
            f"INSERT INTO {self.t.log} (job_id, document_id, level, event, message, attempt,"
            f" http_status, duration_ms, actor, created_at) VALUES {', '.join([one] * len(rows))}",
            [value for row in rows for value in row])


def settle_event(job: Job, documents: list[tuple[Status, str | None, str | None]]
                 ) -> Event | None:
    """The job's documents_done event once every document (status, error, category, in id
    order) has ended; None while some are still going or the job is not waiting on them."""
    if (job.status, job.phase) != (Status.PROCESSING, Phase.DOCUMENTS):
        return None
    event = documents_outcome([(status, error) for status, error, _ in documents])
    if event is None:
        return None
    # A job that failed by its documents takes the first failed document's category.
    return replace(event, category=next(
        (category for status, _, category in documents if status != Status.UPLOADED
         and category), None))


def _category(event: Event, new: State, current: Job | Document) -> str | None:
    """The new error_category: None once the error is cleared (a success, an admin's
    retry), else the event's, else the one its kind implies, else unchanged."""
    if new.last_error is None:
        return None
    found = event.category or CATEGORIES.get(event.kind)
    return str(found) if found else current.error_category


def _as_written(current: Job | Document, sets: dict[str, Any], new: State) -> Any:
    """`current` with the columns just written (statuses and phases as enums)."""
    written = {k: v for k, v in sets.items() if hasattr(current, k)}
    written["status"] = new.status
    if "phase" in written:
        written["phase"] = new.phase
    return replace(current, **written)
