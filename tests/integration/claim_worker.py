"""A claiming process for the concurrency proof (imported by spawned processes)."""

from __future__ import annotations

from typing import Any

from sidecar.store import Database, DbSettings, Store


def claim_until_drained(settings: DbSettings, prefix: str, owner: str, skip_locked: bool,
                        barrier: Any, batch: int) -> list[int]:
    """Claim in batches until no due job is left; return every id this process took."""
    store = Store(Database(settings), prefix, skip_locked=skip_locked)
    taken: list[int] = []
    barrier.wait(timeout=60)  # every process starts claiming at the same moment
    while True:
        jobs = store.claim(owner, batch, lease_seconds=600)
        taken.extend(job.id for job in jobs)
        if not jobs and store.count_due() == 0:
            break
    store.db.close()
    return taken
