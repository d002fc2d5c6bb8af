"""The doorbell: what wakes a worker for a step. One type for every part that rings.

The engine, the sweep, the web process's notify and admin actions, backfill and the
CLI all ring through a `Doorbell` (sidecar.tasks.Tasks enqueues on Huey; tests collect
rings in a list). A lost ring costs time, never a submission: state is in MySQL and
the sweep rings due work again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

# One ring: (job or document id, priority). A bound method of a Doorbell is one.
Ring = Callable[[int, int], None]


class Doorbell(Protocol):
    """Wakes a worker for a step, now or after `delay` seconds."""

    def ring_record(self, job_id: int, priority: int, delay: float = 0) -> None: ...

    def ring_document(self, document_id: int, priority: int, delay: float = 0) -> None: ...
