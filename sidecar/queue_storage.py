"""Queue storage that wakes an idle worker at once: no idle penalty.

Huey's worker backs off while the queue is empty (0.1 s growing to 10 s) unless
its storage blocks in `dequeue()`; then it asks again at once. So both of ours
block, for at most READ_TIMEOUT_SECONDS, after which the worker sees its stop
flag (the consumer's stop ends the waits of its own threads at once, a process
worker's or a Redis pop's within that time):

- Redis: BZPOPMIN, which Redis answers the moment a ring arrives.
- SQLite: a ring from the same process (`formrelay run`: the web thread and the
  worker threads share this object) notifies a condition the idle workers wait
  on; a ring from another process (process workers, a separate `formrelay web`)
  is seen by a poll every POLL_SECONDS, by one idle worker of each process (the
  others look once a READ_TIMEOUT_SECONDS): Huey's cheap `select 1 ... limit 1`,
  about 0.15 ms of CPU a poll (idle CPU: README, "Commands of the sidecar").
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from huey.storage import PriorityRedisStorage, SqliteStorage

READ_TIMEOUT_SECONDS = 1.0  # longest a dequeue blocks: bounds an idle worker's stop
POLL_SECONDS = 0.1  # SQLite: how often an idle worker looks for another process's ring


class BlockingRedisStorage(PriorityRedisStorage):  # type: ignore[misc]
    """Huey's priority storage with the blocking pop stated, not left to Huey's default."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.update(blocking=True, read_timeout=READ_TIMEOUT_SECONDS)
        super().__init__(*args, **kwargs)


class WakingSqliteStorage(SqliteStorage):  # type: ignore[misc]
    """Huey's SQLite storage with a blocking dequeue: woken by a ring, else a short poll."""

    blocking = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reset_wake()
        # A forked process worker must not inherit a lock some thread held at the fork.
        os.register_at_fork(after_in_child=_reset_in_child(weakref.ref(self)))

    def _reset_wake(self) -> None:
        self._rung = threading.Condition()
        self._rings = 0  # counts rings, so one that lands between a pop and a wait is seen
        self._stops = 0  # counts stops: a waiting dequeue returns, so its worker sees the flag
        self._polled = False  # an idle worker of this process polls for other processes' rings
        self.waiting = 0  # workers of this process waiting for work now (tests read it)

    def enqueue(self, data: bytes, priority: int | None = None) -> None:
        super().enqueue(data, priority)
        with self._rung:
            self._rings += 1
            self._rung.notify()

    def wake_all(self) -> None:
        """End every wait of this process's workers now (the consumer is stopping)."""
        with self._rung:
            self._stops += 1
            self._rung.notify_all()

    def dequeue(self) -> bytes | None:
        deadline, stops = time.monotonic() + READ_TIMEOUT_SECONDS, self._stops
        polling = False  # one idle worker per process polls; the others wait for a ring
        try:
            while True:
                seen = self._rings
                data: bytes | None = super().dequeue()
                left = deadline - time.monotonic()
                if data is not None or left <= 0 or self._stops != stops:
                    return data
                with self._rung:
                    if self._rings == seen and self._stops == stops:
                        if not (polling or self._polled):
                            polling = self._polled = True
                        self.waiting += 1
                        self._rung.wait(min(POLL_SECONDS, left) if polling else left)
                        self.waiting -= 1
        finally:
            if polling:
                with self._rung:
                    self._polled = False
                    self._rung.notify()  # hand the poll to another idle worker


def _reset_in_child(ref: weakref.ref[WakingSqliteStorage]) -> Callable[[], None]:
    def reset() -> None:
        if (storage := ref()) is not None:
            storage._reset_wake()
    return reset
