"""FORMRELAY_LOG_FORMAT=json from a real `formrelay worker` process (thread and process
workers, the embedded queue, MariaDB, the simulator over HTTP): every line is one JSON
object; Huey's per-task lines appear only at FORMRELAY_LOG_LEVEL=debug."""

from __future__ import annotations

import json
import secrets

import pytest

from devstack.samples import write_pdf
from sidecar import config
from sidecar.queue import build_huey
from sidecar.states import Status
from sidecar.store import NewJob
from sidecar.tasks import register
from tests.integration.delivery import snapshot, text_fields
from tests.integration.processes import run_worker_until, worker_env

pytestmark = [pytest.mark.db, pytest.mark.sim, pytest.mark.slow]


@pytest.mark.parametrize(("level", "worker_type"), [("info", "process"), ("debug", "thread")])
def test_json_logs_of_a_worker_line_by_line(store, migrated_db, sim, uploads, tmp_path, level,
                                            worker_type):
    env = worker_env(migrated_db.database, sim.url, uploads, tmp_path,
                     FORMRELAY_LOG_FORMAT="json", FORMRELAY_LOG_LEVEL=level,
                     FORMRELAY_WORKER_TYPE=worker_type, FORMRELAY_BACKOFF_BASE="0.2",
                     FORMRELAY_QUEUE_NAME=f"formrelay-test-{secrets.token_hex(4)}")
    tasks = register(build_huey(config.load("migrate", env)), lambda: None)  # type: ignore
    doc = write_pdf(uploads / "wpforms" / "12-abc" / "doc.pdf", 3000)
    sim.script({"kind": "record", "status": 503})  # one retry: an http_status in the log
    job, _ = store.enqueue(NewJob("wpforms:12:1", 12, 1, snapshot(12, 1, text_fields(), uploads,
                                                                  [doc])))
    tasks.ring_record(job.id, job.priority)
    output = run_worker_until(env, lambda: store.get_job(job.id).status == Status.COMPLETED,
                              "the job delivered")
    lines = [json.loads(line) for line in output.splitlines()]  # every line is JSON
    assert lines and all({"ts", "level", "logger", "event"} <= set(line) for line in lines)
    assert all(line["ts"].endswith("Z") for line in lines)
    retry = next(line for line in lines if line["event"] == "record.retry")
    assert retry["job"] == job.id and retry["http_status"] == 503 and retry["attempt"] == 1
    assert isinstance(retry["duration_ms"], int)
    uploaded = next(line for line in lines if line["event"] == "document.uploaded")
    assert uploaded["job"] == job.id and isinstance(uploaded["document"], int)
    per_task = [line for line in lines if line["logger"].startswith("huey")
                and line["message"].startswith("Executing ")]
    assert bool(per_task) == (level == "debug")
    assert all(line["level"] == "debug" for line in per_task)
    assert "Jane Doe" not in output and "jane@example.com" not in output
