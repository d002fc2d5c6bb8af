"""Delivery state: is delivery proceeding, and if not, why. One reading, many readers.

`/healthz`, `formrelay status --json` and its exit code, the incidents the
monitor opens, and the metrics all judge the same `DeliveryState` with the same
rules (`problems()`), so they never disagree. Reading it costs a handful of
indexed queries; nothing here holds a submitted value.

Severity follows Nagios: OK, WARNING (delivery slowed or waiting on its own:
an outage pause that probes, a backlog older than FORMRELAY_BACKLOG_MINUTES,
some workers silent), CRITICAL (waiting on a person: a 401/403 pause, no live
worker, jobs failed permanently and not yet retried or cancelled).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import IntEnum
from typing import Any

from sidecar.breaker import Breaker
from sidecar.pause import every_pause
from sidecar.states import WAITING, Status
from sidecar.store import Store


class Severity(IntEnum):
    """Also the Nagios exit status of `formrelay status`."""

    OK = 0
    WARNING = 1
    CRITICAL = 2


@dataclass(frozen=True)
class Problem:
    kind: str  # paused | failed | backlog | no_worker | workers_silent (incident kinds reuse them)
    severity: Severity
    reason: str  # plain words for people: ids and counts, never a value


@dataclass(frozen=True)
class DeliveryState:
    paused: bool = False
    paused_since: str | None = None  # UTC, ISO 8601, the database's clock
    cause: str = ""  # the pause's cause: a status code and category, already masked
    needs_person: bool = False  # a 401/403 pause: probes cannot end it
    next_probe_at: str | None = None
    waiting: int = 0  # jobs pending, processing or retrying
    oldest_waiting_seconds: float | None = None
    failed: int = 0  # jobs failed permanently and not retried or cancelled since
    live_workers: int = 0
    silent_workers: tuple[str, ...] = field(default=())  # worker ids (host:pid:random)

    def problems(self, backlog_seconds: float) -> list[Problem]:
        found: list[Problem] = []
        if self.paused:
            if self.needs_person:
                found.append(Problem("paused", Severity.CRITICAL,
                                     f"delivery paused since {self.paused_since} UTC and needs a"
                                     f" person: {self.cause}; fix the partner token, then resume"))
            else:
                found.append(Problem("paused", Severity.WARNING,
                                     f"delivery paused since {self.paused_since} UTC: {self.cause};"
                                     f" next probe at {self.next_probe_at} UTC"))
        if self.live_workers == 0:
            found.append(Problem("no_worker", Severity.CRITICAL,
                                 "no live worker: nothing is being delivered"))
        elif self.silent_workers:
            found.append(Problem("workers_silent", Severity.WARNING,
                                 f"{len(self.silent_workers)} worker(s) sent no heartbeat:"
                                 f" {', '.join(self.silent_workers)}"))
        if self.failed:
            found.append(Problem("failed", Severity.CRITICAL,
                                 f"{self.failed} job(s) failed permanently; retry or cancel them"
                                 " in the dashboard"))
        age = self.oldest_waiting_seconds
        if age is not None and age > backlog_seconds:
            found.append(Problem("backlog", Severity.WARNING,
                                 f"the oldest waiting submission is {age / 60:.0f} minutes old"
                                 f" (over {backlog_seconds / 60:.0f})"))
        return found

    def severity(self, backlog_seconds: float) -> Severity:
        return max((p.severity for p in self.problems(backlog_seconds)), default=Severity.OK)

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "silent_workers": list(self.silent_workers)}


def worst_pause(store: Store) -> tuple[str, Breaker]:
    """The pause that matters most across the partners (one needing a person first, then
    the oldest): (the partner's name, "" for the default one; its state). Not paused: the
    default partner's state."""
    found = every_pause(store)
    paused = sorted((p for p in found if p[1].paused),
                    key=lambda p: (not p[1].sticky, p[1].paused_at, p[0]))
    return paused[0] if paused else ("", dict(found).get("", Breaker()))


def read_state(store: Store) -> DeliveryState:
    """The state now, from MySQL (several indexed reads; callers cache when they poll)."""
    partner, pause = worst_pause(store)
    counts = store.counts_by_status()
    workers = store.workers()
    cause = f"partner {partner}: {pause.cause}" if partner else pause.cause
    return DeliveryState(
        paused=pause.paused, paused_since=pause.paused_at or None, cause=cause,
        needs_person=pause.paused and pause.sticky,
        next_probe_at=(pause.next_probe_at or None) if pause.paused else None,
        waiting=sum(counts.get(str(s), 0) for s in WAITING),
        oldest_waiting_seconds=store.oldest_waiting_seconds(),
        failed=counts.get(str(Status.FAILED), 0),
        live_workers=sum(1 for w in workers if not w.silent),
        silent_workers=tuple(w.id for w in workers if w.silent))
