"""What the dashboard changes: retry, restart, cancel (one job or in bulk), resume, reveal.

Each change is one store transition with its log row naming the acting user
(`actor`), then a ring of the doorbell so a worker picks the work up at once.
"""

from __future__ import annotations

import logging
from typing import Any

from sidecar.admin.context import Admin, Conflict, NotFound, job_summary
from sidecar.admin.filters import BulkRetry
from sidecar.admin.read import document_names, submitted_fields, values_row
from sidecar.doorbell import ring_due
from sidecar.errors import InvalidTransition, StoreError
from sidecar.states import CLAIMABLE, Event, EventKind
from sidecar.store import LogEntry

log = logging.getLogger("formrelay.admin")
ACTIONS = {"retry": EventKind.RETRY, "restart": EventKind.RESTART, "cancel": EventKind.CANCEL}
PAST = {"retry": "retried", "restart": "restarted", "cancel": "cancelled"}
BULK_BATCH = 200  # failed jobs retried per call of a bulk retry by filter


def act(admin: Admin, job_id: int, action: str, user: str) -> dict[str, Any]:
    """Apply `action` to one job: its summary after the change; NotFound, or Conflict (409)."""
    job = admin.store.get_job(job_id)
    if job is None:
        raise NotFound(f"no job {job_id}")
    try:
        _transition(admin, job_id, action, user, job.priority)
    except InvalidTransition as exc:
        raise Conflict(f"job {job_id} cannot be {PAST[action]} in status {exc.status}") from None
    except StoreError as exc:  # deleted meanwhile (retention)
        raise NotFound(f"no job {job_id}") from exc
    row = admin.store.admin_job(job_id)
    if row is None:
        raise NotFound(f"no job {job_id}")
    return {"job": job_summary(row)}


def _transition(admin: Admin, job_id: int, action: str, user: str,
                priority: int | None = None) -> None:
    """The change, its log row, and a ring (with the job's `priority`, read if not given)."""
    state = admin.store.transition_job(
        job_id, Event(ACTIONS[action]),
        log=LogEntry(f"job.{action}", f"{PAST[action]} by {user}", actor=user))
    log.info("job %d %s by an admin", job_id, PAST[action])
    if state.status in CLAIMABLE:
        if priority is None:
            job = admin.store.get_job(job_id)
            priority = job.priority if job is not None else None
        if priority is not None:
            admin.doorbell.ring_record(job_id, priority)
    for document_id, priority in admin.store.due_documents_of(job_id):
        admin.doorbell.ring_document(document_id, priority)


def bulk_retry(admin: Admin, request: BulkRetry, user: str) -> dict[str, Any]:
    """Retry the given jobs, or the next batch of failed jobs matching a filter.

    A filter is worked through a batch per call, so each answer comes well within the
    bridge's timeout: `more` says whether to call again with the answer's `after`.
    """
    retried = skipped = 0

    def one(job_id: int) -> None:
        nonlocal retried, skipped
        try:
            _transition(admin, job_id, "retry", user)
            retried += 1
        except StoreError:  # InvalidTransition included: not failed or cancelled, or gone
            skipped += 1

    if request.filter is None:
        for job_id in request.ids:
            one(job_id)
        return {"retried": retried, "skipped": skipped}
    matching = request.filter.default_partner(admin.partners()[1])  # '' jobs: the default's
    batch = admin.store.failed_job_ids(matching, request.after, BULK_BATCH)
    for job_id in batch:
        one(job_id)
    return {"retried": retried, "skipped": skipped, "more": len(batch) == BULK_BATCH,
            "after": batch[-1] if batch else request.after}


def resume(admin: Admin, user: str) -> dict[str, bool]:
    """End the outage pauses, every partner's (log rows `delivery.resumed` naming the
    user), and ring the backlog."""
    ended = [p for p in admin.paused_partners() if p.resume(user) is not None]
    if ended:
        ring_due(admin.store, admin.doorbell)
    return {"resumed": bool(ended)}


def reveal(admin: Admin, job_id: int, user: str) -> dict[str, Any]:
    """The submitted values and the documents' original file names, for the signed caller
    only; the log row names who, not what."""
    missing: NotFound | None = None
    row = values_row(admin, job_id)
    try:
        fields = submitted_fields(admin, row)
    except NotFound as exc:  # no values (retention, none stored): names may still be there
        fields, missing = [], exc
    documents = [d for d in document_names(admin, job_id, row) if d["name"]]
    if missing is not None and not documents:
        raise missing
    admin.store.log(LogEntry("job.fields_revealed", f"submitted values shown to {user}"
                             f" ({len(fields)} fields, {len(documents)} document names)",
                             level="info", actor=user), job_id=job_id)
    return {"fields": [{"id": f["id"], "name": f["name"], "value": f["value"]} for f in fields],
            "documents": documents}
