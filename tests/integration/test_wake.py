"""No idle penalty: an idle worker waits inside the queue's pop, and a ring wakes it.

Huey's worker backs off (0.1 s growing to 10 s) after every empty, non-blocking pop.
These tests assert the mechanism that replaces it, not a latency: on Redis the idle
workers sit in BZPOPMIN (seen in Redis' CLIENT LIST), on SQLite they wait on the
storage's condition; with the storage's timeouts raised to 10 minutes, only a ring
(or, from another process, the poll) can have woken them within the tests' deadlines,
and a worker whose backoff factor is huge still has its first delay: it never slept.
"""

from __future__ import annotations

import secrets
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from devstack.samples import write_pdf
from sidecar import config, queue_storage
from sidecar.queue import build_huey, create_consumer
from sidecar.queue_signing import QueueSerializer, SignedSqliteQueue
from sidecar.states import Status
from sidecar.store import NewJob, Store
from sidecar.tasks import register
from tests.conftest import QUEUE_SECRET, wait_until
from tests.integration.delivery import snapshot, text_fields
from tests.integration.processes import start_worker, stop, worker_env

LONG = 600.0  # a storage timeout no test waits out: only a ring or the poll ends a wait


class Consumed:
    """A consumer of `huey` in this process (thread workers, no signal handlers)."""

    def __init__(self, huey: Any, workers: int = 2) -> None:
        cfg = SimpleNamespace(sweep_seconds=3600, workers=workers, worker_type="thread",
                              shutdown_seconds=60)
        self.consumer = create_consumer(huey, cfg)  # type: ignore[arg-type]
        for worker, _ in self.consumer.worker_threads:
            worker.backoff = 1000.0  # one backoff sleep would take its delay from 0.1 to 100

    def __enter__(self) -> Consumed:
        self.consumer.scheduler.start()
        for _, thread in self.consumer.worker_threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.consumer.stop(graceful=True)

    def delays(self) -> list[float]:
        return [worker.delay for worker, _ in self.consumer.worker_threads]

    def alive(self) -> bool:
        return any(t.is_alive() for _, t in self.consumer.worker_threads)


@pytest.fixture
def sqlite_huey(tmp_path: Path) -> Any:
    return SignedSqliteQueue("wake", filename=str(tmp_path / "queue.sqlite3"), results=False,
                             serializer=QueueSerializer(QUEUE_SECRET))


@pytest.fixture
def long_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queue_storage, "READ_TIMEOUT_SECONDS", LONG)


def ran(huey: Any) -> tuple[Any, list[float]]:
    done: list[float] = []

    @huey.task(name="wake.note")  # type: ignore[misc]
    def note() -> None:
        done.append(time.time())

    return note, done


@pytest.mark.slow
def test_an_idle_sqlite_worker_never_backs_off_and_a_ring_from_its_process_wakes_it(
        sqlite_huey, long_waits, monkeypatch):
    monkeypatch.setattr(queue_storage, "POLL_SECONDS", LONG)  # no poll: a ring or nothing
    note, done = ran(sqlite_huey)
    storage = sqlite_huey.storage
    with Consumed(sqlite_huey) as consumed:
        wait_until(lambda: storage.waiting == 2, 30, "both workers waiting in the pop")
        assert consumed.delays() == [0.1, 0.1]  # neither slept a backoff
        for n in (1, 2):
            note()
            wait_until(lambda n=n: len(done) == n, 30, f"ring {n} to run")
            wait_until(lambda: storage.waiting == 2, 30, "both workers waiting again")
        assert consumed.delays() == [0.1, 0.1]
        consumed.consumer.stop(graceful=True)  # ends the 10-minute waits: no worker left
        assert not consumed.alive()


@pytest.mark.slow
def test_an_idle_sqlite_worker_finds_another_process_ring_by_polling(
        sqlite_huey, long_waits, tmp_path):
    _, done = ran(sqlite_huey)
    other = SignedSqliteQueue("wake", filename=str(tmp_path / "queue.sqlite3"), results=False,
                              serializer=QueueSerializer(QUEUE_SECRET))  # another process's view
    other_note, _ = ran(other)
    with Consumed(sqlite_huey) as consumed:
        wait_until(lambda: sqlite_huey.storage.waiting == 2, 30, "both workers waiting")
        other_note()  # no condition of this process hears it: only the poll can find it
        wait_until(lambda: len(done) == 1, 30, "another process's ring to run")
        assert consumed.delays() == [0.1, 0.1]


@pytest.mark.slow
def test_a_scheduled_task_runs_at_its_time_while_workers_wait(sqlite_huey, long_waits,
                                                              monkeypatch):
    monkeypatch.setattr(queue_storage, "POLL_SECONDS", LONG)
    note, done = ran(sqlite_huey)
    with Consumed(sqlite_huey):
        wait_until(lambda: sqlite_huey.storage.waiting == 2, 30, "both workers waiting")
        due = time.time() + 2
        note.schedule(delay=2)  # the scheduler enqueues it when due: a ring in this process
        wait_until(lambda: done, 30, "the scheduled task to run")
    assert done[0] >= due - 0.01  # not early (its lateness is the scheduler's second)


# --- a real `formrelay worker` process on Redis ----------------------------------------


@pytest.fixture
def redis_queue() -> Iterator[tuple[str, str]]:
    """A Redis URL whose connections carry a name of their own, and a queue name."""
    tag = secrets.token_hex(4)
    yield f"redis://127.0.0.1:6379/0?client_name=frwake{tag}", f"formrelay-wake-{tag}"


def blocked_pops(name: str) -> int:
    import redis

    return sum(1 for c in redis.Redis(host="127.0.0.1", port=6379).client_list()
               if c["name"] == name and c["cmd"] == "bzpopmin" and "b" in c["flags"])


@pytest.mark.db
@pytest.mark.sim
@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.parametrize("worker_type", ["thread", "process"])
def test_idle_redis_workers_wait_in_a_blocking_pop_that_a_ring_ends(
        store: Store, migrated_db, sim, uploads, tmp_path, redis_queue, worker_type):
    url, queue = redis_queue
    name = url.rpartition("client_name=")[2]
    env = worker_env(migrated_db.database, sim.url, uploads, tmp_path, FORMRELAY_REDIS_URL=url,
                     FORMRELAY_QUEUE_NAME=queue, FORMRELAY_WORKER_TYPE=worker_type)
    huey = build_huey(config.load("migrate", env))
    tasks = register(huey, lambda: None)  # type: ignore[arg-type, return-value]
    docs = [write_pdf(uploads / "wpforms" / "12-wake" / "doc.pdf", 3000)]
    worker = start_worker(env)
    try:
        # Idle: both workers blocked in BZPOPMIN (Huey's backoff never runs for them).
        wait_until(lambda: blocked_pops(name) == 2, 60, "both workers blocked in BZPOPMIN")
        job, _ = store.enqueue(NewJob("wpforms:12:1", 12, 1,
                                      snapshot(12, 1, text_fields(), uploads, docs)))
        tasks.ring_record(job.id, job.priority)
        wait_until(lambda: store.get_job(job.id).status == Status.COMPLETED, 60,  # type: ignore[union-attr]
                   "the rung job to complete")
        wait_until(lambda: blocked_pops(name) == 2, 30, "both workers blocked again")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        stop(worker)
        huey.storage.flush_all()
    assert sim.stats()["records_created"] == 1


@pytest.mark.db
@pytest.mark.sim
@pytest.mark.slow
def test_sqlite_process_workers_deliver_a_ring_from_another_process_and_stop(
        store: Store, migrated_db, sim, uploads, tmp_path):
    env = worker_env(migrated_db.database, sim.url, uploads, tmp_path,
                     FORMRELAY_WORKER_TYPE="process")
    huey = build_huey(config.load("migrate", env))
    tasks = register(huey, lambda: None)  # type: ignore[arg-type, return-value]
    worker = start_worker(env)
    try:
        wait_until(store.workers, 60, "the worker's heartbeat")
        job, _ = store.enqueue(NewJob("wpforms:12:2", 12, 2,
                                      snapshot(12, 2, text_fields(), uploads, [])))
        tasks.ring_record(job.id, job.priority)  # this process: the workers' poll finds it
        wait_until(lambda: store.get_job(job.id).status == Status.COMPLETED, 60,  # type: ignore[union-attr]
                   "the rung job to complete")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0  # idle children leave their pop within 1 s
    finally:
        stop(worker)
