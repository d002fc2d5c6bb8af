"""Jobs for stored WPForms entries that have none (missed notifies, history).

Idempotent: the job reference `wpforms:{form_id}:{entry_id}` is unique, so
running it twice, or next to the bridge capturing the same entry, creates
each job once. The jobs carry no snapshot: the engine reads the entry from
WPForms' tables when it delivers it. Reconciliation (the sweep) reuses this
with skip_imported, leaving entries imported from a Lite backup alone.

The plugin's delivery settings decide (sidecar.delivery_settings): only
entries of delivered forms get a job, with the form's priority; nothing at
all while the plugin is deactivated or has not published its settings.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sidecar.delivery_settings import DeliverySettings, fallback
from sidecar.doorbell import Ring
from sidecar.errors import FormRelayError
from sidecar.store import NewJob, Store


class NotDelivering(FormRelayError):
    """The plugin's settings say no job may be created now (deactivated, or unknown)."""


@dataclass
class BackfillResult:
    found: int = 0
    created: int = 0
    by_form: Counter[int] = field(default_factory=Counter)
    entry_ids: list[int] = field(default_factory=list)
    skipped: Counter[int] = field(default_factory=Counter)  # form id -> entries left alone
    reasons: dict[int, str] = field(default_factory=dict)  # form id -> why


def backfill(store: Store, ring: Ring | None, *, settings: DeliverySettings | None = None,
             form_id: int | None = None, since: datetime | None = None, dry_run: bool = False,
             skip_imported: bool = False, max_attempts: int = 10, batch: int = 500,
             after_id: int = 0, count_skipped: bool = False,
             since_selected: bool = False) -> BackfillResult:
    """Raises NotDelivering when the settings allow no job; `settings` None: the fallback
    (every form). `count_skipped`: also count the entries of forms not delivered.
    `since_selected` (reconciliation): leave alone entries stored before their form was
    delivered (before the plugin's activation or the form's selection)."""
    rules = settings if settings is not None else fallback()
    if not rules.creates_jobs:
        raise NotDelivering(rules.refusal())
    result = BackfillResult()
    if count_skipped and rules.forms is not None:
        for form, n in store.entries_without_jobs_outside(rules.forms, form_id, since).items():
            result.skipped[form] = n
            result.reasons[form] = rules.selected(form)[1]
    after = after_id
    while True:
        entries = store.entries_without_jobs(form_id, since, skip_imported, after, batch,
                                             forms=rules.forms)
        for entry in entries:
            if since_selected and _before_selection(rules, entry.form_id, entry.date):
                continue
            result.found += 1
            result.by_form[entry.form_id] += 1
            result.entry_ids.append(entry.entry_id)
            if dry_run:
                continue
            job, created = store.enqueue(NewJob(
                f"wpforms:{entry.form_id}:{entry.entry_id}", entry.form_id, entry.entry_id,
                None, "backfill", rules.priority(entry.form_id), max_attempts,
                rules.partner(entry.form_id)))
            if created:
                result.created += 1
                if ring is not None:
                    ring(job.id, job.priority)
        if len(entries) < batch:
            return result
        after = entries[-1].entry_id


def _before_selection(rules: DeliverySettings, form_id: int, stored: datetime | None) -> bool:
    since = rules.since(form_id)
    # WPForms dates entries in whole seconds: an entry of the selection's second counts.
    return since is not None and stored is not None and stored < since.replace(microsecond=0)
