"""The store on real MariaDB: enqueue, transitions with their log rows, leases."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from sidecar.errors import InvalidTransition, LeaseLost, StoreError
from sidecar.states import Event, EventKind, Phase, Status
from sidecar.store import Database, LogEntry, NewDocument, NewJob, Store
from tests.conftest import PREFIX

pytestmark = pytest.mark.db

K = EventKind


def new_job(n: int = 1, **kw: object) -> NewJob:
    return NewJob(reference=f"wpforms:7:{n}", form_id=7, entry_id=n, snapshot='{"1": {}}',
                  **kw)  # type: ignore[arg-type]


def docs(n: int) -> list[NewDocument]:
    return [NewDocument("4", i, f"scan{i}.pdf", f"/uploads/wpforms/7-x/scan{i}.pdf", 2048)
            for i in range(n)]


def sql(store: Store, query: str, *args: object) -> list[dict]:
    with store.db.transaction() as cur:
        cur.execute(query.replace("{p}", PREFIX), args)
        return list(cur.fetchall()) if cur.with_rows else []


def test_enqueue_creates_a_pending_job_with_a_log_row(store):
    job, created = store.enqueue(new_job(priority=3, max_attempts=5))
    assert created
    assert (job.status, job.phase, job.priority, job.max_attempts, job.attempts) == (
        Status.PENDING, Phase.RECORD, 3, 5, 0)
    assert job.next_attempt_at == job.created_at and job.key_generation == 1
    assert [r["event"] for r in store.job_log(job.id)] == ["job.created"]


def test_enqueue_of_an_existing_reference_returns_the_existing_job(store):
    first, _ = store.enqueue(new_job(priority=3))
    again, created = store.enqueue(new_job(priority=9))
    assert not created
    assert again.id == first.id and again.priority == 3
    assert sql(store, "SELECT COUNT(*) AS n FROM {p}formrelay_jobs")[0]["n"] == 1


def test_concurrent_enqueues_of_one_reference_make_one_job(store, migrated_db):
    # Every thread connects first and then inserts at once; a deadlock between them (seen on
    # a busy machine) is retried by the store, so the outcome never depends on timing.
    start = threading.Barrier(8)

    def enqueue(_: int) -> tuple[int, bool]:
        own = Store(Database(migrated_db), PREFIX)  # its own connection, like another request
        own.db.connection()
        start.wait(timeout=60)
        job, created = own.enqueue(new_job())
        own.db.close()
        return job.id, created

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(enqueue, range(16)))
    assert len({job_id for job_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert sql(store, "SELECT COUNT(*) AS n FROM {p}formrelay_jobs")[0]["n"] == 1


def test_a_transition_writes_state_and_one_log_row_together(store):
    job, _ = store.enqueue(new_job())
    claimed = store.claim_job(job.id, "w1", 60)
    assert claimed and claimed.lease_owner == "w1" and claimed.started_at is not None
    store.transition_job(job.id, Event(K.RETRYABLE_ERROR, "HTTP 503", 30), owner="w1",
                         log=LogEntry("record.retry", "partner answered 503", http_status=503,
                                      duration_ms=120))
    after = store.get_job(job.id)
    assert after.status == Status.RETRYING and after.lease_owner is None
    assert after.last_error == "HTTP 503"
    assert 29.9 <= (after.next_attempt_at - after.updated_at).total_seconds() <= 30.1
    row = store.job_log(job.id)[-1]
    assert (row["event"], row["level"], row["attempt"], row["http_status"], row["duration_ms"]) \
        == ("record.retry", "warning", 1, 503, 120)


def test_an_invalid_transition_changes_nothing(store):
    job, _ = store.enqueue(new_job())
    with pytest.raises(InvalidTransition):
        store.transition_job(job.id, Event(K.RECORD_SENT))
    assert store.get_job(job.id) == job
    assert len(store.job_log(job.id)) == 1


def test_a_stale_owner_cannot_report(store):
    job, _ = store.enqueue(new_job())
    store.claim_job(job.id, "w1", 60)
    with pytest.raises(LeaseLost):
        store.transition_job(job.id, Event(K.RECORD_SENT), owner="w2")
    store.transition_job(job.id, Event(K.CANCEL))
    with pytest.raises(LeaseLost):  # cancelled under the worker's feet
        store.transition_job(job.id, Event(K.RECORD_SENT), owner="w1")
    with pytest.raises(StoreError, match="does not exist"):
        store.transition_job(10**9, Event(K.CANCEL))


def test_record_sent_creates_documents_in_the_same_transaction(store):
    job, _ = store.enqueue(new_job())
    store.claim_job(job.id, "w1", 60)
    store.transition_job(job.id, Event(K.RECORD_SENT, has_documents=True), owner="w1",
                         partner_id="P-1", documents=docs(3))
    after = store.get_job(job.id)
    assert (after.status, after.phase, after.partner_record_id) == (
        Status.PROCESSING, Phase.DOCUMENTS, "P-1")
    assert [(d.position, d.status, d.size) for d in store.documents(job.id)] == [
        (0, Status.PENDING, 2048), (1, Status.PENDING, 2048), (2, Status.PENDING, 2048)]


def test_a_failing_document_insert_rolls_the_phase_change_back(store):
    job, _ = store.enqueue(new_job())
    store.claim_job(job.id, "w1", 60)
    twins = [NewDocument("4", 0, "a.pdf", "/a"), NewDocument("4", 0, "b.pdf", "/b")]
    with pytest.raises(Exception, match="Duplicate"):
        store.transition_job(job.id, Event(K.RECORD_SENT, has_documents=True), owner="w1",
                             partner_id="P-1", documents=twins)
    after = store.get_job(job.id)
    assert (after.phase, after.partner_record_id) == (Phase.RECORD, None)
    assert store.documents(job.id) == []


def test_documents_move_on_their_own(store):
    job, _ = store.enqueue(new_job())
    store.claim_job(job.id, "w1", 60)
    store.transition_job(job.id, Event(K.RECORD_SENT, has_documents=True), owner="w1",
                         partner_id="P-1", documents=docs(2))
    first, second = store.documents(job.id)
    assert store.claim_document(first.id, "w1", 60) is not None
    assert store.claim_document(first.id, "w2", 60) is None  # a duplicate task is a no-op
    store.transition_document(first.id, Event(K.UPLOADED), owner="w1", partner_id="D-1")
    store.claim_document(second.id, "w1", 60)
    store.transition_document(second.id, Event(K.RETRYABLE_ERROR, "timeout", 60), owner="w1")
    first, second = store.documents(job.id)
    assert (first.status, first.partner_document_id, first.uploaded_at is not None) == (
        Status.UPLOADED, "D-1", True)
    assert (second.status, second.attempts, second.last_error) == (
        Status.RETRYING, 1, "timeout")
    assert store.claim_document(second.id, "w1", 60) is None  # not due for a minute
    events = [(r["document_id"], r["event"]) for r in store.job_log(job.id)]
    assert (first.id, "document.uploaded") in events
    assert (second.id, "document.retryable_error") in events


def test_retry_resumes_failed_documents_and_cancel_stops_the_rest(store):
    job, _ = store.enqueue(new_job())
    store.claim_job(job.id, "w1", 60)
    store.transition_job(job.id, Event(K.RECORD_SENT, has_documents=True), owner="w1",
                         partner_id="P-1", documents=docs(3))
    a, b, _c = store.documents(job.id)
    store.claim_document(a.id, "w1", 60)
    store.transition_document(a.id, Event(K.UPLOADED), owner="w1")
    store.claim_document(b.id, "w1", 60)
    store.transition_document(b.id, Event(K.PERMANENT_ERROR, "HTTP 422"), owner="w1")
    store.transition_job(job.id, Event(K.CANCEL, "by admin"), log=LogEntry("job.cancel",
                                                                             actor="alice"))
    assert [d.status for d in store.documents(job.id)] == [
        Status.UPLOADED, Status.FAILED, Status.CANCELLED]
    store.transition_job(job.id, Event(K.RETRY), log=LogEntry("job.retry", actor="alice"))
    assert store.get_job(job.id).status == Status.PROCESSING
    assert [(d.status, d.attempts) for d in store.documents(job.id)] == [
        (Status.UPLOADED, 1), (Status.PENDING, 0), (Status.PENDING, 0)]
    actors = {r["actor"] for r in store.job_log(job.id) if r["event"].endswith(".retry")}
    assert actors == {"alice"}


def test_restart_clears_the_partner_id_and_documents_but_keeps_the_log(store):
    job, _ = store.enqueue(new_job())
    store.claim_job(job.id, "w1", 60)
    store.transition_job(job.id, Event(K.RECORD_SENT, has_documents=True), owner="w1",
                         partner_id="P-1", documents=docs(1))
    (d,) = store.documents(job.id)
    store.claim_document(d.id, "w1", 60)
    store.transition_document(d.id, Event(K.PERMANENT_ERROR, "HTTP 422"), owner="w1")
    failed = store.get_job(job.id)  # its last document ended: the job is settled with it
    assert (failed.status, failed.last_error) == (Status.FAILED, "document 1 failed: HTTP 422")
    store.transition_job(job.id, Event(K.RESTART))
    after = store.get_job(job.id)
    assert (after.status, after.phase, after.key_generation, after.partner_record_id,
            after.failed_at) == (Status.PENDING, Phase.RECORD, 2, None, None)
    assert store.documents(job.id) == []
    kept = [r for r in store.job_log(job.id) if r["event"] == "document.permanent_error"]
    assert len(kept) == 1 and kept[0]["document_id"] is None  # history stays with the job


def test_deleting_a_job_deletes_its_documents_and_log(store):
    job, _ = store.enqueue(new_job())
    store.claim_job(job.id, "w1", 60)
    store.transition_job(job.id, Event(K.RECORD_SENT, has_documents=True), owner="w1",
                         partner_id="P-1", documents=docs(2))
    sql(store, "DELETE FROM {p}formrelay_jobs WHERE id = %s", job.id)
    assert sql(store, "SELECT COUNT(*) AS n FROM {p}formrelay_documents")[0]["n"] == 0
    assert sql(store, "SELECT COUNT(*) AS n FROM {p}formrelay_log")[0]["n"] == 0


def test_an_expired_lease_brings_the_work_back(store):
    job, _ = store.enqueue(new_job())
    other, _ = store.enqueue(new_job(2))
    store.claim_job(job.id, "dead-worker", 60)
    store.claim_job(other.id, "live-worker", 600)
    sql(store, "UPDATE {p}formrelay_jobs SET lease_expires_at = UTC_TIMESTAMP(3) - INTERVAL 1"
               " SECOND WHERE id = %s", job.id)
    assert store.release_expired_leases() == 1
    after = store.get_job(job.id)
    assert (after.status, after.lease_owner, after.attempts) == (Status.RETRYING, None, 1)
    assert store.get_job(other.id).status == Status.PROCESSING
    assert store.job_log(job.id)[-1]["event"] == "lease.expired"
    assert store.due_work()[0] == [(job.id, job.priority)]
    assert store.claim_job(job.id, "w2", 60) is not None
    with pytest.raises(LeaseLost):  # the dead worker wakes up: its report is refused
        store.transition_job(job.id, Event(K.RECORD_SENT), owner="dead-worker")


def test_error_text_is_truncated(store):
    job, _ = store.enqueue(new_job())
    store.claim_job(job.id, "w1", 60)
    store.transition_job(job.id, Event(K.PERMANENT_ERROR, "x" * 5000), owner="w1")
    assert len(store.get_job(job.id).last_error) == 2000
