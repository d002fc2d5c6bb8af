"""A worker killed mid-request: the sweep gives its leases back once its heartbeat stops,
long before the leases expire, and the partner still gets the record once.

Real `formrelay worker` processes, the embedded SQLite queue, MariaDB and the simulator
over HTTP; the kill is a real SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator

import pytest

from sidecar.partner_sim import RunningSim, run_in_thread
from sidecar.states import Status
from sidecar.store import NewJob, Store
from sidecar.store.workers import GONE_MARGIN_SECONDS
from sidecar.sweep import sweep
from tests.conftest import PREFIX, wait_until
from tests.integration.delivery import RecordingDoorbell
from tests.integration.processes import start_worker, worker_env
from tests.integration.test_shutdown import ring_one_job

pytestmark = [pytest.mark.db]


@pytest.fixture
def workers_store(store: Store) -> Store:
    with store.db.transaction() as cur:
        cur.execute(f"DELETE FROM {PREFIX}formrelay_workers")
    return store


def silent_for(store: Store, worker_id: str, seconds: float) -> None:
    with store.db.transaction() as cur:
        cur.execute(f"UPDATE {PREFIX}formrelay_workers SET last_seen = UTC_TIMESTAMP(3)"
                    " - INTERVAL %s MICROSECOND WHERE id = %s", (int(seconds * 1e6), worker_id))


def leased_job(store: Store, n: int, owner: str) -> int:
    job, _ = store.enqueue(NewJob(f"wpforms:12:{n}", 12, n, "{}"))
    assert store.claim_job(job.id, owner, 300)
    return job.id


def test_the_sweep_releases_the_leases_of_a_worker_gone_past_two_beats_and_the_margin(
        workers_store):
    store = workers_store
    gone_after = 2 * 15 + GONE_MARGIN_SECONDS
    store.heartbeat("h:1:aaaa", "h", 1, "0.1.0", "thread", 2, beat_seconds=15)  # gone
    store.heartbeat("h:1:aaaabb", "h", 1, "0.1.0", "thread", 2, beat_seconds=15)  # alive
    store.heartbeat("h:2:cccc", "h", 2, "0.1.0", "thread", 2, beat_seconds=15)  # stalled, alive
    store.heartbeat("h:3", "h", 3, "0.1.0", "thread", 2)  # an older worker: interval unknown
    silent_for(store, "h:1:aaaa", gone_after + 1)
    silent_for(store, "h:2:cccc", gone_after - 2)  # within the margin: left alone
    silent_for(store, "h:3", 3600)
    gone = leased_job(store, 1, "h:1:aaaa:01")
    alive = leased_job(store, 2, "h:1:aaaabb:02")  # its id starts like the gone one's
    stalled = leased_job(store, 3, "h:2:cccc:03")
    old = leased_job(store, 4, "h:3:04")

    assert [w for w, _ in store.gone_workers()] == ["h:1:aaaa"]
    bell = RecordingDoorbell()
    result = sweep(store, bell, reconcile_days=0)
    assert (result.released, result.orphaned) == (0, 1)
    assert store.get_job(gone).status == Status.RETRYING and ("record", gone, 0) in bell.rings
    assert [store.get_job(j).status for j in (alive, stalled, old)] == [Status.PROCESSING] * 3
    [row] = [e for e in store.job_log(gone) if e["event"] == "lease.worker_gone"]
    assert row["message"].startswith(
        f"lease of h:1:aaaa:01 released as its worker sent no heartbeat for {gone_after + 1}")


def stop_group(proc: subprocess.Popen[str]) -> str:
    """SIGKILL a worker started in its own group, its process workers too; its output."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return proc.stdout.read() if proc.stdout else ""


@pytest.fixture
def held_sim() -> Iterator[RunningSim]:
    """A simulator that creates the first record, then holds its answer for 10 minutes."""
    running = run_in_thread(seed=1)
    running.script({"kind": "record", "accept_then_timeout": True, "hang_seconds": 600})
    yield running
    running.stop()


@pytest.mark.sim
@pytest.mark.slow
@pytest.mark.parametrize("worker_type", ["thread", "process"])
def test_a_killed_workers_step_is_delivered_once_its_heartbeat_stops_not_its_lease(
        workers_store, migrated_db, held_sim, uploads, tmp_path, worker_type):
    store = workers_store
    env = worker_env(migrated_db.database, held_sim.url, uploads, tmp_path,
                     FORMRELAY_WORKER_TYPE=worker_type, FORMRELAY_LEASE_SECONDS="300",
                     FORMRELAY_HEARTBEAT_SECONDS="1", FORMRELAY_SWEEP_SECONDS="5")
    job_id, huey = ring_one_job(store, env, uploads)
    first = start_worker(env, own_group=True)  # its group: the kill takes its children too
    second = None
    try:
        wait_until(lambda: held_sim.stats()["records_created"] == 1, 60,
                   "the record created at the partner, its answer held")
        taken = store.get_job(job_id)
        [worker] = store.workers()
        assert taken.status == Status.PROCESSING
        assert taken.lease_owner.startswith(f"{worker.id}:")  # a child's lease too
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
        second = start_worker(env, own_group=True)
        wait_until(lambda: store.get_job(job_id).status == Status.COMPLETED, 180,
                   "the second worker delivering the job")
    finally:
        output = stop_group(first) + (stop_group(second) if second else "")
        huey.storage.flush_all()  # type: ignore[attr-defined]
    done = store.get_job(job_id)
    events = [e["event"] for e in store.job_log(job_id)]
    assert "lease.worker_gone" in events and "lease.expired" not in events, (events, output)
    assert done.completed_at < taken.lease_expires_at  # the first lease had not run out
    # Exactly once at the partner: the retry sent the same Idempotency-Key.
    stats = held_sim.stats()
    assert stats["records_created"] == 1 and len(held_sim.records()) == 1, stats
    assert sum(stats["duplicates_suppressed"].values()) >= 1, stats


class _Interrupted:
    """A consumer never reached: the stop request lands while the heartbeat starts."""

    worker_threads: tuple[tuple[object, object], ...] = ()

    def run(self) -> None:
        raise AssertionError("the interrupt came first")


def test_a_stop_request_right_after_the_first_beat_still_forgets_the_worker(
        workers_store: Store, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sidecar import cli, config

    cfg = config.load("migrate", {"WORDPRESS_DB_USER": "u", "WORDPRESS_DB_NAME": "d",
                                  "FORMRELAY_SHARED_SECRET": "s" * 32,
                                  "FORMRELAY_DATA_DIR": str(tmp_path)})
    heartbeat = cli.Heartbeat(workers_store, cfg)

    def interrupted() -> None:  # SIGTERM is KeyboardInterrupt until Huey's handlers are in
        raise KeyboardInterrupt

    monkeypatch.setattr(heartbeat._thread, "start", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cli._work(workers_store, _Interrupted(), heartbeat)
    with workers_store.db.transaction() as cur:
        cur.execute(f"SELECT COUNT(*) AS n FROM {PREFIX}formrelay_workers")
        assert cur.fetchone()["n"] == 0  # type: ignore[index]
