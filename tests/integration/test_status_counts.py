"""The status counts (migration 0008) on real MariaDB: exact after a mixed workload, under
concurrent endings and a concurrent recount, seeded by the migration, repaired when they
drift, and read through indexes (EXPLAIN) instead of a scan of the jobs table."""

from __future__ import annotations

import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from sidecar.states import Event, EventKind
from sidecar.store import Database, NewJob, Store
from sidecar.store.counts import LIVE, counts_table
from sidecar.store.schema import SCHEMA_DIR, migrate
from tests.conftest import PREFIX, fill_history
from tests.integration.status_counts import (
    OWNER,
    assert_counts_exact,
    complete,
    grouped,
    mixed_workload,
    rows,
)

pytestmark = pytest.mark.db

K = EventKind


def enqueue(store: Store, count: int, forms: tuple[int, ...] = (12, 14), start: int = 1
            ) -> list[int]:
    return [store.enqueue(NewJob(f"wpforms:{forms[n % len(forms)]}:{n}", forms[n % len(forms)],
                                 n, "{}"))[0].id for n in range(start, start + count)]


def test_a_mixed_workload_keeps_every_count_exact(store):
    ids = enqueue(store, 24)
    assert_counts_exact(store)  # pending only: nothing in the table yet
    assert rows(store, f"SELECT * FROM {counts_table(PREFIX)}") == []
    done = mixed_workload(store, ids)
    assert_counts_exact(store)
    truth = grouped(store)
    assert sum(n for (_, s), n in truth.items() if s == "completed") == len(
        done["deliver"]) - len(done["purged"]) + len(done["fail_retry"])
    assert sum(n for (_, s), n in truth.items() if s == "failed") == len(done["fail_document"])
    assert sum(n for (_, s), n in truth.items() if s == "cancelled") == len(done["cancel"])


def test_endings_in_parallel_with_a_recount_keep_the_counts_exact(store, migrated_db):
    """Eight threads end jobs of one form (the hot rows) while another recounts with repair:
    no change is lost or counted twice, and nothing deadlocks for good."""
    ids = enqueue(store, 160, forms=(12,))
    start = threading.Barrier(9)
    stop = threading.Event()

    def end(part: list[int]) -> None:
        own = Store(Database(migrated_db), PREFIX)
        start.wait(timeout=30)
        for n, job_id in enumerate(part):
            assert own.claim_job(job_id, OWNER, 300) is not None
            if n % 3:
                own.transition_job(job_id, Event(K.RECORD_SENT), owner=OWNER, partner_id="P")
            else:
                own.transition_job(job_id, Event(K.PERMANENT_ERROR, error="HTTP 422"),
                                   owner=OWNER)
                own.transition_job(job_id, Event(K.RETRY))  # failed, then pending again
        own.db.close()

    def recount() -> int:
        own = Store(Database(migrated_db), PREFIX)
        start.wait(timeout=30)
        runs = 0
        while not stop.is_set() or runs == 0:
            assert own.recount_jobs(repair=True) == {}  # never a drift to repair
            runs += 1
        own.db.close()
        return runs

    with ThreadPoolExecutor(9) as pool:
        recounting = pool.submit(recount)
        workers = [pool.submit(end, ids[i::8]) for i in range(8)]
        for w in workers:
            w.result(timeout=120)
        stop.set()
        assert recounting.result(timeout=60) >= 1
    assert_counts_exact(store)
    delivered = sum(1 for w in range(8) for n, _ in enumerate(ids[w::8]) if n % 3)
    assert store.counts_by_status(12) == {"completed": delivered, "pending": 160 - delivered}


def test_drift_is_reported_and_repaired(store):
    ids = enqueue(store, 6)
    for job_id in ids[:4]:
        complete(store, job_id)
    rows(store, f"UPDATE {counts_table(PREFIX)} SET n = n + 5 WHERE form_id = 12 LIMIT 1")
    rows(store, f"INSERT INTO {counts_table(PREFIX)} VALUES (99, 'failed', 3, 2)")
    assert store.recount_jobs() == {(12, "completed"): 5, (99, "failed"): 2}
    assert store.recount_jobs() != {}  # reporting changes nothing
    assert store.recount_jobs(repair=True) == {(12, "completed"): 5, (99, "failed"): 2}
    assert store.recount_jobs() == {}
    assert_counts_exact(store)


def test_the_migration_counts_the_jobs_already_there(scratch_dbs, tmp_path):
    for path in SCHEMA_DIR.glob("*.sql"):
        if path.name < "0008":
            shutil.copy(path, tmp_path / path.name)
    db = Database(scratch_dbs.create())
    migrate(db, PREFIX, tmp_path)
    with db.transaction() as cur:
        cur.execute(f"CREATE TABLE {PREFIX}options (option_id INT PRIMARY KEY)")
        cur.execute(
            f"INSERT INTO {PREFIX}formrelay_jobs (reference, form_id, status, created_at,"
            " updated_at) SELECT CONCAT('r', seq), 1 + seq % 3,"
            " ELT(1 + seq % 6, 'pending', 'processing', 'retrying', 'completed', 'failed',"
            " 'cancelled'), UTC_TIMESTAMP(3), UTC_TIMESTAMP(3) FROM seq_1_to_600")
    assert migrate(db, PREFIX)[0] == 8  # (and any later ones)
    store = Store(db, PREFIX)
    assert_counts_exact(store)
    assert store.counts_by_status() == {s: 100 for s in (
        "pending", "processing", "retrying", "completed", "failed", "cancelled")}
    db.close()


@pytest.fixture(scope="module")
def history(scratch_dbs: Any) -> Any:
    """20,000 jobs over 20 forms, 97% ended, counted."""
    db = Database(scratch_dbs.create())
    migrate(db, PREFIX)
    fill_history(db)
    store = Store(db, PREFIX)
    store.recount_jobs(repair=True)
    yield store
    db.close()


@pytest.mark.parametrize("form_id", [None, 3])
def test_counts_read_the_counts_table_and_the_queue_only(history, form_id):
    """EXPLAIN of the count: the counts table by its key, the jobs table by a status index
    over the waiting statuses only (its row estimate follows the queue, not the 20,000)."""
    form = "" if form_id is None else f" AND form_id = {form_id}"
    live = ", ".join(f"'{s}'" for s in LIVE)
    plans = rows(history, f"EXPLAIN SELECT status, SUM(n) FROM {counts_table(PREFIX)}"
                          f" WHERE 1 = 1{form} GROUP BY status UNION ALL"
                          f" SELECT status, COUNT(*) FROM {PREFIX}formrelay_jobs"
                          f" WHERE status IN ({live}){form} GROUP BY status")
    jobs = [p for p in plans if p["table"] == f"{PREFIX}formrelay_jobs"]
    assert len(jobs) == 1, plans
    assert jobs[0]["key"] in ("status_created", "lease", "form_status", "keep_values"), plans
    assert jobs[0]["type"] in ("range", "ref"), plans
    assert "Using index" in (jobs[0]["Extra"] or ""), plans  # the index alone: no row read
    assert int(jobs[0]["rows"]) <= 1000, plans
    assert history.counts_by_status(form_id) == {
        s: n for s, n in {"completed": 19400 if form_id is None else 1000,
                          "pending": 200 if form_id is None else 0,
                          "retrying": 200 if form_id is None else 0,
                          "processing": 200 if form_id is None else 0}.items() if n}


def test_the_doctor_names_drift_and_repairs_it_when_asked(store):
    from sidecar.doctor import Level
    from sidecar.doctor_checks import counts_check

    for job_id in enqueue(store, 3):
        complete(store, job_id)
    assert counts_check(store.db, PREFIX, repair=False).level == Level.OK
    rows(store, f"UPDATE {counts_table(PREFIX)} SET n = n - 2")
    found = counts_check(store.db, PREFIX, repair=False)
    assert found.level == Level.WARN and "form 12 completed -" in found.detail
    assert "--repair-counts" in found.fix
    assert store.recount_jobs() != {}  # the check changed nothing
    fixed = counts_check(store.db, PREFIX, repair=True)
    assert fixed.level == Level.OK and fixed.detail.startswith("repaired")
    assert_counts_exact(store)


def test_delivery_through_the_engine_keeps_the_counts_exact(delivery, uploads):
    """The engine's own paths (a step's outcome with the next step's claim, the last
    document completing its job, a rejected document failing it) count as they end jobs."""
    from devstack.samples import write_html_as_pdf, write_pdf
    from tests.integration.delivery import snapshot, text_fields

    folder = uploads / "wpforms" / "12-abc"
    good = [write_pdf(folder / f"ok{n}.pdf", 4096) for n in range(2)]
    bad = write_html_as_pdf(folder / "login.pdf")
    plans = [good, [], [good[0], bad], good, []]
    ids = [delivery.enqueue(f"wpforms:12:{n}", snapshot(12, n, text_fields(), uploads, docs), n)
           for n, docs in enumerate(plans, 1)]
    delivery.drain()
    statuses = [str(delivery.store.get_job(i).status) for i in ids]
    assert statuses == ["completed", "completed", "failed", "completed", "completed"]
    assert_counts_exact(delivery.store)
    assert delivery.store.counts_by_status(12) == {"completed": 4, "failed": 1}
