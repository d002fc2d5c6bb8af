"""A claiming process for the concurrency proof (imported by spawned processes).

It claims the way the engine does: ids from `due_work` (every process sees the same
ones, as duplicated doorbells would ring them), each taken by
`claim_job_for_delivery` / `claim_document_for_delivery`.
"""

from __future__ import annotations

from typing import Any

from sidecar.store import Database, DbSettings, Store


def claim_until_drained(settings: DbSettings, prefix: str, owner: str, skip_locked: bool,
                        barrier: Any, batch: int) -> tuple[list[int], list[int]]:
    """Claim until no due job or document is left: (job ids, document ids) this process took."""
    store = Store(Database(settings), prefix, skip_locked=skip_locked)
    jobs: list[int] = []
    documents: list[int] = []
    barrier.wait(timeout=60)  # every process starts claiming at the same moment
    while True:
        due_jobs, due_documents = store.due_work(batch)
        if not due_jobs and not due_documents:
            break
        for job_id, _ in due_jobs:
            if store.claim_job_for_delivery(job_id, owner, 600) is not None:
                jobs.append(job_id)
        for document_id, _ in due_documents:
            if store.claim_document_for_delivery(document_id, owner, 600) is not None:
                documents.append(document_id)
    store.db.close()
    return jobs, documents
