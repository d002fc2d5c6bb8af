"""The doorbell: what wakes a worker for a step. One type for every part that rings.

The engine, the sweep, the web process's notify and admin actions, backfill and the
CLI all ring through a `Doorbell` (sidecar.tasks.Tasks enqueues on Huey; tests collect
rings in a list). A lost ring costs time, never a submission: state is in MySQL and
the sweep rings due work again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

# One ring: (job or document id, priority). A bound method of a Doorbell is one.
Ring = Callable[[int, int], None]


class Doorbell(Protocol):
    """Wakes a worker for a step, now or after `delay` seconds."""

    def ring_record(self, job_id: int, priority: int, delay: float = 0) -> None: ...

    def ring_document(self, document_id: int, priority: int, delay: float = 0) -> None: ...


@dataclass
class Recorded:
    """A doorbell that only keeps its rings, in order: (step, id, priority, delay), the
    step "record" or "document" (tests, and benches that must not enqueue)."""

    rings: list[tuple[str, int, int, float]] = field(default_factory=list)

    def ring_record(self, job_id: int, priority: int, delay: float = 0) -> None:
        self.rings.append(("record", job_id, priority, delay))

    def ring_document(self, document_id: int, priority: int, delay: float = 0) -> None:
        self.rings.append(("document", document_id, priority, delay))
