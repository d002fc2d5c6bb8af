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
from tests.conftest import TEST_DB_HOST, TEST_DB_PASSWORD, TEST_DB_USER
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
        "FORMRELAY_BACKOFF_BASE": "0.2",
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
