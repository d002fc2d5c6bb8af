"""Jobs for stored WPForms entries that have none (missed notifies, history).

Idempotent: the job reference `wpforms:{form_id}:{entry_id}` is unique, so
running it twice, or next to the bridge capturing the same entry, creates
each job once. The jobs carry no snapshot: the engine reads the entry from
WPForms' tables when it delivers it. Reconciliation (the sweep) reuses this
with skip_imported, leaving entries imported from a Lite backup alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sidecar.store import NewJob, Store

Ring = Callable[[int, int], None]  # (job id, priority)


@dataclass
class BackfillResult:
    found: int = 0
    created: int = 0
    by_form: Counter[int] = field(default_factory=Counter)
    entry_ids: list[int] = field(default_factory=list)


def backfill(store: Store, ring: Ring | None, *, form_id: int | None = None,
             since: datetime | None = None, dry_run: bool = False, skip_imported: bool = False,
             max_attempts: int = 10, priority: int = 10, batch: int = 500,
             after_id: int = 0) -> BackfillResult:
    result = BackfillResult()
    after = after_id
    while True:
        entries = store.entries_without_jobs(form_id, since, skip_imported, after, batch)
        for entry in entries:
            result.found += 1
            result.by_form[entry.form_id] += 1
            result.entry_ids.append(entry.entry_id)
            if dry_run:
                continue
            job, created = store.enqueue(NewJob(
                f"wpforms:{entry.form_id}:{entry.entry_id}", entry.form_id, entry.entry_id,
                None, "backfill", priority, max_attempts))
            if created:
                result.created += 1
                if ring is not None:
                    ring(job.id, job.priority)
        if len(entries) < batch:
            return result
        after = entries[-1].entry_id
