"""The chained steps on real MariaDB: a step's outcome with the next step's lease, and the
last document's guarded write that ends the job, including when its lease was lost."""

from __future__ import annotations

import time

import pytest

from sidecar.errors import LeaseLost
from sidecar.states import Event, EventKind, Phase, Status
from sidecar.store import LogEntry, NewDocument, NewJob, Store
from sidecar.store.chain import since

pytestmark = pytest.mark.db
K = EventKind


def record_sent(store: Store, reference: str, documents: int = 2):
    job, _ = store.enqueue(NewJob(reference, 12, 1, "{}"))
    claimed = store.claim_job_for_delivery(job.id, "rec", 60)
    assert claimed is not None
    job = claimed[0]
    docs = [NewDocument("4", i, f"d{i}.pdf", f"/x/d{i}.pdf", 10) for i in range(documents)]
    state, first = store.record_sent(job, "rec", "P-1", docs, LogEntry("record.{outcome}"),
                                     since(job.updated_at, time.monotonic()), "o1", 60)
    return job, state, first


def test_the_record_leases_the_first_document_and_each_upload_the_next(store: Store):
    job, state, first = record_sent(store, "chain:1")
    assert (state.status, state.phase) == (Status.PROCESSING, Phase.DOCUMENTS)
    stored = store.documents(job.id)
    assert [(d.status, d.lease_owner, d.attempts) for d in stored] == [
        (Status.PROCESSING, "o1", 1), (Status.PENDING, None, 0)]
    assert first.id == stored[0].id and first.status == Status.PROCESSING
    after = store.document_done(job.id, first.id, "o1", Event(K.UPLOADED), "D-1",
                                LogEntry("document.{outcome}"), next_owner="o2",
                                lease_seconds=60)
    assert after.document is not None and after.document.id == stored[1].id and after.last
    second = store.get_document(stored[1].id)
    assert (second.status, second.lease_owner, second.attempts) == (Status.PROCESSING, "o2", 1)
    store.last_document_uploaded(after.job, after.document, "o2", "D-2",
                                 LogEntry("document.{outcome}"), None,
                                 since(after.now, after.read_at))
    done = store.get_job(job.id)
    assert (done.status, done.phase, done.completed_at is not None) == (
        Status.COMPLETED, Phase.DONE, True)
    assert [r["event"] for r in store.job_log(job.id)] == [
        "job.created", "record.sent", "document.uploaded", "document.uploaded", "job.completed"]


def test_a_cancel_before_the_last_upload_is_written_refuses_it(store: Store):
    job, _, first = record_sent(store, "chain:2")
    after = store.document_done(job.id, first.id, "o1", Event(K.UPLOADED), "D-1",
                                LogEntry("document.{outcome}"), next_owner="o2",
                                lease_seconds=60)
    assert after.document is not None and after.last
    store.transition_job(job.id, Event(K.CANCEL, "cancelled by admin"))
    with pytest.raises(LeaseLost):
        store.last_document_uploaded(after.job, after.document, "o2", "D-2",
                                     LogEntry("document.{outcome}"), None,
                                     since(after.now, after.read_at))
    assert store.get_job(job.id).status == Status.CANCELLED
    assert store.get_document(after.document.id).status == Status.CANCELLED
    assert "job.completed" not in [r["event"] for r in store.job_log(job.id)]


def test_an_outcome_after_the_lease_ran_out_is_refused_and_leases_nothing(store: Store):
    job, _, first = record_sent(store, "chain:3", documents=3)
    with store.db.transaction() as cur:
        cur.execute(f"UPDATE {store.t.documents} SET lease_expires_at = UTC_TIMESTAMP(3)"
                    " - INTERVAL 1 SECOND WHERE id = %s", (first.id,))
    assert store.release_expired_leases() == 1
    with pytest.raises(LeaseLost):
        store.document_done(job.id, first.id, "o1", Event(K.UPLOADED), "D-1",
                            LogEntry("document.{outcome}"), next_owner="o2", lease_seconds=60)
    assert [d.lease_owner for d in store.documents(job.id)] == [None, None, None]
