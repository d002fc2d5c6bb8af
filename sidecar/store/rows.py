"""Typed views of the store's rows, and the table names for a prefix."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Self

from sidecar.states import Phase, State, Status


@dataclass(frozen=True)
class Tables:
    jobs: str
    documents: str
    log: str
    meta: str

    @classmethod
    def for_prefix(cls, prefix: str) -> Tables:
        return cls(*(f"{prefix}formrelay_{name}" for name in ("jobs", "documents", "log", "meta")))


class _Row:
    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Self:
        return cls(**{f.name: row[f.name] for f in fields(cls)})  # type: ignore[arg-type]


@dataclass(frozen=True)
class NewJob:
    reference: str
    form_id: int
    entry_id: int = 0
    snapshot: str | None = None  # JSON text, or a sealed box's base64 with seal_key
    source: str = "wpforms"
    priority: int = 10
    max_attempts: int = 10
    partner: str = ""  # a configured partner's name; "" for the default partner
    seal_key: str | None = None  # the key id the snapshot is sealed to (sidecar.seal)


@dataclass(frozen=True)
class Job(_Row):
    id: int
    reference: str
    source: str
    form_id: int
    entry_id: int
    status: Status
    phase: Phase
    priority: int
    attempts: int
    max_attempts: int
    next_attempt_at: datetime | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    partner_record_id: str | None
    key_generation: int
    last_error: str | None
    error_category: str | None  # sidecar.errors.Category of last_error
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    failed_at: datetime | None
    updated_at: datetime
    values_dropped_at: datetime | None = None  # retention dropped the submitted values
    partner: str = ""  # the partner it goes to (sidecar.partners); "" until first claimed
    seal_key: str | None = None  # the key id its snapshot is sealed to; None: plain JSON

    @property
    def state(self) -> State:
        return State(Status(self.status), self.attempts, self.max_attempts, self.next_attempt_at,
                     self.last_error, Phase(self.phase), self.key_generation)


@dataclass(frozen=True)
class NewDocument:
    field_id: str
    position: int
    original_name: str
    path: str
    size: int | None = None
    max_attempts: int = 10
    label: str = ""  # the field's label (the form's words, not a value)
    seal_key: str | None = None  # set: `path` is the sealed place, original_name ''


@dataclass(frozen=True)
class Document(_Row):
    id: int
    job_id: int
    field_id: str
    position: int
    original_name: str
    path: str
    size: int | None
    detected_type: str | None
    sha256: str | None
    status: Status
    attempts: int
    max_attempts: int
    next_attempt_at: datetime | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    partner_document_id: str | None
    last_error: str | None
    error_category: str | None  # sidecar.errors.Category of last_error
    created_at: datetime
    uploaded_at: datetime | None
    updated_at: datetime
    file_removed_at: datetime | None = None  # the file left uploads after delivery
    partner: str = ""  # its job's partner, copied at creation ("" the default partner)
    label: str = ""  # the label of the field it came from
    seal_key: str | None = None  # set: `path` is the sealed box of name and path (seal.py)

    @property
    def state(self) -> State:
        return State(Status(self.status), self.attempts, self.max_attempts, self.next_attempt_at,
                     self.last_error)


@dataclass(frozen=True)
class LogEntry:
    """What a caller adds to the log row written with a transition."""

    event: str
    message: str = ""
    level: str | None = None  # None: derived from the new status
    http_status: int | None = None
    duration_ms: int | None = None
    actor: str | None = None


JOB_COLUMNS = ", ".join(f.name for f in fields(Job))
DOCUMENT_COLUMNS = ", ".join(f.name for f in fields(Document))
