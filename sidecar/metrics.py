"""Prometheus metrics: what this process did (counters, a histogram), recorded where it happens.

What the database knows (jobs and documents by status, the pause, the workers) is
read at scrape time by sidecar.metrics_collector, not counted here. Every label
takes a value from a fixed set (below); anything else is recorded as "other", so
no label can carry a submitted value or a free-text error.

The metric objects are made on first use, not at import: with process workers
(FORMRELAY_WORKER_TYPE=process) `enable_multiprocess` must switch prometheus_client
to its multiprocess mode (one mmap file per process under PROMETHEUS_MULTIPROC_DIR)
before the first value exists, and the forked children then write files of their own.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sidecar.errors import Category
from sidecar.states import EventKind

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
STEPS = frozenset({"record", "document"})
SUCCESS = "success"
OUTCOMES = frozenset({SUCCESS, *(str(c) for c in Category)})  # attempts: success or a category
CHANNELS = frozenset({"email", "webhook"})
ALERT_OUTCOMES = frozenset({"sent", "failed"})
PAUSE_REASONS = frozenset({"outage", "auth", "config"})
OTHER = "other"
# Partner requests: from a fast 2xx to the 120 s default deadline.
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
# An event kind that ends a step without naming its category (as sidecar.store.base infers).
_KIND_CATEGORY = {EventKind.RELEASE: Category.PAUSED, EventKind.REJECTED: Category.REJECTED_FILE,
                  EventKind.LEASE_EXPIRED: Category.LEASE_EXPIRED,
                  EventKind.CANCEL: Category.CANCELLED}
_SUCCESSES = frozenset({EventKind.RECORD_SENT, EventKind.UPLOADED})


def _fixed(value: str, allowed: frozenset[str]) -> str:
    return value if value in allowed else OTHER


class _Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.attempts = Counter(
            "formrelay_attempts", "Step outcomes written by this process's engine, by step"
            " (record|document) and outcome (success or the failure category)",
            ("step", "outcome"), registry=r)
        self.partner_seconds = Histogram(
            "formrelay_partner_request_seconds", "Partner requests (any answer or none), by step",
            ("step",), buckets=DURATION_BUCKETS, registry=r)
        self.pauses = Counter("formrelay_pauses", "Delivery pauses this process started, by"
                              " reason (outage|auth|config)", ("reason",), registry=r)
        self.alerts = Counter("formrelay_alerts_sent", "Alert messages, by channel"
                              " (email|webhook) and outcome (sent|failed)",
                              ("channel", "outcome"), registry=r)
        self.heartbeats = Counter("formrelay_heartbeats", "Worker heartbeats this process"
                                  " recorded", registry=r)


_metrics: _Metrics | None = None
_lock = threading.Lock()


def _get() -> _Metrics:
    global _metrics
    if _metrics is None:
        with _lock:
            if _metrics is None:
                _metrics = _Metrics()
    return _metrics


# ---- recording (one call at each place it happens) ----------------------------------------

def step_outcome(step: str, kind: EventKind, category: str | None) -> None:
    """A step's outcome as the engine writes it (sidecar.engine.Engine._report)."""
    outcome = SUCCESS if kind in _SUCCESSES else str(category or _KIND_CATEGORY.get(kind, OTHER))
    _get().attempts.labels(_fixed(step, STEPS), _fixed(outcome, OUTCOMES)).inc()


@contextmanager
def partner_request(step: str) -> Iterator[None]:
    """Times one partner request, whatever it ends with."""
    started = time.monotonic()
    try:
        yield
    finally:
        _get().partner_seconds.labels(_fixed(step, STEPS)).observe(time.monotonic() - started)


def pause_started(reason: str) -> None:
    """Delivery paused: by an outage, a 401/403 (auth) or another configuration error."""
    _get().pauses.labels(_fixed(reason, PAUSE_REASONS)).inc()


def alert_sent(channel: str, outcome: str) -> None:
    """An alert message left for `channel` (email | webhook); `outcome`: sent | failed."""
    _get().alerts.labels(_fixed(channel, CHANNELS), _fixed(outcome, ALERT_OUTCOMES)).inc()


def heartbeat() -> None:
    _get().heartbeats.inc()


# ---- exposition ---------------------------------------------------------------------------

def enable_multiprocess(directory: Path) -> None:
    """Multiprocess mode for this process and the workers it forks, in `directory`
    (emptied: files of an earlier run would add their counts to this one's)."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(directory)
    # prometheus_client picks its value class when first imported: pick again now. Nothing
    # has been recorded yet (metrics are made on first use), so nothing is lost.
    from prometheus_client import values

    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def this_process_collectors() -> list[Any]:
    """What a scrape of this process tree reports besides the database's figures: every
    process's files in multiprocess mode, else this process's metrics and its CPU/memory."""
    from prometheus_client import ProcessCollector
    from prometheus_client.multiprocess import MultiProcessCollector

    path = multiprocess_dir()
    if path:
        return [MultiProcessCollector(None, path)]  # type: ignore[no-untyped-call]
    return [_get().registry, ProcessCollector(registry=None)]
