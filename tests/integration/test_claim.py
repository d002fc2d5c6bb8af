"""Claims on real MariaDB, on the engine's path: `due_work`'s order and due-ness, the
claim by id, and the multi-process exactly-once proof."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from concurrent.futures import ProcessPoolExecutor

import pytest

from sidecar.states import Status
from sidecar.store import Store
from tests.conftest import PREFIX
from tests.integration.claim_worker import claim_until_drained

pytestmark = pytest.mark.db


def insert_jobs(store: Store, rows: list[tuple[str, int, int, str, int]]) -> None:
    """rows: (reference, priority, seconds until due, status, attempts) - fast bulk setup."""
    with store.db.transaction() as cur:
        cur.executemany(
            f"INSERT INTO {PREFIX}formrelay_jobs (reference, form_id, entry_id, snapshot, status,"
            " priority, attempts, next_attempt_at, created_at, updated_at) VALUES"
            " (%s, 1, 0, '{}', %s, %s, %s, UTC_TIMESTAMP(3) + INTERVAL %s SECOND,"
            " UTC_TIMESTAMP(3), UTC_TIMESTAMP(3))",
            [(ref, status, prio, attempts, due) for ref, prio, due, status, attempts in rows])


def ids(store: Store, where: str) -> set[int]:
    with store.db.transaction() as cur:
        cur.execute(f"SELECT id FROM {PREFIX}formrelay_jobs WHERE {where}")
        return {r["id"] for r in cur.fetchall()}


def test_due_work_lists_highest_priority_first_then_oldest(store):
    insert_jobs(store, [("a", 10, -5, "pending", 0), ("b", 5, -1, "retrying", 1),
                        ("c", 10, -9, "pending", 0), ("d", 1, 30, "pending", 0),
                        ("e", 5, -1, "pending", 0), ("f", 1, -1, "completed", 1),
                        ("g", 1, -1, "failed", 3), ("h", 1, -1, "processing", 1),
                        ("i", 1, -1, "cancelled", 0)])
    by_ref = {store.get_job(i).reference: i for i in ids(store, "1")}
    jobs, documents = store.due_work(10)
    assert [job_id for job_id, _ in jobs] == [by_ref[r] for r in "beac"]  # d not due; f-i
    assert [p for _, p in jobs] == [5, 5, 10, 10]  # do not wait
    assert documents == []
    assert store.due_work(2)[0] == jobs[:2]


@pytest.mark.parametrize("skip_locked", [True, False], ids=["skip-locked", "fallback"])
def test_a_claim_by_id_takes_only_a_due_waiting_job_once_and_sets_the_lease(store, skip_locked):
    store = Store(store.db, PREFIX, skip_locked=skip_locked)
    insert_jobs(store, [("due", 10, -1, "pending", 0), ("later", 10, 30, "pending", 0),
                        ("done", 10, -1, "completed", 1)])
    by_ref = {store.get_job(i).reference: i for i in ids(store, "1")}
    claimed = store.claim_job_for_delivery(by_ref["due"], "w1", 90)
    assert claimed is not None
    job, snapshot, _ = claimed
    assert (job.status, job.lease_owner, job.attempts, snapshot) == (
        Status.PROCESSING, "w1", 1, "{}")
    assert 89.9 <= (job.lease_expires_at - job.updated_at).total_seconds() <= 90.1
    assert store.claim_job_for_delivery(by_ref["due"], "w2", 90) is None  # a duplicate ring
    assert store.claim_job_for_delivery(by_ref["later"], "w1", 90) is None
    assert store.claim_job_for_delivery(by_ref["done"], "w1", 90) is None
    assert store.count_due() == 0


@pytest.mark.slow
@pytest.mark.parametrize("skip_locked", [True, False], ids=["skip-locked", "fallback"])
def test_concurrent_claimers_take_every_due_job_and_document_exactly_once(
        store, migrated_db, skip_locked):
    processes, due_jobs = 4, 2000
    rows = [(f"due-{i}", i % 7, -(i % 50) - 1, "pending" if i % 3 else "retrying", i % 3)
            for i in range(due_jobs)]
    rows += [(f"later-{i}", 0, 3600, "retrying", 1) for i in range(200)]
    rows += [(f"done-{i}", 0, -3600, "completed", 1) for i in range(300)]
    insert_jobs(store, rows)
    due = ids(store, "reference LIKE 'due-%'")
    assert len(due) == due_jobs
    with store.db.transaction() as cur:  # documents waiting under completed-record jobs
        cur.execute(
            f"INSERT INTO {PREFIX}formrelay_documents (job_id, field_id, position, original_name,"
            " path, status, attempts, max_attempts, next_attempt_at, created_at, updated_at)"
            " SELECT id, '4', n.seq, 'a.pdf', '/x/a.pdf', 'pending', 0, 10,"
            " UTC_TIMESTAMP(3) - INTERVAL 1 SECOND, UTC_TIMESTAMP(3), UTC_TIMESTAMP(3)"
            f" FROM {PREFIX}formrelay_jobs, seq_0_to_1 n WHERE reference LIKE 'done-%'")
        cur.execute(f"SELECT id FROM {PREFIX}formrelay_documents")
        due_documents = {r["id"] for r in cur.fetchall()}
    assert len(due_documents) == 600

    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Manager().Barrier(processes)
    with ProcessPoolExecutor(processes, mp_context=ctx) as pool:
        futures = [pool.submit(claim_until_drained, migrated_db, PREFIX, f"p{n}", skip_locked,
                               barrier, 10) for n in range(processes)]
        results = [f.result(timeout=300) for f in futures]
    per_process = [jobs for jobs, _ in results]

    claims = Counter(job_id for taken in per_process for job_id in taken)
    assert [job_id for job_id, n in claims.items() if n > 1] == []  # never held twice
    assert set(claims) == due  # every due job, and nothing else
    assert all(per_process), "every process should have won some claims"
    doc_claims = Counter(d for _, taken in results for d in taken)
    assert [d for d, n in doc_claims.items() if n > 1] == []
    assert set(doc_claims) == due_documents
    with store.db.transaction() as cur:
        cur.execute(f"SELECT id, lease_owner, attempts, status, reference FROM"
                    f" {PREFIX}formrelay_jobs WHERE reference LIKE 'due-%'")
        rows_after = cur.fetchall()
    owner_of = {job_id: f"p{n}" for n, taken in enumerate(per_process) for job_id in taken}
    for row in rows_after:
        assert row["status"] == "processing"
        assert row["lease_owner"] == owner_of[row["id"]]
    assert ids(store, "reference LIKE 'later-%' AND status = 'retrying'") == ids(
        store, "reference LIKE 'later-%'")
    assert ids(store, "reference LIKE 'done-%' AND status = 'completed'") == ids(
        store, "reference LIKE 'done-%'")
