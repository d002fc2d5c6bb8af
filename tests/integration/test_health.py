"""/livez, /readyz, /healthz and /metrics over real HTTP (waitress) on a real MariaDB."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from sidecar.breaker import Policy
from sidecar.health_checks import CachedReading
from sidecar.health_routes import HealthRoutes
from sidecar.ops_http import create_ops_app, serve
from sidecar.pause import Pause
from sidecar.store import Database, DbSettings, NewJob, Store
from sidecar.store.schema import latest_version, migrate
from tests.conftest import PREFIX
from tests.integration.delivery import snapshot, text_fields
from tests.integration.test_admin_api import sql
from tests.integration.test_cli import free_port

pytestmark = pytest.mark.db
AUTH_CAUSE = "HTTP 401 auth (check FORMRELAY_PARTNER_TOKEN)"


@contextmanager
def served(routes: HealthRoutes) -> Iterator[str]:
    listen = f"127.0.0.1:{free_port()}"
    stop = serve(create_ops_app(routes), listen, name="test http")
    try:
        yield f"http://{listen}"
    finally:
        stop()


def get(url: str) -> tuple[int, dict[str, Any]]:
    answer = requests.get(url, timeout=10)
    return answer.status_code, answer.json()


@pytest.fixture
def quiet(store: Store) -> Store:
    """No workers and no pause: each test sets what it needs."""
    sql(store, "DELETE FROM {p}formrelay_workers")
    return store


def live_worker(store: Store, worker_id: str = "host1:11:aaaa") -> None:
    store.heartbeat(worker_id, "host1", 11, "0.1.0", "thread", 2, 15)


def add_job(store: Store, n: int, uploads: Path, status: str = "pending") -> int:
    job, _ = store.enqueue(NewJob(f"wpforms:12:{n}", 12, n,
                                  snapshot(12, n, text_fields(), uploads, [])))
    if status != "pending":
        sql(store, "UPDATE {p}formrelay_jobs SET status = %s WHERE id = %s", status, job.id)
        store.recount_jobs(repair=True)  # a status set around the store: its counts anew
    return job.id


def test_healthz_is_200_while_delivering_and_503_while_paused(quiet, tmp_path):
    live_worker(quiet)
    add_job(quiet, 1, tmp_path)  # a waiting job whose values must not show
    with served(HealthRoutes(quiet, tmp_path, backlog_seconds=3600, ttl=0)) as url:
        code, body = get(url + "/healthz")
        assert code == 200, body
        assert (body["status"], body["severity"], body["reasons"], body["problems"]) == (
            "ok", "OK", [], [])
        assert body["checks"] == {"database": {"ok": True, "detail": "reachable"},
                                  "schema": {"ok": True, "detail": f"version {latest_version()}"},
                                  "uploads": {"ok": True, "detail": "readable"}}
        assert body["delivery"]["live_workers"] == 1 and body["delivery"]["waiting"] == 1

        Pause(quiet, Policy()).refused(AUTH_CAUSE, auth=True)  # the row a 401 writes
        answer = requests.get(url + "/healthz", timeout=10)
        code, body = answer.status_code, answer.json()
        assert code == 503 and body["status"] == "unavailable" and body["severity"] == "CRITICAL"
        assert len(body["reasons"]) == 1 and "needs a person" in body["reasons"][0]
        assert AUTH_CAUSE in body["reasons"][0]
        delivery = body["delivery"]
        assert delivery["paused"] and delivery["needs_person"] and delivery["cause"] == AUTH_CAUSE
        assert delivery["paused_since"]
        assert "Jane" not in answer.text and "jane@example.com" not in answer.text

        Pause(quiet, Policy()).resume("test")
        assert get(url + "/healthz")[0] == 200


def test_an_outage_pause_is_503_with_its_next_probe(quiet, tmp_path):
    live_worker(quiet)
    Pause(quiet, Policy(threshold=1)).failed("HTTP 503 server", probe=False)
    with served(HealthRoutes(quiet, tmp_path, ttl=0)) as url:
        code, body = get(url + "/healthz")
    assert code == 503 and body["severity"] == "WARNING"
    assert "HTTP 503 server; next probe at" in body["reasons"][0]
    assert body["delivery"]["paused"] and not body["delivery"]["needs_person"]


def test_healthz_is_503_with_no_live_worker(quiet, tmp_path):
    with served(HealthRoutes(quiet, tmp_path, ttl=0)) as url:
        code, body = get(url + "/healthz")
        assert code == 503 and body["reasons"] == ["no live worker: nothing is being delivered"]
        assert get(url + "/readyz")[0] == 200  # this process is ready: delivery is not
        live_worker(quiet, "host1:11:aaaa")
        live_worker(quiet, "host2:22:bbbb")
        sql(quiet, "UPDATE {p}formrelay_workers SET last_seen = UTC_TIMESTAMP(3) - INTERVAL 10"
                   " MINUTE WHERE id = 'host2:22:bbbb'")
        code, body = get(url + "/healthz")
    assert code == 200 and body["status"] == "degraded" and body["severity"] == "WARNING"
    assert [p["kind"] for p in body["problems"]] == ["workers_silent"]
    assert body["delivery"]["silent_workers"] == ["host2:22:bbbb"]


def test_a_backlog_and_failed_jobs_are_facts_in_a_200(quiet, tmp_path):
    live_worker(quiet)
    add_job(quiet, 1, tmp_path)
    add_job(quiet, 2, tmp_path, "failed")
    with served(HealthRoutes(quiet, tmp_path, backlog_seconds=0, ttl=0)) as url:
        code, body = get(url + "/healthz")
    assert code == 200 and body["status"] == "degraded" and body["severity"] == "CRITICAL"
    assert sorted(p["kind"] for p in body["problems"]) == ["backlog", "failed"]
    assert body["delivery"]["failed"] == 1 and body["reasons"] == []


def test_a_database_that_does_not_answer(tmp_path):
    down = Store(Database(DbSettings("127.0.0.1", "root", "", "nothing", port=free_port(),
                                     connect_timeout=2)), PREFIX)
    with served(HealthRoutes(down, tmp_path, ttl=0)) as url:
        assert get(url + "/livez") == (200, {"status": "alive", "version": "0.1.0"})
        code, ready = get(url + "/readyz")
        assert code == 503 and ready["status"] == "not ready"
        assert ready["reasons"][0].startswith("database: unreachable (")
        code, body = get(url + "/healthz")
        assert code == 503 and body["severity"] == "CRITICAL" and body["delivery"] is None
        assert body["reasons"][:2] == ready["reasons"][:2]
        families = metric_families(requests.get(url + "/metrics", timeout=10).text)
    assert sample(families, "formrelay_database_up") == 0
    assert "formrelay_jobs" not in families


def test_readyz_names_an_unreadable_uploads_directory(quiet, tmp_path):
    gone = tmp_path / "uploads"  # the mount went away
    with served(HealthRoutes(quiet, gone, ttl=0)) as url:
        code, body = get(url + "/readyz")
        assert code == 503
        assert body["reasons"] == [f"uploads: FORMRELAY_UPLOADS_DIR {gone} is not readable"
                                   " (No such file or directory)"]
        assert body["checks"]["database"]["ok"] and body["checks"]["schema"]["ok"]
        gone.mkdir()
        assert get(url + "/readyz")[0] == 200


def test_readyz_is_503_when_the_schema_is_missing_or_behind(scratch_dbs, tmp_path):
    store = Store(Database(scratch_dbs.create()), PREFIX)
    with served(HealthRoutes(store, None, ttl=0)) as url:
        code, body = get(url + "/readyz")
        assert code == 503 and body["reasons"] == [
            "schema: FormRelay tables are missing: run `formrelay migrate`"]
        assert "uploads" not in body["checks"]  # this process has no uploads directory
        migrate(store.db, PREFIX)
        assert get(url + "/readyz")[0] == 200
        behind = latest_version() - 1
        sql(store, "UPDATE {p}formrelay_meta SET value = %s WHERE name = 'schema_version'",
            str(behind))
        code, body = get(url + "/readyz")
        assert code == 503 and body["reasons"] == [
            f"schema: version {behind}, this sidecar needs {latest_version()}:"
            " run `formrelay migrate`"]
        assert get(url + "/healthz")[0] == 503
    store.db.close()


def test_the_delivery_reading_is_cached_for_its_ttl(quiet):
    now = [100.0]
    reading = CachedReading(quiet, ttl=5, clock=lambda: now[0])
    assert not reading.get().state.paused
    Pause(quiet, Policy()).refused(AUTH_CAUSE, auth=True)
    now[0] += 4.9
    assert not reading.get().state.paused  # served from the cache: no read
    now[0] += 0.1
    assert reading.get().state.paused


# ---- /metrics -----------------------------------------------------------------------------

def metric_families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def sample(families: dict[str, Any], name: str, **labels: str) -> float:
    """The value of the one sample named `name` (e.g. x_total, x_count) with exactly these
    labels, whichever family has it."""
    found = [s.value for f in families.values() for s in f.samples
             if s.name == name and s.labels == labels]
    assert len(found) == 1, (name, labels, found)
    return float(found[0])


def test_metrics_report_the_database_figures(quiet, tmp_path):
    live_worker(quiet)
    for n, status in enumerate(["pending", "pending", "failed", "completed"], 1):
        add_job(quiet, n, tmp_path, status)
    Pause(quiet, Policy()).refused(AUTH_CAUSE, auth=True)
    with served(HealthRoutes(quiet, tmp_path, backlog_seconds=3600, ttl=0)) as url:
        answer = requests.get(url + "/metrics", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain; version=")
    families = metric_families(answer.text)
    assert {s.labels["status"]: s.value for s in families["formrelay_jobs"].samples} == {
        "pending": 2, "processing": 0, "retrying": 0, "completed": 1, "failed": 1,
        "cancelled": 0}
    assert sample(families, "formrelay_documents", status="uploaded") == 0
    assert sample(families, "formrelay_delivery_paused") == 1
    assert sample(families, "formrelay_delivery_needs_person") == 1
    assert sample(families, "formrelay_workers", state="live") == 1
    assert sample(families, "formrelay_workers", state="silent") == 0
    assert sample(families, "formrelay_delivery_severity") == 2
    assert sample(families, "formrelay_database_up") == 1
    assert sample(families, "formrelay_oldest_waiting_seconds") >= 0
    assert sample(families, "formrelay_build_info", version="0.1.0") == 1
    assert "Jane" not in answer.text and AUTH_CAUSE not in answer.text
    assert json.dumps(sorted(families)).count("formrelay_") >= 10
