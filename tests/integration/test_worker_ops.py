"""A real `formrelay worker` with FORMRELAY_WORKER_LISTEN: its /metrics, scraped over HTTP
and parsed, count the deliveries the partner simulator saw; its /healthz follows a pause.
Thread and process workers (the latter through prometheus_client's multiprocess mode)."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests

from devstack.samples import write_pdf
from sidecar import config
from sidecar.queue import build_huey
from sidecar.states import Status
from sidecar.store import NewJob
from sidecar.tasks import register
from tests.conftest import wait_until
from tests.integration.delivery import snapshot, text_fields
from tests.integration.processes import start_worker, stop, worker_env
from tests.integration.test_admin_api import sql
from tests.integration.test_cli import formrelay_bin, free_port
from tests.integration.test_health import metric_families, sample

pytestmark = [pytest.mark.db, pytest.mark.sim, pytest.mark.slow]


def scrape(url: str) -> tuple[str, dict[str, Any]]:
    text = requests.get(url + "/metrics", timeout=10).text
    return text, metric_families(text)


@pytest.mark.parametrize("worker_type", ["thread", "process"])
def test_worker_metrics_count_real_deliveries_and_healthz_follows_a_pause(
        store, migrated_db, sim, uploads, tmp_path, worker_type):
    sql(store, "DELETE FROM {p}formrelay_workers")
    listen = f"127.0.0.1:{free_port()}"
    env = worker_env(migrated_db.database, sim.url, uploads, tmp_path,
                     FORMRELAY_WORKER_TYPE=worker_type, FORMRELAY_WORKER_LISTEN=listen,
                     FORMRELAY_BACKOFF_BASE="0.2",
                     FORMRELAY_QUEUE_NAME=f"formrelay-test-{secrets.token_hex(4)}")
    url = f"http://{listen}"
    docs = [write_pdf(uploads / "wpforms" / "12-abc" / f"doc{i}.pdf", 3000) for i in range(2)]
    sim.script({"kind": "record", "status": 503})  # one retry
    jobs = [store.enqueue(NewJob(f"wpforms:12:{n}", 12, n,
                                 snapshot(12, n, text_fields(), uploads, docs)))[0].id
            for n in range(3)]  # rung by the worker when it starts
    huey = build_huey(config.load("migrate", env))
    worker = start_worker(env)
    try:
        def delivered() -> bool:
            assert worker.poll() is None, "the worker exited"
            return all(store.get_job(j).status == Status.COMPLETED for j in jobs)

        wait_until(delivered, 60, "every job delivered")
        stats = sim.stats()
        assert stats["records_created"] == 3 and stats["documents_created"] == 6
        text, families = scrape(url)
        assert sample(families, "formrelay_attempts_total", step="record", outcome="success") == 3
        assert sample(families, "formrelay_attempts_total", step="record", outcome="server") == 1
        assert sample(families, "formrelay_attempts_total", step="document",
                      outcome="success") == 6
        assert sample(families, "formrelay_partner_request_seconds_count", step="record") == 4
        assert sample(families, "formrelay_partner_request_seconds_count", step="document") == 6
        assert sample(families, "formrelay_jobs", status="completed") == 3
        assert sample(families, "formrelay_documents", status="uploaded") == 6
        assert sample(families, "formrelay_workers", state="live") == 1
        assert sample(families, "formrelay_heartbeats_total") >= 1
        assert not [s for f in families.values() for s in f.samples
                    if s.name == "formrelay_pauses_total"]  # no pause yet
        assert "Jane" not in text and "doc0.pdf" not in text
        code = requests.get(url + "/healthz", timeout=10).status_code
        assert code == 200 and requests.get(url + "/livez", timeout=10).ok

        # A 401: delivery pauses and waits for a person; counted, and /healthz says so.
        sim.script({"kind": "record", "status": 401})
        job, _ = store.enqueue(NewJob("wpforms:12:9", 12, 9,
                                      snapshot(12, 9, text_fields(), uploads, [])))
        register(huey, lambda: None).ring_record(job.id, job.priority)  # type: ignore[arg-type, return-value]

        def paused() -> dict[str, Any] | None:
            answer = requests.get(url + "/healthz", timeout=10)
            return answer.json() if answer.status_code == 503 else None

        body = wait_until(paused, 30, "/healthz to answer 503")
        assert body["delivery"]["needs_person"] and "needs a person" in body["reasons"][0]
        _, families = scrape(url)
        assert sample(families, "formrelay_pauses_total", reason="auth") == 1
        assert sample(families, "formrelay_attempts_total", step="record", outcome="auth") == 1
        assert sample(families, "formrelay_delivery_paused") == 1
        metrics_dir = Path(env["FORMRELAY_DATA_DIR"]) / f"metrics-{worker.pid}"
        assert metrics_dir.is_dir() == (worker_type == "process")
        worker.send_signal(signal.SIGINT)
        assert worker.wait(timeout=30) == 0
    finally:
        output = stop(worker)
        huey.storage.flush_all()
    assert f"worker http listening on {listen}" in output
    assert not metrics_dir.exists()  # removed at a clean stop


def test_run_with_process_workers_serves_metrics_and_health_on_its_main_listener(
        store, migrated_db, sim, uploads, tmp_path):
    """`formrelay run`: no FORMRELAY_WORKER_LISTEN needed; multiprocess files of its tree."""
    sql(store, "DELETE FROM {p}formrelay_workers")
    listen = f"127.0.0.1:{free_port()}"
    env = worker_env(migrated_db.database, sim.url, uploads, tmp_path,
                     FORMRELAY_WORKER_TYPE="process", FORMRELAY_LISTEN=listen)
    job, _ = store.enqueue(NewJob("wpforms:12:1", 12, 1, snapshot(12, 1, text_fields(), uploads,
                                                                  [])))
    run = subprocess.Popen([formrelay_bin(), "run"], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    try:
        def delivered() -> bool:
            assert run.poll() is None, "formrelay run exited"
            return store.get_job(job.id).status == Status.COMPLETED

        wait_until(delivered, 60, "the job delivered")
        _, families = scrape(f"http://{listen}")
        assert sample(families, "formrelay_attempts_total", step="record", outcome="success") == 1
        assert sample(families, "formrelay_heartbeats_total") >= 1
        assert (Path(env["FORMRELAY_DATA_DIR"]) / f"metrics-{run.pid}").is_dir()
        assert requests.get(f"http://{listen}/healthz", timeout=10).status_code == 200
        run.send_signal(signal.SIGINT)
        assert run.wait(timeout=30) == 0
    finally:
        stop(run)
    assert not (Path(env["FORMRELAY_DATA_DIR"]) / f"metrics-{run.pid}").exists()


def children_of(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def test_process_workers_die_with_a_parent_killed_outright(migrated_db, sim, uploads, tmp_path):
    """SIGKILL (the OOM killer) leaves no orphan taking work under a stopped heartbeat."""
    env = worker_env(migrated_db.database, sim.url, uploads, tmp_path,
                     FORMRELAY_WORKER_TYPE="process",
                     FORMRELAY_QUEUE_NAME=f"formrelay-test-{secrets.token_hex(4)}")
    worker = start_worker(env)
    try:
        def forked() -> set[int] | None:
            assert worker.poll() is None, "formrelay worker exited"
            found = children_of(worker.pid)
            return found if len(found) >= 2 else None  # FORMRELAY_WORKERS=2

        children = wait_until(forked, 60, "the process workers to start")
    finally:
        worker.kill()  # SIGKILL; its output is not read: an orphan would hold the pipe open
        worker.wait()

    def alive(pid: int) -> bool:
        with contextlib.suppress(OSError):
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        return False

    try:
        wait_until(lambda: not [c for c in children if alive(c)], 30,
                   "the orphaned process workers to end")
    finally:
        for orphan in [c for c in children if alive(c)]:
            os.kill(orphan, signal.SIGKILL)
        assert worker.stdout is not None
        worker.stdout.close()
