"""The dashboard's answers, as JSON-ready dicts: the API returns them, the views render them."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

from sidecar.admin.context import Admin, NotFound, iso, iso_text, job_summary
from sidecar.admin.filters import JobQuery, LogQuery
from sidecar.delivery_settings import load as load_delivery_settings
from sidecar.errors import SubmissionError
from sidecar.retention import values_kept
from sidecar.seal import NotOpened, UnknownKey
from sidecar.states import JOB_STATUSES, WAITING
from sidecar.store.admin import SEARCH_WINDOW
from sidecar.submission import decode_fields

RETENTION_GONE = "the submitted values were deleted by retention"


def stats(admin: Admin) -> dict[str, Any]:
    store = admin.store
    found = store.counts_by_status()
    counts = {str(s): found.get(str(s), 0) for s in JOB_STATUSES}
    pause = admin.pause_state()
    workers = [{
        "id": w.id, "host": w.host, "pid": w.pid, "version": w.version,
        "worker_type": w.worker_type, "threads": w.threads, "last_seen": iso(w.last_seen),
        "seconds_since_seen": round(w.seconds_since_seen, 1),
        "silent": w.silent,  # the sweep's rule: missed 2 of its own beats plus 15 s
    } for w in store.workers()]
    age = store.oldest_waiting_seconds()
    return {
        "counts": counts,
        "waiting": sum(counts[str(s)] for s in WAITING),
        "oldest_waiting_seconds": None if age is None else round(age, 1),
        "pause": {"paused": pause.paused, "cause": pause.cause, "since": iso_text(pause.paused_at),
                  "sticky": pause.sticky, "next_probe_at": iso_text(pause.next_probe_at),
                  "failures": pause.failures},
        "workers": workers,
        "hourly": [{"hour": iso(h.hour), "delivered": h.delivered, "failed": h.failed}
                   for h in store.hourly_outcomes()],
        "delivery": load_delivery_settings(store).as_dict(),  # what is delivered
        # Sealed submissions: whether this sidecar holds a key (values in clear otherwise).
        "sealing": {"on": admin.opener.on, "key": admin.opener.newest or None},
    }


def jobs(admin: Admin, q: JobQuery) -> dict[str, Any]:
    """A page of the jobs list. The status counts come first: they give the total, and an
    empty or past-the-end page needs no page query. A filter on the default partner also
    takes the jobs not yet claimed (partner ''), which go there."""
    names, default = admin.partners()
    q = replace(q, filter=q.filter.default_partner(default))
    scope = admin.store.search_scope(q.filter)
    found = admin.store.job_status_counts(q.filter, scope)
    counts = {str(s): found.get(str(s), 0) for s in JOB_STATUSES}
    total = counts.get(q.filter.status, 0) if q.filter.status else sum(counts.values())
    rows = admin.store.job_page(q, scope) if q.offset < total else []
    return {"jobs": [job_summary(r, default) for r in rows], "total": total, "page": q.page,
            "per_page": q.per_page, "pages": max(1, math.ceil(total / q.per_page)),
            "counts": counts,
            # The error words were common among the newest jobs: only those were searched.
            "search_window": SEARCH_WINDOW if scope.windowed else None,
            # The partner filter's choices: the published names, the default first.
            "partners": names, "default_partner": default}


def job(admin: Admin, job_id: int) -> dict[str, Any]:
    store = admin.store
    row = store.admin_job(job_id)
    if row is None:
        raise NotFound(f"no job {job_id}")
    summary = job_summary(row, admin.partners()[1])
    summary.update(source=row["source"], priority=int(row["priority"]),
                   key_generation=int(row["key_generation"]))
    try:
        fields = [_named(f) for f in _decoded(admin, values_row(admin, job_id))]  # names only
    except NotFound:
        fields = []
    documents = [{  # no original file name: a name is a value, shown by Reveal only
        "id": d.id, "position": d.position, "status": str(d.status),
        "detected_type": d.detected_type, "size": d.size, "attempts": d.attempts,
        "max_attempts": d.max_attempts, "last_error": d.last_error,
        "error_category": d.error_category, "partner_document_id": d.partner_document_id,
        "file_removed_at": iso(d.file_removed_at),
    } for d in store.documents(job_id)]
    timeline = [{
        "id": int(e["id"]), "created_at": iso(e["created_at"]), "level": e["level"],
        "event": e["event"], "message": e["message"], "attempt": e["attempt"],
        "http_status": e["http_status"], "duration_ms": e["duration_ms"], "actor": e["actor"],
        "document_id": e["document_id"],
    } for e in store.job_log(job_id)]
    summary["sealed_to"] = row["seal_key"]  # the key id its snapshot is sealed to, or None
    return {"job": summary, "retention": _retention(admin, row), "fields": fields,
            "documents": documents, "timeline": timeline}


def _retention(admin: Admin, row: dict[str, Any]) -> dict[str, Any]:
    """When the job's submitted values go (or went), and whether delivered files are removed."""
    kept = values_kept(admin.retention, str(row["status"]), row["updated_at"],
                       row.get("values_dropped_at"))
    return {"values_kept_until": iso(kept["kept_until"]),
            "values_dropped_at": iso(kept["dropped_at"]), "setting": kept["setting"],
            "days": kept["days"], "keep_snapshot_days": admin.retention.keep_snapshot_days,
            "keep_failed_days": admin.retention.keep_failed_days,
            "delete_delivered_files": admin.retention.delete_delivered_files}


def values_row(admin: Admin, job_id: int) -> dict[str, Any]:
    """What decides where a job's values are (AdminStore.job_snapshot): read once for
    both halves of Reveal."""
    row = admin.store.job_snapshot(job_id)
    if row is None:
        raise NotFound(f"no job {job_id}")
    return row


def submitted_fields(admin: Admin, row: dict[str, Any]) -> list[dict[str, str]]:
    """The job's fields with their values (for Reveal), from where delivery reads them."""
    return [{**_named(f), "value": _text(f.get("value"))} for f in _decoded(admin, row)]


def document_names(admin: Admin, job_id: int, row: dict[str, Any]) -> list[dict[str, Any]]:
    """The job's documents' original file names (for Reveal): values like the fields'.
    None once retention dropped the job's values (a failed document's sealed place
    keeps its path for a retry, and its name inside the same box)."""
    if row["values_dropped_at"] is not None:
        return []
    docs = admin.store.documents(job_id)
    return [{"id": d.id, "name": name} for d, name in zip(docs, admin.opener.names(docs),
                                                          strict=True)]


def _named(field: dict[str, Any]) -> dict[str, str]:
    return {"id": str(field.get("id", "")), "name": str(field.get("name") or ""),
            "type": str(field.get("type") or "")}


def _decoded(admin: Admin, row: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    """The job's fields as WPForms stores them.

    The snapshot the bridge stored; for jobs created without one (backfill, the
    sweep) the WPForms entry, as the engine does. A bridge job whose snapshot is
    gone lost it to retention: its values are not read from WPForms either.
    """
    raw: Any = None
    try:
        snapshot = admin.opener.open_snapshot(row["seal_key"], row["snapshot"])
    except UnknownKey as exc:  # the values are there, but not for this sidecar to read
        raise NotFound(str(exc)) from None
    except NotOpened:
        snapshot = None
    if snapshot:
        try:
            raw = json.loads(snapshot).get("fields")
        except (ValueError, AttributeError):
            raw = None
    if raw is None and row["source"] == "wpforms" and not row["snapshot"]:
        raise NotFound(RETENTION_GONE)
    if raw is None and int(row["entry_id"]) > 0:
        try:
            entry = admin.store.wpforms_entry(int(row["entry_id"]))
        except SubmissionError:
            entry = None
        if entry is not None:
            try:
                raw = json.loads(entry.fields)
            except ValueError:
                raw = None
    if raw is None:
        raise NotFound("this job holds no submitted values")
    return decode_fields(raw)


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def logs(admin: Admin, q: LogQuery) -> dict[str, Any]:
    rows, more = admin.store.log_page(q)
    return {"logs": [{
        "id": int(r["id"]), "created_at": iso(r["created_at"]), "level": r["level"],
        "event": r["event"], "message": r["message"], "job_id": r["job_id"],
        "document_id": r["document_id"], "attempt": r["attempt"],
        "http_status": r["http_status"], "duration_ms": r["duration_ms"], "actor": r["actor"],
    } for r in rows], "page": q.page, "per_page": q.per_page, "has_more": more}


INCIDENT_TITLES = {"paused": "Delivery paused", "failed": "Jobs failed",
                   "backlog": "Delivery backlog", "no_worker": "No worker running",
                   "uploads": "Uploads directory unreadable"}


def incidents(admin: Admin) -> dict[str, Any]:
    """Open incidents, then those resolved in the last 7 days (sidecar.monitor opens them)."""
    rows = admin.store.incidents(limit=50, recent_days=7)
    return {"incidents": [{
        "id": i.id, "kind": i.kind, "title": INCIDENT_TITLES.get(i.kind, i.kind),
        "severity": i.severity, "open": i.is_open, "summary": i.summary, "details": i.details,
        "opened_at": iso(i.opened_at), "updated_at": iso(i.updated_at),
        "resolved_at": iso(i.resolved_at),
    } for i in rows]}
