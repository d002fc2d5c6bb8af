"""How long to wait before the next attempt: pure functions, no clock, no I/O.

Exponential backoff with full jitter (a uniform draw between 0 and the
ceiling), the ceiling doubling (by `factor`) per failed attempt up to a cap.
Full jitter spreads a crowd of retries after an outage instead of sending
them back in waves. A partner's Retry-After is a floor, clamped to the cap.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass


def backoff_ceiling(attempts: int, base: float, factor: float, max_backoff: float) -> float:
    """The longest wait after `attempts` failed attempts (1 = the first failure)."""
    if attempts < 1 or base <= 0:
        return 0.0
    try:
        raw = base * factor ** (attempts - 1)
    except OverflowError:
        raw = math.inf
    return min(max_backoff, raw)


def compute_backoff(attempts: int, factor: float, jitter: bool, max_backoff: float,
                    base: float = 30.0, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait after `attempts` failed attempts: full jitter under the ceiling."""
    ceiling = backoff_ceiling(attempts, base, factor, max_backoff)
    return rand() * ceiling if jitter else ceiling


@dataclass(frozen=True)
class RetryPolicy:
    base: float = 30.0
    factor: float = 2.0
    max_backoff: float = 3600.0
    jitter: bool = True

    def delay(self, attempts: int, retry_after: float | None = None,
              rand: Callable[[], float] = random.random) -> float:
        """The wait before the next attempt, honouring the partner's Retry-After."""
        wait = compute_backoff(attempts, self.factor, self.jitter, self.max_backoff, self.base,
                               rand)
        if retry_after is not None:
            wait = max(wait, min(max(retry_after, 0.0), self.max_backoff))
        return wait
