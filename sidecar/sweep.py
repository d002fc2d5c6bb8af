"""Finding work whose doorbell was lost, and ringing it again.

Huey delivers a task at most once: a task lost with a killed worker or a
flushed Redis leaves its job waiting in MySQL. `ring_due` rings every due job
and document; a worker runs it when it starts (the sidecar may have been down
while submissions arrived). The engine's claims make extra rings harmless.
"""

from __future__ import annotations

import logging

from sidecar.store import Store
from sidecar.tasks import Tasks

log = logging.getLogger("formrelay.sweep")


def ring_due(store: Store, tasks: Tasks, limit: int = 1000) -> tuple[int, int]:
    jobs, documents = store.due_work(limit)
    for job_id, priority in jobs:
        tasks.ring_record(job_id, priority)
    for document_id, priority in documents:
        tasks.ring_document(document_id, priority)
    if jobs or documents:
        log.info("rang %d due jobs and %d due documents", len(jobs), len(documents))
    return len(jobs), len(documents)
