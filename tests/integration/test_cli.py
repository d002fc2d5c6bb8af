"""The `formrelay` command as a process: migrate, status, run, and start-up refusals."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest
import requests

from sidecar.store import Database
from sidecar.store.schema import latest_version
from tests.conftest import TEST_DB_HOST, TEST_DB_PASSWORD, TEST_DB_USER, add_wp_options, wait_until

pytestmark = pytest.mark.db

SECRET = "0123456789abcdef-shared-secret"


def formrelay_bin() -> str:
    venv_bin = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "formrelay"
    return str(venv_bin) if venv_bin.exists() else "formrelay"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def env(scratch_dbs, tmp_path):
    settings = scratch_dbs.create()
    add_wp_options(Database(settings), "wp_")  # a WordPress database: `migrate` goes ahead
    return {
        "PATH": os.environ["PATH"], "WORDPRESS_DB_HOST": TEST_DB_HOST,
        "WORDPRESS_DB_USER": TEST_DB_USER, "WORDPRESS_DB_PASSWORD": TEST_DB_PASSWORD,
        "WORDPRESS_DB_NAME": settings.database, "FORMRELAY_SHARED_SECRET": SECRET,
        "FORMRELAY_PARTNER_URL": "http://127.0.0.1:9/api", "FORMRELAY_UPLOADS_DIR": str(tmp_path),
        "FORMRELAY_DATA_DIR": str(tmp_path / "data"),
        "FORMRELAY_LISTEN": f"127.0.0.1:{free_port()}",
    }


def formrelay(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([formrelay_bin(), *args], env=env, capture_output=True, text=True,
                          timeout=60)


def test_migrate_twice_then_status(env):
    first = formrelay(env, "migrate")
    assert first.returncode == 0, first.stderr
    assert f"to schema version {latest_version()}" in first.stdout
    second = formrelay(env, "migrate")
    assert second.returncode == 0 and f"up to date (version {latest_version()})" in second.stdout
    status = formrelay(env, "status")
    assert status.returncode == 2  # CRITICAL: no worker runs
    assert "claims: FOR UPDATE SKIP LOCKED" in status.stdout and "jobs: none" in status.stdout
    assert "workers: none" in status.stdout
    assert "state: CRITICAL" in status.stdout and "problem: CRITICAL no_worker:" in status.stdout


def test_status_into_a_closed_pipe_ends_without_a_traceback(env):
    assert formrelay(env, "migrate").returncode == 0
    read_end, write_end = os.pipe()
    os.close(read_end)  # as `formrelay status | head -1` once head has gone
    try:
        proc = subprocess.run([formrelay_bin(), "status"], env=env, stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write_end)
    assert proc.returncode == 141
    assert proc.stderr == ""


@pytest.mark.parametrize("command", ["run", "web", "worker"])
def test_service_commands_refuse_to_start_without_the_schema(env, command):
    proc = formrelay(env, command)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"formrelay {command}: FormRelay tables (wp_formrelay_*) are"
                                   " missing in this database: run `formrelay migrate`")
    assert formrelay(env, "status").returncode == 3  # UNKNOWN: the state cannot be read


def test_an_unreachable_database_is_one_line(env):
    proc = formrelay(env | {"WORDPRESS_DB_NAME": "fr_test_does_not_exist"}, "migrate")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot connect to database fr_test_does_not_exist" in lines[0]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_serves_health_on_the_embedded_queue_and_stops_on_a_signal(env, sig):
    assert formrelay(env, "migrate").returncode == 0
    proc = subprocess.Popen([formrelay_bin(), "run"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://{env['FORMRELAY_LISTEN']}/healthz"

        def healthy() -> dict | None:  # 503 until its own heartbeat makes a live worker
            try:
                answer = requests.get(url, timeout=1)
            except requests.RequestException:
                assert proc.poll() is None, "formrelay run exited early"
                return None
            return answer.json() if answer.status_code == 200 else None

        body = wait_until(healthy, 30, "/healthz to answer 200")
        assert (body["status"], body["schema_version"], body["version"], body["reasons"]) == (
            "ok", latest_version(), "0.1.0", [])
        assert body["delivery"]["live_workers"] == 1 and not body["delivery"]["paused"]
        assert (Path(env["FORMRELAY_DATA_DIR"]) / "queue.sqlite3").exists()
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        output = proc.stdout.read() if proc.stdout else ""
    assert "queue: sqlite" in output
    assert SECRET not in output


def test_a_worker_refuses_an_http_partner_off_loopback_and_says_why(env):
    proc = formrelay({**env, "FORMRELAY_PARTNER_URL": "http://partner.example/api",
                      "FORMRELAY_PARTNER_TOKEN": "token-that-must-not-show"}, "worker")
    assert proc.returncode == 78
    assert "FORMRELAY_PARTNER_URL is http:// to a host that is not loopback" in proc.stderr
    assert "token-that-must-not-show" not in proc.stderr + proc.stdout
