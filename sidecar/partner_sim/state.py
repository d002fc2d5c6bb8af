"""PartnerSim: the simulator's state (records, idempotency keys, stats, script, outage).

Every method is thread-safe: one lock guards all of it, and it is never held
while a request sleeps. The HTTP side lives in `app.py`; `create_app()` joins them.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sidecar.partner_sim.fhir_store import FhirStore
from sidecar.partner_sim.knobs import (
    KINDS,
    OUTAGE_KEYS,
    Forced,
    Knobs,
    parse_outage,
    parse_script,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

    from sidecar.partner_sim.token import TokenIssuer

CONFLICT = "idempotency key reused with a different body"


@dataclass(frozen=True)
class Upload:
    """What the simulator keeps of an uploaded file: never its bytes."""

    filename: str
    content_type: str
    size: int
    sha256: str
    fields: dict[str, str] = field(default_factory=dict)  # other (text) parts of the form


@dataclass
class Document:
    id: str
    patient_id: str
    idempotency_key: str
    created: float
    upload: Upload

    def public(self, bodies: bool) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "id": self.id, "idempotency_key": self.idempotency_key, "created": _iso(self.created),
            "name": self.upload.filename, "size": self.upload.size, "sha256": self.upload.sha256,
            "content_type": self.upload.content_type}
        if bodies:
            shown["fields"] = dict(self.upload.fields)
        return shown


@dataclass
class Record:
    id: str
    idempotency_key: str
    created: float
    body: dict[str, Any]
    content_type: str
    documents: list[Document] = field(default_factory=list)

    def public(self, bodies: bool) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "id": self.id, "idempotency_key": self.idempotency_key, "created": _iso(self.created),
            "field_count": len(self.body), "content_type": self.content_type,
            "documents": [d.public(bodies) for d in self.documents]}
        if bodies:
            shown["body"] = self.body
        return shown


@dataclass(frozen=True)
class Outcome:
    """An answer to an API request: status, JSON body, and what happened (for the log)."""

    status: int
    body: Any
    note: str = ""  # created | replay | conflict | ...
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Plan:
    """What the simulator decided for one API request when it arrived."""

    knobs: Knobs
    delay: float  # seconds of latency to add
    forced: Forced | None


@dataclass(frozen=True)
class _Entry:
    fingerprint: str
    outcome: Outcome


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


class PartnerSim:
    """State of one simulated partner; `create_app()` gives the WSGI app that serves it."""

    def __init__(self, **knobs: Any) -> None:
        self._lock = threading.Lock()
        self.stopping = threading.Event()  # set on stop: cuts latency and hangs short
        outage = {k: knobs.pop(k) for k in OUTAGE_KEYS if k in knobs}
        self._initial = Knobs().merged(knobs)
        self._reset_locked()
        if outage:
            self.configure(outage)

    def create_app(self) -> WSGIApplication:
        from sidecar.partner_sim.app import create_app

        return create_app(self)

    # control -----------------------------------------------------------------

    def _reset_locked(self) -> None:
        from sidecar.partner_sim.token import TokenIssuer  # (token.py imports Outcome from here)

        self.tokens: TokenIssuer = TokenIssuer()  # SMART access tokens: their own lock
        self._knobs = self._initial
        self._rng = random.Random(self._knobs.seed)
        self._outage_forever = False
        self._outage_until: float | None = None
        self._script: deque[Forced] = deque()
        self._records: dict[str, Record] = {}
        self.fhir = FhirStore()  # the fhir-r4 profile's resources (sidecar.partner_sim.fhir)
        self._documents = 0
        self._idempotency: dict[tuple[str, str], _Entry] = {}
        self._requests = 0
        self._by_status: Counter[str] = Counter()
        self._by_kind: Counter[str] = Counter()
        self._forced: Counter[str] = Counter()
        self._duplicates: Counter[str] = Counter({kind: 0 for kind in KINDS})
        self._conflicts = 0
        self._in_flight = 0
        self._max_in_flight = 0
        self._bytes = 0

    def reset(self) -> None:
        """Forget records, keys, stats, script and outage; knobs go back to the start values."""
        with self._lock:
            self._reset_locked()

    @property
    def knobs(self) -> Knobs:
        return self._knobs

    def configure(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Merge knob values (all checked before any applies); return the new config."""
        changes = dict(changes)
        outage = {k: changes.pop(k) for k in OUTAGE_KEYS if k in changes}
        knobs = self._knobs.merged(changes)
        forever, seconds = parse_outage(outage)
        with self._lock:
            self._knobs = knobs
            if "seed" in changes:
                self._rng.seed(knobs.seed)
            if forever is not None:
                self._outage_forever, self._outage_until = forever, None
            if seconds is not None:
                self._outage_until = time.monotonic() + seconds if seconds else None
        return self.config()

    def config(self) -> dict[str, Any]:
        with self._lock:
            left = self._outage_left(time.monotonic())
            return {**self._knobs.public(), "outage": left is not None,
                    "outage_seconds_left": None if left in (None, 0.0) else round(left, 3),
                    "script_pending": len(self._script)}

    def add_script(self, items: Any) -> int:
        """Append forced responses (validated first); return how many are pending."""
        parsed = parse_script(items)
        with self._lock:
            self._script.extend(parsed)
            return len(self._script)

    def script(self) -> list[str]:
        with self._lock:
            return [f"{f.kind} {f.label}" for f in self._script]

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests_total": self._requests, "requests_by_status": dict(self._by_status),
                "requests_by_kind": dict(self._by_kind), "records_created": len(self._records),
                "documents_created": self._documents,
                "duplicates_suppressed": dict(self._duplicates),
                "idempotency_conflicts": self._conflicts, "forced": dict(self._forced),
                "in_flight": self._in_flight, "max_in_flight": self._max_in_flight,
                "bytes_received": self._bytes, "script_pending": len(self._script),
                "fhir": self.fhir.counts()}

    def records(self, bodies: bool = False) -> list[dict[str, Any]]:
        with self._lock:
            return [r.public(bodies) for r in self._records.values()]

    # the request path ----------------------------------------------------------

    def _outage_left(self, now: float) -> float | None:
        """None: no outage; 0.0: until turned off; else seconds left."""
        if self._outage_until is not None and now < self._outage_until:
            return self._outage_until - now
        return 0.0 if self._outage_forever else None

    def begin(self, kind: str) -> Plan:
        """Count an arriving API request and decide its fate: outage, script, then chance."""
        with self._lock:
            self._requests += 1
            self._by_kind[kind] += 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            knobs = self._knobs
            u, jitter = self._rng.random(), self._rng.random()  # always two: reproducible
            delay = (knobs.latency_ms + jitter * knobs.jitter_ms) / 1000
            forced = self._outage(knobs) or self._scripted(kind) or self._chance(kind, knobs, u)
            if forced is not None:
                self._forced[forced.source] += 1
            return Plan(knobs, delay, forced)

    def _outage(self, knobs: Knobs) -> Forced | None:
        left = self._outage_left(time.monotonic())
        if left is None:
            return None
        retry = max(1, round(left + 0.5)) if left else None
        return Forced("any", 503, {"error": "service unavailable (outage)"}, True,
                      retry_after=retry, retry_after_date=knobs.retry_after_date, source="outage")

    def _scripted(self, kind: str) -> Forced | None:
        for n, item in enumerate(self._script):
            if item.kind == kind:
                del self._script[n]
                return item
        return None

    @staticmethod
    def _chance(kind: str, knobs: Knobs, u: float) -> Forced | None:
        edge = knobs.rate_limit_rate
        if u < edge:
            return Forced(kind, 429, retry_after=knobs.retry_after, source="random")
        if u < (edge := edge + knobs.error_rate):
            return Forced(kind, 503, source="random")
        if u < (edge := edge + knobs.timeout_rate):
            return Forced(kind, timeout=True, source="random")
        if u < edge + knobs.timeout_after_accept_rate:
            return Forced(kind, accept_then_timeout=True, source="random")
        return None

    def finish(self, status: int, body_bytes: int) -> None:
        with self._lock:
            self._in_flight -= 1
            self._by_status[str(status)] += 1
            self._bytes += body_bytes

    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    def has_record(self, patient_id: str) -> bool:
        with self._lock:
            return patient_id in self._records

    def _idempotent(self, kind: str, key: str, fingerprint: str,
                    create: Callable[[], Outcome]) -> Outcome:
        with self._lock:
            entry = self._idempotency.get((kind, key))
            if entry is not None:
                if entry.fingerprint != fingerprint:
                    self._conflicts += 1
                    return Outcome(422, {"error": CONFLICT}, "conflict")
                self._duplicates[kind] += 1
                first = entry.outcome
                return Outcome(first.status, first.body, "replay",
                               (("Idempotent-Replayed", "true"),))
            outcome = create()
            if 200 <= outcome.status < 300:
                self._idempotency[(kind, key)] = _Entry(fingerprint, outcome)
            return outcome

    def create_record(self, key: str, fingerprint: str, body: dict[str, Any],
                      content_type: str) -> Outcome:
        def create() -> Outcome:
            record_id = f"P-{len(self._records) + 1:06d}"
            record = Record(record_id, key, time.time(), body, content_type)
            self._records[record_id] = record
            return Outcome(201, {"id": record_id, "created": _iso(record.created)}, "created")

        return self._idempotent("record", key, fingerprint, create)

    def create_document(self, patient_id: str, key: str, fingerprint: str,
                        upload: Upload) -> Outcome:
        def create() -> Outcome:
            record = self._records.get(patient_id)
            if record is None:  # reset while the upload was streaming in
                return Outcome(404, {"error": f"patient {patient_id} not found"})
            self._documents += 1
            doc = Document(f"D-{self._documents:06d}", patient_id, key, time.time(), upload)
            record.documents.append(doc)
            return Outcome(201, {"id": doc.id, "patient_id": patient_id, "size": upload.size,
                                 "sha256": upload.sha256}, "created")

        return self._idempotent("document", key, fingerprint, create)
