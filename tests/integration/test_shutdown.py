"""Worker heartbeats in `formrelay status`, and graceful SIGINT/SIGTERM of `formrelay worker`:
real worker processes, the embedded SQLite queue, MariaDB and the simulator over HTTP."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from sidecar import config
from sidecar.partner_sim import RunningSim, run_in_thread
from sidecar.queue import build_huey
from sidecar.states import Status
from sidecar.store import NewJob, Store
from sidecar.tasks import register
from tests.conftest import PREFIX, wait_until
from tests.integration.delivery import snapshot, text_fields
from tests.integration.processes import start_worker, status, stop, worker_env

pytestmark = [pytest.mark.db, pytest.mark.sim, pytest.mark.slow]


@pytest.fixture
def workers_store(store: Store) -> Store:
    with store.db.transaction() as cur:
        cur.execute(f"DELETE FROM {PREFIX}formrelay_workers")
    return store


def test_a_running_worker_is_listed_and_forgotten_when_it_stops(workers_store, migrated_db,
                                                                  uploads, tmp_path):
    env = worker_env(migrated_db.database, "http://127.0.0.1:9/api", uploads, tmp_path)
    proc = start_worker(env)
    try:
        line = wait_until(lambda: next((ln for ln in status(env).splitlines()
                                        if f":{proc.pid}:" in ln), None), 30, "the worker listed")
        assert "process\u00d72" in line and "last seen" in line and "SILENT" not in line
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert f":{proc.pid}:" not in status(env)
        assert workers_store.workers() == []
    finally:
        stop(proc)


def test_a_worker_the_sweep_would_judge_gone_is_flagged_silent(workers_store, migrated_db,
                                                                uploads, tmp_path):
    """The sweep's rule (Worker.silent): 2 of its own beats plus 15 s, not sweep intervals."""
    workers_store.heartbeat("ghost:4242", "ghost", 4242, "0.1.0", "thread", 4, beat_seconds=15)
    workers_store.heartbeat("alive:7", "alive", 7, "0.1.0", "process", 2, beat_seconds=15)
    workers_store.heartbeat("slow:8", "slow", 8, "0.1.0", "thread", 1, beat_seconds=60)
    with workers_store.db.transaction() as cur:  # 2 x 15 + 15 = 45 s; 2 x 60 + 15 = 135 s
        cur.execute(f"UPDATE {PREFIX}formrelay_workers SET last_seen = UTC_TIMESTAMP(3)"
                    " - INTERVAL 121 SECOND WHERE id IN ('ghost:4242', 'slow:8')")
    env = worker_env(migrated_db.database, "http://127.0.0.1:9/api", uploads, tmp_path)
    text = status(env)
    lines = {ln.split()[0]: ln for ln in text.splitlines() if ln.startswith("  ")}
    assert "SILENT" in lines["ghost:4242"]
    # 121 s when `status` runs at once; more on a busy machine (the database's clock runs on)
    seen = re.search(r"last seen (\d+) s ago", lines["ghost:4242"])
    assert seen and int(seen[1]) >= 121, lines["ghost:4242"]
    assert "SILENT" not in lines["alive:7"] and "process\u00d72" in lines["alive:7"]
    assert "SILENT" not in lines["slow:8"]  # its own beat is 60 s: not gone for 135 s
    assert "problem: WARNING workers_silent: 1 worker(s) sent no heartbeat: ghost:4242" in text
    # rows of workers gone for over a day are pruned by the next heartbeat
    with workers_store.db.transaction() as cur:
        cur.execute(f"UPDATE {PREFIX}formrelay_workers SET last_seen = UTC_TIMESTAMP(3)"
                    " - INTERVAL 2 DAY WHERE id IN ('ghost:4242', 'slow:8')")
    workers_store.heartbeat("alive:7", "alive", 7, "0.1.0", "process", 2)
    assert [w.id for w in workers_store.workers()] == ["alive:7"]


@pytest.fixture
def slow_sim(request) -> Iterator[RunningSim]:
    running = run_in_thread(latency_ms=request.param, seed=1)
    yield running
    running.stop()


def ring_one_job(store: Store, env: dict[str, str], uploads: Path) -> tuple[int, object]:
    cfg = config.load("migrate", env)
    huey = build_huey(cfg)
    tasks = register(huey, lambda: None)  # type: ignore[arg-type, return-value]
    job, _ = store.enqueue(NewJob("wpforms:12:1", 12, 1,
                                  snapshot(12, 1, text_fields(), uploads, [])))
    tasks.ring_record(job.id, job.priority)
    return job.id, huey


@pytest.mark.parametrize("slow_sim", [2000], indirect=True)
@pytest.mark.parametrize("sig,worker_type,group", [
    (signal.SIGTERM, "thread", False), (signal.SIGINT, "thread", False),
    (signal.SIGTERM, "process", False),
    # to the whole process group, as Ctrl-C in a terminal or systemd's KillMode do
    (signal.SIGTERM, "process", True), (signal.SIGINT, "process", True),
    (signal.SIGINT, "thread", True)])
def test_a_stop_signal_lets_the_request_in_flight_finish(store, migrated_db, slow_sim, uploads,
                                                         tmp_path, sig, worker_type, group):
    env = worker_env(migrated_db.database, slow_sim.url, uploads, tmp_path,
                     FORMRELAY_WORKER_TYPE=worker_type)
    job_id, huey = ring_one_job(store, env, uploads)
    proc = start_worker(env, own_group=group)
    try:
        wait_until(lambda: store.get_job(job_id).status == Status.PROCESSING, 30,
                   "the job in flight")
        if group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        assert proc.wait(timeout=30) == 0
    finally:
        output = stop(proc)
        huey.storage.flush_all()  # type: ignore[attr-defined]
    assert slow_sim.stats()["records_created"] == 1, output
    assert store.get_job(job_id).status == Status.COMPLETED, output


# The partner answers after 60 s: a worker that waited for it would miss proc.wait's deadline.
@pytest.mark.parametrize("slow_sim", [60_000], indirect=True)
@pytest.mark.parametrize("worker_type", ["thread", "process"])
def test_a_step_still_in_flight_at_the_timeout_gives_its_lease_back(store, migrated_db, slow_sim,
                                                                    uploads, tmp_path,
                                                                    worker_type):
    env = worker_env(migrated_db.database, slow_sim.url, uploads, tmp_path,
                     FORMRELAY_SHUTDOWN_SECONDS="1", FORMRELAY_WORKER_TYPE=worker_type)
    job_id, huey = ring_one_job(store, env, uploads)
    proc = start_worker(env)
    try:
        wait_until(lambda: store.get_job(job_id).status == Status.PROCESSING, 30,
                   "the job in flight")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        output = stop(proc)
        huey.storage.flush_all()  # type: ignore[attr-defined]
    job = store.get_job(job_id)
    assert job.status == Status.RETRYING, output
    assert job.lease_owner is None and job.lease_expires_at is None
    assert "lease.released" in [e["event"] for e in store.job_log(job_id)], output
