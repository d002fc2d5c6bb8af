"""End to end through the doorbell: a real `formrelay worker` process, Huey (SQLite or
Redis), MariaDB and the simulator over HTTP."""

from __future__ import annotations

import os
import secrets

import pytest

from devstack.samples import write_pdf
from sidecar import config
from sidecar.queue import build_huey
from sidecar.states import Status
from sidecar.store import NewJob
from sidecar.tasks import register
from tests.conftest import QUEUE_SECRET, TEST_DB_HOST, TEST_DB_PASSWORD, TEST_DB_USER
from tests.integration.delivery import snapshot, text_fields
from tests.integration.processes import run_worker_until

pytestmark = [pytest.mark.db, pytest.mark.sim, pytest.mark.slow]


@pytest.mark.parametrize("queue,worker_type", [
    ("sqlite", "thread"), ("sqlite", "process"),
    pytest.param("redis", "thread", marks=pytest.mark.redis),
    pytest.param("redis", "process", marks=pytest.mark.redis)])
def test_a_worker_delivers_rung_jobs_once(store, migrated_db, sim, uploads, tmp_path, queue,
                                          worker_type):
    env = {
        "PATH": os.environ["PATH"], "WORDPRESS_DB_HOST": TEST_DB_HOST,
        "WORDPRESS_DB_USER": TEST_DB_USER, "WORDPRESS_DB_PASSWORD": TEST_DB_PASSWORD,
        "WORDPRESS_DB_NAME": migrated_db.database, "FORMRELAY_PARTNER_URL": sim.url,
        "FORMRELAY_UPLOADS_DIR": str(uploads), "FORMRELAY_DATA_DIR": str(tmp_path / "data"),
        "FORMRELAY_WORKERS": "2", "FORMRELAY_WORKER_TYPE": worker_type,
        "FORMRELAY_BACKOFF_BASE": "0.2", "FORMRELAY_SHARED_SECRET": QUEUE_SECRET,
    }
    if queue == "redis":  # a queue of its own in the shared Redis, removed afterwards
        env["FORMRELAY_REDIS_URL"] = "redis://127.0.0.1:6379/0"
    name = f"formrelay-test-{secrets.token_hex(4)}"
    env["FORMRELAY_QUEUE_NAME"] = name
    cfg = config.load("migrate", env)
    huey = build_huey(cfg)
    tasks = register(huey, lambda: None)  # type: ignore[arg-type, return-value]
    docs = [write_pdf(uploads / "wpforms" / "12-abc" / f"doc{i}.pdf", 3000) for i in range(2)]
    sim.script({"kind": "record", "status": 503})  # one retry, scheduled through Huey
    jobs = []
    for n in range(3):
        job, _ = store.enqueue(NewJob(f"wpforms:12:{n}", 12, n,
                                      snapshot(12, n, text_fields(), uploads, docs)))
        jobs.append(job.id)
        tasks.ring_record(job.id, job.priority)
    tasks.ring_record(jobs[0], 10)  # a duplicate doorbell
    silent, _ = store.enqueue(NewJob("wpforms:12:silent", 12, 99,  # its notify was lost:
                                     snapshot(12, 99, text_fields(), uploads, [])))
    jobs.append(silent.id)  # the worker rings due work when it starts
    try:
        output = run_worker_until(env, lambda: all(
            store.get_job(j).status == Status.COMPLETED for j in jobs),
            "every job completed by the worker")
    finally:
        huey.storage.flush_all()
    stats = sim.stats()
    assert stats["records_created"] == 4 and stats["documents_created"] == 6
    assert "event=record.retry" in output and "event=document.uploaded" in output
    assert "Jane Doe" not in output and "jane@example.com" not in output


@pytest.mark.redis
def test_a_worker_on_a_password_redis_refuses_a_forged_message_and_delivers(
        store, migrated_db, sim, uploads, tmp_path):
    """A real `formrelay worker` on Redis reached with user:password: a forged pickle pushed
    into its queue is dropped unread (one log line, no crash) and the rung job is delivered;
    no start-up line or log shows the credentials."""
    import redis

    from tests.integration.processes import worker_env
    from tests.integration.test_queue import forged_messages

    admin = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    user, password = f"fr-test-{secrets.token_hex(3)}", f"pw-{secrets.token_hex(12)}"
    admin.acl_setuser(user, enabled=True, passwords=[f"+{password}"], keys=["*"],
                      commands=["+@all"])
    env = worker_env(migrated_db.database, sim.url, uploads, tmp_path,
                     FORMRELAY_REDIS_URL=f"redis://{user}:{password}@127.0.0.1:6379/0",
                     FORMRELAY_QUEUE_NAME=f"formrelay-test-{secrets.token_hex(4)}")
    huey = build_huey(config.load("worker", env))
    tasks = register(huey, lambda: None)  # type: ignore[arg-type, return-value]
    marker = tmp_path / "forged-pickle-ran"
    try:
        for forged in forged_messages(marker):
            huey.storage.enqueue(forged, 100)  # ahead of the real doorbell
        job, _ = store.enqueue(NewJob("wpforms:12:1", 12, 1,
                                      snapshot(12, 1, text_fields(), uploads, [])))
        tasks.ring_record(job.id, job.priority)
        output = run_worker_until(env, lambda: store.get_job(job.id).status == Status.COMPLETED,
                                  "the rung job completed")
    finally:
        huey.storage.flush_all()
        admin.acl_deluser(user)
    assert not marker.exists()
    assert output.count("refused a queued message without a valid signature") == 2
    assert "Traceback" not in output
    assert "queue: redis redis://127.0.0.1:6379/0 (with password), signed" in output
    assert "MySQL driver: mysql-connector 9." in output and ", C extension" in output
    assert password not in output and user not in output
