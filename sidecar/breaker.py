"""The outage pause (a circuit breaker): pure rules, no I/O.

After `threshold` consecutive retryable failures, or any configuration error,
delivery pauses for every worker (the state is one row in MySQL): no step is
claimed, so no attempt is spent while the partner is down. One probe goes out
when `next_probe_at` comes, with the wait doubling from `probe_min` up to
`probe_max`; the first success resumes delivery. A pause caused by 401/403
stays until the credentials change or a person resumes: probing with a
refused token only gets refused again.

The state lives in one formrelay_meta row, changed under its row lock by every
worker (sidecar/pause.py); times are the database server's, shared by all hosts.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum


class Gate(StrEnum):
    OPEN = "open"  # deliver as usual
    PROBE = "probe"  # paused, and this caller sends the one probe
    SHUT = "shut"  # paused: leave the work waiting


@dataclass(frozen=True)
class Policy:
    threshold: int = 5
    probe_min: float = 30.0
    probe_max: float = 300.0


@dataclass(frozen=True)
class Breaker:
    paused: bool = False
    failures: int = 0  # consecutive retryable failures
    cause: str = ""
    sticky: bool = False  # paused by 401/403: no probes until the credentials change
    credentials: str = ""  # a fingerprint of the token the sticky pause saw
    paused_at: str = ""
    next_probe_at: str = ""
    probe_wait: float = 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> Breaker:
        try:
            data = json.loads(text or "{}")
            return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
        except (ValueError, TypeError):
            return cls()


def _at(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds")


def _pause(b: Breaker, cause: str, now: datetime, policy: Policy, sticky: bool = False,
           credentials: str = "") -> Breaker:
    # A sticky pause may probe as soon as the credentials differ (gate() checks that).
    first_probe = now if sticky else now + timedelta(seconds=policy.probe_min)
    return replace(b, paused=True, cause=cause, sticky=sticky, credentials=credentials,
                   paused_at=_at(now), probe_wait=policy.probe_min,
                   next_probe_at=_at(first_probe))


def on_success(b: Breaker) -> Breaker:
    """A request succeeded: the partner is back (or never left)."""
    return Breaker()


def on_retryable(b: Breaker, cause: str, now: datetime, policy: Policy,
                 probe: bool = False) -> Breaker:
    if b.paused and not probe:  # a request sent before the pause: the probes decide
        return b
    if b.paused:  # a failed probe: wait longer before the next
        wait = min(policy.probe_max, max(policy.probe_min, b.probe_wait * 2))
        return replace(b, cause=cause, probe_wait=wait,
                       next_probe_at=_at(now + timedelta(seconds=wait)))
    failures = b.failures + 1
    if failures >= policy.threshold:
        return replace(_pause(b, f"{failures} failures in a row, the last: {cause}", now,
                              policy), failures=failures)
    return replace(b, failures=failures)


def on_config_error(b: Breaker, cause: str, now: datetime, policy: Policy, auth: bool,
                    credentials: str = "") -> Breaker:
    if b.paused:  # a failed probe: the same pause goes on, and the next probe waits longer
        wait = min(policy.probe_max, max(policy.probe_min, b.probe_wait * 2))
        return replace(b, cause=cause, sticky=auth, credentials=credentials, probe_wait=wait,
                       next_probe_at=_at(now if auth else now + timedelta(seconds=wait)))
    return _pause(b, cause, now, policy, sticky=auth, credentials=credentials)


def gate(b: Breaker, now: datetime, credentials: str = "") -> Gate:
    """May a step be attempted now? PROBE means: yes, as the one probe (take the slot)."""
    if not b.paused:
        return Gate.OPEN
    if b.sticky and credentials == b.credentials:  # a refused token is refused again
        return Gate.SHUT
    return Gate.PROBE if not b.next_probe_at or _at(now) >= b.next_probe_at else Gate.SHUT


def take_probe(b: Breaker, now: datetime) -> Breaker:
    """The probe slot is taken: nobody else probes before the next wait is over."""
    return replace(b, next_probe_at=_at(now + timedelta(seconds=max(b.probe_wait, 1.0))))
