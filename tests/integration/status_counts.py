"""A mixed workload through the store's own transitions, and the check that the status
counts (migration 0008, sidecar/store/counts.py) still equal GROUP BY over the jobs table.
Shared by tests/integration/test_status_counts.py and the WordPress capture test."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sidecar.states import Event, EventKind
from sidecar.store import NewDocument, Store
from sidecar.store.counts import COUNTED, counts_table

K = EventKind
OWNER = "w"


def rows(store: Store, query: str, *args: object) -> list[dict[str, Any]]:
    with store.db.transaction() as cur:
        cur.execute(query.replace("{p}", store.prefix), args)
        return list(cur.fetchall()) if cur.with_rows else []


def grouped(store: Store) -> Counter[tuple[int, str]]:
    """(form, status) -> jobs, counted the slow way."""
    return Counter({(int(r["form_id"]), str(r["status"])): int(r["n"]) for r in rows(
        store, "SELECT form_id, status, COUNT(*) AS n FROM {p}formrelay_jobs"
               " GROUP BY form_id, status")})


def assert_counts_exact(store: Store) -> None:
    """The counts table equals GROUP BY for the ended statuses, and every count the
    dashboard reads (all forms, each form) equals GROUP BY for every status."""
    truth = grouped(store)
    kept: Counter[tuple[int, str]] = Counter()
    for r in rows(store, f"SELECT form_id, status, n FROM {counts_table(store.prefix)}"):
        kept[(int(r["form_id"]), str(r["status"]))] += int(r["n"])
    assert +kept == Counter({k: n for k, n in truth.items() if k[1] in COUNTED})
    overall: Counter[str] = Counter()
    for (_, status), n in truth.items():
        overall[status] += n
    assert store.counts_by_status() == dict(+overall)
    for form in {form for form, _ in truth}:
        assert store.counts_by_status(form) == {s: n for (f, s), n in truth.items()
                                                if f == form and n}
    assert store.recount_jobs() == {}


def complete(store: Store, job_id: int) -> None:
    assert store.claim_job(job_id, OWNER, 300) is not None
    store.transition_job(job_id, Event(K.RECORD_SENT), owner=OWNER, partner_id=f"P-{job_id}")


def mixed_workload(store: Store, job_ids: list[int]) -> dict[str, list[int]]:
    """Deliver, fail (by the record and by a document), retry, restart, cancel and leave
    retrying the given pending jobs, then purge the oldest delivered ones; what each got."""
    done: dict[str, list[int]] = {}
    for i, job_id in enumerate(job_ids):
        plan = ("deliver", "fail_document", "fail_retry", "retrying", "restart", "cancel")[i % 6]
        done.setdefault(plan, []).append(job_id)
        if plan == "cancel":
            store.transition_job(job_id, Event(K.CANCEL))
            store.transition_job(job_id, Event(K.RESTART), log=None)  # back to pending
            store.transition_job(job_id, Event(K.CANCEL))
            continue
        assert store.claim_job(job_id, OWNER, 300) is not None
        if plan == "deliver":
            store.transition_job(job_id, Event(K.RECORD_SENT), owner=OWNER, partner_id="P")
        elif plan == "fail_document":
            store.transition_job(job_id, Event(K.RECORD_SENT, has_documents=True), owner=OWNER,
                                 partner_id="P", documents=[
                                     NewDocument("4", n, f"d{n}.pdf", f"/u/d{n}.pdf", 10)
                                     for n in range(2)])
            first, second = store.documents(job_id)
            for doc, event in ((first, Event(K.UPLOADED)),
                               (second, Event(K.REJECTED, error="not a PDF"))):
                assert store.claim_document(doc.id, OWNER, 300) is not None
                store.transition_document(doc.id, event, owner=OWNER)
        elif plan == "fail_retry":  # failed, retried by an admin, delivered
            store.transition_job(job_id, Event(K.PERMANENT_ERROR, error="HTTP 422"), owner=OWNER)
            store.transition_job(job_id, Event(K.RETRY))
            complete(store, job_id)
        elif plan == "retrying":
            store.transition_job(job_id, Event(K.RETRYABLE_ERROR, error="HTTP 503", delay=600),
                                 owner=OWNER)
        elif plan == "restart":  # delivered, restarted from scratch: pending again
            store.transition_job(job_id, Event(K.RECORD_SENT), owner=OWNER, partner_id="P")
            store.transition_job(job_id, Event(K.RESTART))
    old = done["deliver"][: max(1, len(done["deliver"]) // 2)]
    rows(store, "UPDATE {p}formrelay_jobs SET completed_at = UTC_TIMESTAMP(3) - INTERVAL 40 DAY"
                f" WHERE id IN ({', '.join(['%s'] * len(old))})", *old)
    purged, _ = store.delete_old_jobs(30)
    assert purged == len(old)
    done["purged"] = old
    return done
