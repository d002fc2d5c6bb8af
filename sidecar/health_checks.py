"""The checks behind /readyz and /healthz, and the delivery reading they share with /metrics.

Readiness is what traffic needs from this process: the database answers, its
schema is the one this sidecar knows, and the uploads directory (when this process
has one) can be read. Delivery state is sidecar.health's one judgement, read from
MySQL at most once per `ttl` seconds however often a load balancer or a scraper
asks (`CachedReading`), so probes cannot load the database.

Nothing here holds a submitted value: check details name settings, paths of our
own configuration, versions and error classes.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sidecar.health import DeliveryState, read_state
from sidecar.store import Store
from sidecar.store.schema import current_version, latest_version

DEFAULT_TTL = 5.0


@dataclass(frozen=True)
class Check:
    name: str  # database | schema | uploads
    ok: bool
    detail: str = ""

    def as_json(self) -> dict[str, object]:
        return {"ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class Readiness:
    checks: tuple[Check, ...]
    schema_version: int | None = None

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def failures(self) -> list[str]:
        return [f"{c.name}: {c.detail}" for c in self.checks if not c.ok]

    def as_json(self) -> dict[str, object]:
        return {c.name: c.as_json() for c in self.checks}


def readiness(store: Store, uploads_dir: Path | None) -> Readiness:
    """Database, schema, uploads: each checked, each named when it fails."""
    checks: list[Check] = []
    have: int | None = None
    try:
        have = current_version(store.db, store.prefix)
    except Exception as exc:  # any failure to read is "unreachable"; the class says which
        store.db.discard()
        checks.append(Check("database", False, f"unreachable ({type(exc).__name__})"))
        checks.append(Check("schema", False, "unknown: the database is unreachable"))
    else:
        checks.append(Check("database", True, "reachable"))
        checks.append(_schema(have, latest_version()))
    if uploads_dir is not None:
        checks.append(_uploads(uploads_dir))
    return Readiness(tuple(checks), have)


def _schema(have: int, want: int) -> Check:
    if have == want:
        return Check("schema", True, f"version {have}")
    if have == 0:
        return Check("schema", False, "FormRelay tables are missing: run `formrelay migrate`")
    if have < want:
        return Check("schema", False, f"version {have}, this sidecar needs {want}:"
                                      " run `formrelay migrate`")
    return Check("schema", False, f"version {have}, newer than this sidecar ({want}):"
                                  " upgrade the sidecar")


def _uploads(path: Path) -> Check:
    try:
        with os.scandir(path) as entries:  # listing proves read and search permission
            next(entries, None)
    except OSError as exc:
        return Check("uploads", False, f"FORMRELAY_UPLOADS_DIR {path} is not readable"
                                       f" ({exc.strerror or type(exc).__name__})")
    return Check("uploads", True, "readable")


@dataclass(frozen=True)
class Reading:
    """One read of the database's delivery figures (healthz and the metrics share it)."""

    state: DeliveryState
    jobs: dict[str, int] = field(default_factory=dict)  # by status
    documents: dict[str, int] = field(default_factory=dict)


class CachedReading:
    """The last Reading for `ttl` seconds; a failed read is not cached (it raises)."""

    def __init__(self, store: Store, ttl: float = DEFAULT_TTL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store, self.ttl, self.clock = store, ttl, clock
        self._lock = threading.Lock()
        self._value: Reading | None = None
        self._at = 0.0

    def get(self) -> Reading:
        with self._lock:  # one reader refreshes; the others wait for its result
            if self._value is None or self.clock() - self._at >= self.ttl:
                self._value = _read(self.store)
                self._at = self.clock()
            return self._value


def _read(store: Store) -> Reading:
    try:
        return Reading(read_state(store), store.counts_by_status(),
                       store.document_counts_by_status())
    except Exception:
        store.db.discard()
        raise
