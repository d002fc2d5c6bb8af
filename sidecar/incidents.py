"""Which incidents should be open, and what to do about the ones that are: pure rules.

The delivery state is `health.DeliveryState`, judged by its own `problems()`, so
an incident is open exactly while healthz and `formrelay status` report the same
problem. Incidents add only what a push message needs on top:

- `no_worker` waits until no worker has beaten for 2 sweep intervals (the
  health problem starts when the last worker is judged silent);
- `workers_silent` (some workers silent, others live) opens no incident: the
  sweep gives their work back, and status and healthz show it;
- `uploads` is judged only by processes that have FORMRELAY_UPLOADS_DIR, and is
  resolved only after no process reported it unreadable for `uploads_quiet`
  seconds, so hosts that disagree do not make it flap;
- `failed` sends one message when it opens, then at most one digest per
  FORMRELAY_ALERT_DIGEST_MINUTES with the failures since the last message.

Nothing here does I/O; the monitor (sidecar/monitor.py) gathers the facts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sidecar.health import DeliveryState, Problem, Severity
from sidecar.store.incidents import FailedSummary, Incident

KINDS = ("paused", "failed", "backlog", "no_worker", "uploads")
SEVERITIES = {Severity.CRITICAL: "critical", Severity.WARNING: "warning"}
# The status and category of a partner failure, and its own hint in brackets: what an alert
# says of a pause's cause. The masked partner text after it stays in the dashboard.
_STATUS = re.compile(r"HTTP \d{3} [a-z_]+(?: \([^)]*\))?")
CAUSE_CHARS = 160


@dataclass(frozen=True)
class Wanted:
    """An incident that should be open now."""

    kind: str
    severity: str  # critical | warning
    summary: str  # plain words: ids, counts, categories
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Facts:
    state: DeliveryState
    now: datetime  # the database's clock
    backlog_seconds: float
    no_worker_for: float | None  # seconds since any worker's last heartbeat; None: one is live
    no_worker_after: float  # 2 sweep intervals
    uploads_readable: bool | None = None  # None: this process does not check uploads
    uploads_quiet: float = 90.0
    failed: FailedSummary | None = None  # every job in status failed


@dataclass(frozen=True)
class Plan:
    open: tuple[Wanted, ...] = ()
    update: tuple[tuple[Incident, Wanted], ...] = ()
    escalate: tuple[tuple[Incident, Wanted], ...] = ()  # warning became critical: a message
    resolve: tuple[Incident, ...] = ()


def plain_cause(cause: str) -> str:
    """A pause's cause as alerts say it: up to the status and category, no partner text."""
    found = _STATUS.search(cause)
    text = cause[:found.end()] if found else cause
    return text[:CAUSE_CHARS]


def wanted(facts: Facts) -> dict[str, Wanted]:
    """The incidents this process judges should be open, by kind."""
    found: dict[str, Wanted] = {}
    s = facts.state
    for p in s.problems(facts.backlog_seconds):
        made = _from_problem(p, facts)
        if made is not None:
            found[made.kind] = made
    if facts.uploads_readable is False:
        found["uploads"] = Wanted("uploads", "critical",
                                  "the uploads directory (FORMRELAY_UPLOADS_DIR) cannot be read:"
                                  " documents cannot be checked or sent")
    return found


def _from_problem(p: Problem, facts: Facts) -> Wanted | None:
    s, severity = facts.state, SEVERITIES[p.severity]
    if p.kind == "paused":
        cause = plain_cause(s.cause)
        if s.needs_person:
            summary = (f"delivery paused and needs a person: {cause}; fix the partner token,"
                       " then resume")
        else:
            summary = f"delivery paused after partner failures: {cause}; probing"
        return Wanted("paused", severity, summary, {
            "since": s.paused_since, "cause": cause, "needs_person": s.needs_person,
            "next_probe_at": s.next_probe_at, "waiting": s.waiting})
    if p.kind == "no_worker":
        if facts.no_worker_for is None or facts.no_worker_for < facts.no_worker_after:
            return None
        return Wanted("no_worker", severity,
                      f"no worker heartbeat for {facts.no_worker_for / 60:.0f} minutes:"
                      " nothing is being delivered",
                      {"silent_workers": list(s.silent_workers), "waiting": s.waiting})
    if p.kind == "failed":
        details = facts.failed.as_json() if facts.failed else {"failed": s.failed}
        return Wanted("failed", severity, f"{s.failed} job(s) failed permanently; retry or"
                      " cancel them in the dashboard", details)
    if p.kind == "backlog":
        age = s.oldest_waiting_seconds or 0.0
        return Wanted("backlog", severity, p.reason, {
            "oldest_waiting_seconds": round(age), "waiting": s.waiting,
            "threshold_seconds": round(facts.backlog_seconds)})
    return None  # workers_silent: shown by status and healthz, no incident


def judged(facts: Facts) -> set[str]:
    """The kinds this process can judge (and so resolve)."""
    kinds = set(KINDS)
    if facts.uploads_readable is None:
        kinds.discard("uploads")
    return kinds


def plan(facts: Facts, open_now: Mapping[str, Incident]) -> Plan:
    want = wanted(facts)
    opening = tuple(w for k, w in want.items() if k not in open_now)
    update = tuple((i, want[k]) for k, i in open_now.items() if k in want)
    escalate = tuple((i, w) for i, w in update
                     if i.severity == "warning" and w.severity == "critical")
    resolve = tuple(i for k, i in open_now.items()
                    if k in judged(facts) and k not in want and _may_resolve(i, facts))
    return Plan(opening, update, escalate, resolve)


def _may_resolve(incident: Incident, facts: Facts) -> bool:
    if incident.kind != "uploads":
        return True
    return (facts.now - incident.updated_at).total_seconds() >= facts.uploads_quiet


def digest_due(incident: Incident, now: datetime, digest_seconds: float,
               new_failures: int) -> bool:
    """A failed incident's next digest: failures since the last message, and that message
    at least FORMRELAY_ALERT_DIGEST_MINUTES old."""
    if incident.kind != "failed" or new_failures <= 0:
        return False
    last = incident.digest_at or incident.opened_at
    return (now - last).total_seconds() >= digest_seconds


def message_facts(kind: str, wanted_now: Wanted | None, incident: Incident | None = None,
                  failures: FailedSummary | None = None) -> dict[str, Any]:
    """What one message says, fixed when it is cut: a retry sends the same text."""
    facts: dict[str, Any] = {"kind": kind}
    if wanted_now is not None:
        facts.update(severity=wanted_now.severity, summary=wanted_now.summary,
                     details=wanted_now.details)
    elif incident is not None:
        facts.update(severity=incident.severity, summary=incident.summary,
                     details=incident.details)
    if failures is not None:
        facts["new"] = failures.as_json()
    return facts
