"""The doorbell: what wakes a worker for a step. One type for every part that rings.

The engine, the sweep, the web process's notify and admin actions, backfill and the
CLI all ring through a `Doorbell` (sidecar.tasks.Tasks enqueues on Huey; tests collect
rings in a list). A lost ring costs time, never a submission: state is in MySQL and
the sweep rings due work again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sidecar.store import Store

log = logging.getLogger("formrelay.engine")

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


def ring_due(store: Store, doorbell: Doorbell, limit: int = 1000) -> tuple[int, int]:
    """Ring every due job and document (most urgent, then oldest, first)."""
    jobs, documents = store.due_work(limit)
    for job_id, priority in jobs:
        doorbell.ring_record(job_id, priority)
    for document_id, priority in documents:
        doorbell.ring_document(document_id, priority)
    if jobs or documents:
        log.info("rang %d due jobs and %d due documents", len(jobs), len(documents))
    return len(jobs), len(documents)
