"""Partner protection: the concurrency and pace ceilings, across threads and across
real worker processes (MariaDB, the SQLite queue, the simulator over HTTP); and the
periodic sweep firing inside a real worker."""

from __future__ import annotations

import threading
import time
from datetime import datetime

import pytest

from sidecar import config
from sidecar.partner_sim import run_in_thread
from sidecar.states import Status
from sidecar.store import NewJob, Store
from sidecar.throttle import Limits, Throttle
from tests.conftest import wait_until
from tests.integration.delivery import snapshot, text_fields
from tests.integration.processes import start_worker, stop, worker_env

pytestmark = [pytest.mark.db]


def run_threads(n: int, work) -> None:
    threads = [threading.Thread(target=work) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)


def test_no_more_than_the_ceiling_hold_a_slot_at_once(store: Store):
    throttle = Throttle(store, Limits(concurrency=2, per_second=0, slot_wait=30))
    lock, inside, most, done = threading.Lock(), [0], [0], []

    def work() -> None:
        with throttle.slot() as granted:
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            time.sleep(0.15)  # a request in flight
            with lock:
                inside[0] -= 1
            done.append(granted)
        store.db.close()

    run_threads(6, work)
    assert done == [True] * 6 and most[0] == 2


def test_a_step_that_finds_no_slot_is_told_so(store: Store):
    hog = threading.Event()
    held = threading.Event()
    throttle = Throttle(store, Limits(concurrency=1, per_second=0, slot_wait=0))

    def hold() -> None:
        with throttle.slot():
            held.set()
            hog.wait(10)
        store.db.close()

    t = threading.Thread(target=hold)
    t.start()
    held.wait(10)
    try:
        with throttle.slot() as granted:
            assert granted is False
    finally:
        hog.set()
        t.join()
    with throttle.slot() as granted:
        assert granted is True  # freed when the holder finished


def test_requests_start_no_faster_than_the_pace(store: Store):
    throttle = Throttle(store, Limits(concurrency=0, per_second=20))
    starts: list[float] = []

    def work() -> None:
        for _ in range(3):
            with throttle.slot():
                starts.append(time.monotonic())
        store.db.close()

    run_threads(8, work)
    starts.sort()
    assert len(starts) == 24
    # 24 starts 50 ms apart span at least 23 intervals (server clock vs ours: 20 ms slack)
    assert starts[-1] - starts[0] >= 23 * 0.05 - 0.02
    assert max(sum(1 for s in starts if a <= s < a + 0.5) for a in starts) <= 11


@pytest.mark.sim
@pytest.mark.slow
def test_two_worker_processes_share_one_ceiling_and_the_sweep_fires(store: Store, migrated_db,
                                                                   uploads, tmp_path):
    sim = run_in_thread(latency_ms=300, threads=16)
    env = worker_env(migrated_db.database, sim.url, uploads, tmp_path,
                     FORMRELAY_WORKERS="4", FORMRELAY_PARTNER_CONCURRENCY="3",
                     FORMRELAY_PARTNER_RPS="20", FORMRELAY_SWEEP_SECONDS="5")
    procs = []
    try:
        cfg = config.load("worker", env)
        assert cfg.sweep_seconds == 5
        procs = [start_worker(env) for _ in range(2)]
        pids = {p.pid for p in procs}
        wait_until(lambda: len([w for w in store.workers() if w.pid in pids]) == 2, 30,
                   "two workers up")
        # Jobs created after the workers started, and never rung: only the sweep finds them.
        ids = [store.enqueue(NewJob(f"FR-T{i}", 12, 0, snapshot(
            12, 0, text_fields(), uploads, [])))[0].id for i in range(24)]
        wait_until(lambda: all(store.get_job(i).status == Status.COMPLETED for i in ids),
                   60, "every job delivered")
        stats = sim.stats()
        assert stats["records_created"] == 24
        assert 2 <= stats["max_in_flight"] <= 3  # parallel, and never past the ceiling
        created = sorted(datetime.fromisoformat(r["created"]).timestamp()
                         for r in sim.records())
        assert max(sum(1 for c in created if a <= c < a + 1) for a in created) <= 21
    finally:
        output = "".join(stop(p) for p in procs)
        sim.stop()
    assert "Traceback" not in output


@pytest.mark.sim
@pytest.mark.slow
def test_a_backlog_drains_most_urgent_then_oldest_first(store: Store, migrated_db, uploads,
                                                        tmp_path):
    """The backlog (say, after an outage) goes out in queue order, one request at a time."""
    sim = run_in_thread()
    priorities = [10, 50, 10, 0, 50, 0, 10]
    ids = [store.enqueue(NewJob(f"FR-O{i}", 12, 0, snapshot(12, 0, text_fields(), uploads, []),
                                priority=p))[0].id for i, p in enumerate(priorities)]
    expected = [f"FR-O{i}:1" for i, _ in sorted(enumerate(priorities), key=lambda x: x[1])]
    env = worker_env(migrated_db.database, sim.url, uploads, tmp_path, FORMRELAY_WORKERS="1",
                     FORMRELAY_PARTNER_CONCURRENCY="1", FORMRELAY_PARTNER_RPS="50")
    proc = start_worker(env)
    try:
        wait_until(lambda: all(store.get_job(i).status == Status.COMPLETED for i in ids),
                   60, "the backlog delivered")
        sent = [r["idempotency_key"] for r in sorted(sim.records(), key=lambda r: r["created"])]
        assert sent == expected
    finally:
        stop(proc)
        sim.stop()


def test_a_waiting_step_gets_whichever_slot_frees_first(store: Store):
    throttle = Throttle(store, Limits(concurrency=2, per_second=0, slot_wait=20))
    release = [threading.Event(), threading.Event()]
    holding = threading.Barrier(3)
    got = threading.Event()

    def hold(i: int) -> None:
        with throttle.slot():
            holding.wait()
            release[i].wait(20)
        store.db.close()

    def wait_for_one() -> None:
        with throttle.slot() as granted:
            if granted:
                got.set()
        store.db.close()

    holders = [threading.Thread(target=hold, args=(i,)) for i in (0, 1)]
    for t in holders:
        t.start()
    holding.wait()
    waiter = threading.Thread(target=wait_for_one)
    waiter.start()
    try:
        release[0].set()  # either slot may be this one: the waiter must not wait on the other
        assert got.wait(5), "the freed slot went unused"
    finally:
        release[1].set()
        for t in (*holders, waiter):
            t.join(30)


def test_a_booked_start_further_than_the_wait_allows_gives_the_step_back(store: Store):
    throttle = Throttle(store, Limits(concurrency=0, per_second=1, slot_wait=0.5))
    with throttle.slot() as first:
        assert first is True
    with throttle.slot() as second:
        assert second is False  # its start would be ~1 s away: longer than it may wait
