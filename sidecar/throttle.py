"""Partner protection: a ceiling on concurrent requests and on requests per second,
honoured by every worker on every host (the state is in MySQL: sidecar/store/shared.py).

A step waits for a slot after its claim, so the queue's order (priority, then
age) is the order requests start in: after an outage the backlog drains at the
ceiling's pace instead of all at once. With W worker threads in all and R
requests per second, a booking is never more than about W / R seconds ahead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sidecar.store import Store

log = logging.getLogger("formrelay.throttle")


@dataclass(frozen=True)
class Limits:
    concurrency: int = 4  # 0: no ceiling
    per_second: float = 10.0  # 0: no ceiling
    slot_wait: float = 30.0  # give the step back if no slot frees up in this time


class Throttle:
    """One partner's ceilings (`partner`: "" the default partner; each its own slots and
    pace, so one partner's backlog never holds another's requests)."""

    def __init__(self, store: Store, limits: Limits, partner: str = "") -> None:
        self.store, self.limits, self.partner = store, limits, partner

    @property
    def ceilings(self) -> bool:
        """Whether any ceiling is set (without, a slot costs no statement)."""
        return self.limits.concurrency > 0 or self.limits.per_second > 0

    @contextmanager
    def slot(self) -> Iterator[bool]:
        """Hold a concurrency slot and this request's start time; False if none came.

        A database error here lets the request go unthrottled rather than stall it.
        """
        slot, granted = self._acquire()
        try:
            yield granted
        finally:
            if slot is not None:
                try:
                    self.store.free_partner_slot(slot, self.partner)
                except Exception as exc:  # a dead connection freed it already
                    log.debug("slot release failed (%s)", type(exc).__name__)

    def _acquire(self) -> tuple[int | None, bool]:
        slot: int | None = None
        try:
            if self.limits.concurrency > 0:
                slot = self.store.take_partner_slot(self.limits.concurrency,
                                                    self.limits.slot_wait, self.partner)
                if slot is None:
                    return None, False
            if self.limits.per_second > 0:
                wait = self.store.reserve_pace(1.0 / self.limits.per_second, self.partner)
                if wait > self.limits.slot_wait:  # longer than the lease allows: give it back
                    return slot, False
                if wait > 0:
                    time.sleep(wait)  # pacing, not synchronisation: the booked start time
        except Exception as exc:  # protection must not stop delivery
            log.warning("partner throttle unavailable (%s): sending", type(exc).__name__)
        return slot, True
