"""The outage pause, shared by every worker: sidecar.breaker's rules on one MySQL row.

The engine asks `gate()` before it claims a step (so a paused delivery spends no
attempt) and reports each partner answer. Pause bookkeeping never raises into
delivery: if the row cannot be read or written, delivery goes on as if not
paused (the partner's answers still count attempts, so nothing is lost).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import datetime

from sidecar import metrics
from sidecar.breaker import (
    Breaker,
    Gate,
    Policy,
    gate,
    on_config_error,
    on_retryable,
    on_success,
    take_probe,
)
from sidecar.store import LogEntry, Store

log = logging.getLogger("formrelay.pause")
ROW = "breaker"
Rule = Callable[[Breaker, datetime], Breaker]


def row_of(partner: str) -> str:
    """A partner's pause row: ROW for the default partner (""), ROW:<name> for another."""
    return f"{ROW}:{partner}" if partner else ROW


def every_pause(store: Store) -> list[tuple[str, Breaker]]:
    """Every partner's pause as stored: (its key, "" for the default partner; its state)."""
    return [(name.partition(":")[2], Breaker.from_json(value))
            for name, value in store.shared_family(ROW).items()]


def fingerprint(token: str) -> str:
    """Tells one partner token from another without keeping it."""
    return hashlib.sha256(token.encode()).hexdigest()[:16] if token else ""


class Pause:
    """One partner's outage pause (`partner`: "" the default partner, whose row is ROW)."""

    def __init__(self, store: Store, policy: Policy, credentials: str = "",
                 partner: str = "") -> None:
        self.store, self.policy, self.credentials = store, policy, credentials
        self.row = row_of(partner)

    def state(self) -> Breaker:
        value, _ = self.store.shared(self.row)
        return Breaker.from_json(value)

    def read(self, value: str | None, now: datetime) -> tuple[Gate, Breaker]:
        """The verdict on a state read elsewhere (with a claim, in the same statement);
        nothing is taken: a PROBE verdict still needs check() to take the probe."""
        try:
            seen = Breaker.from_json(value)
            return gate(seen, now, self.credentials), seen
        except Exception as exc:  # never let the pause stop a delivery
            log.warning("outage pause state unreadable (%s): delivering", type(exc).__name__)
            return Gate.OPEN, Breaker(failures=-1)

    def gate(self, take: bool = True) -> Gate:
        return self.check(take)[0]

    def check(self, take: bool = True) -> tuple[Gate, Breaker]:
        """OPEN: deliver. PROBE: paused, and this caller holds the one probe (with `take`;
        without, the probe is due and nobody has taken it yet). SHUT: wait. And the state
        read, for succeeded().

        The engine asks without `take` before it claims (a paused delivery claims nothing)
        and takes the probe only just before the request, so a claim that finds nothing
        due, or a step that ends before calling the partner, never uses the probe up.
        """
        try:
            value, now = self.store.shared(self.row)
            seen = Breaker.from_json(value)
            verdict = gate(seen, now, self.credentials)
            if verdict is not Gate.PROBE or not take:
                return verdict, seen
            taken: list[bool] = []

            def take_it(b: Breaker, now: datetime) -> Breaker:
                verdict = gate(b, now, self.credentials)
                taken.append(verdict is Gate.PROBE)
                return take_probe(b, now) if verdict is Gate.PROBE else b

            self._change(take_it)
            return (Gate.PROBE if taken and taken[-1] else Gate.SHUT), seen
        except Exception as exc:  # never let the pause stop a delivery
            log.warning("outage pause state unreadable (%s): delivering", type(exc).__name__)
            return Gate.OPEN, Breaker(failures=-1)  # not the resting state: succeeded() reads

    def succeeded(self, known: Breaker | None = None) -> bool:
        """The partner answered: reset the count; True if that ended a pause.

        `known`: the state read just before the request; if it was the resting state,
        nothing needs writing (and nothing is read again).
        """
        try:
            if known is None:
                value, _ = self.store.shared(self.row)
                known = Breaker.from_json(value)
            if known == Breaker():
                return False
            return self.resume(None) is not None
        except Exception as exc:
            log.warning("could not record a partner success (%s)", type(exc).__name__)
            return False

    def failed(self, cause: str, probe: bool) -> Breaker | None:
        """A retryable failure (5xx, 429, timeout...): count it, maybe pause."""
        return self._safe(lambda b, now: on_retryable(b, cause, now, self.policy, probe),
                          "outage")

    def refused(self, cause: str, auth: bool) -> Breaker | None:
        """A configuration error (401/403, TLS, bad URL): pause at once."""
        return self._safe(lambda b, now: on_config_error(
            b, cause, now, self.policy, auth, self.credentials if auth else ""),
            "auth" if auth else "config")

    def resume(self, actor: str | None) -> Breaker | None:
        """End any pause (`actor`: the person who did); the pause ended, or None."""
        ended: list[Breaker] = []

        def end(b: Breaker, now: datetime) -> Breaker:
            ended[:] = [b] if b.paused else []  # the store may run this again (a deadlock)
            return on_success(b)

        self._change(end, actor)
        return ended[0] if ended else None

    def _safe(self, rule: Rule, reason: str) -> Breaker | None:
        try:
            return self._change(rule, reason=reason)
        except Exception as exc:
            log.warning("could not update the outage pause (%s)", type(exc).__name__)
            return None

    def _change(self, rule: Rule, actor: str | None = None, reason: str = "") -> Breaker:
        """`reason` (outage | auth | config): what a pause this change starts is counted as."""
        started: list[bool] = []

        def change(value: str | None, now: datetime) -> tuple[str | None, LogEntry | None]:
            old = Breaker.from_json(value)
            new = rule(old, now)
            started[:] = [new.paused and not old.paused]  # the store may run this again
            return new.to_json(), _log_entry(old, new, now, actor)

        changed = Breaker.from_json(self.store.change_shared(self.row, change))
        if started and started[0]:
            metrics.pause_started(reason)
        return changed


def _log_entry(old: Breaker, new: Breaker, now: datetime, actor: str | None) -> LogEntry | None:
    if new.paused and not old.paused:
        held = " (held until the partner token changes or someone resumes)" if new.sticky else ""
        return LogEntry("delivery.paused", f"delivery paused: {new.cause}{held}",
                        level="warning", actor=actor)
    if old.paused and not new.paused:
        since = datetime.fromisoformat(old.paused_at) if old.paused_at else now
        how = f"resumed by {actor}" if actor else "the partner answered again"
        return LogEntry("delivery.resumed", f"delivery resumed: {how} after"
                        f" {(now - since).total_seconds():.0f} s paused ({old.cause})",
                        level="info", actor=actor)
    return None
