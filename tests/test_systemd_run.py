"""Run each unit's ExecStart= as systemd would (tests/systemd_units.py rebuilds the argv
and the environment from the unit, formrelay.env.example and the credentials) against a
scratch database and Redis: web answers /readyz, a worker starts and stops cleanly on
SIGTERM to its group within TimeoutStopSec, and a bad setting exits 78 (not restarted).

PID 1 here is not systemd, so the processes run as the test's user, not User=formrelay.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from sidecar import cli
from sidecar.store import Database, DbSettings
from tests.conftest import PREFIX, TEST_DB_HOST, ScratchDatabases, add_wp_options, wait_until
from tests.integration.test_cli import formrelay_bin, free_port
from tests.systemd_units import REPO, UNIT_DIR, read_unit, service_process, value

pytestmark = [pytest.mark.db, pytest.mark.redis]


@dataclass
class Host:
    """/etc/formrelay and a runtime directory for one test: the settings systemd reads."""

    etc: Path
    runtime: Path
    db_name: str
    settings: dict[str, str] = field(default_factory=dict)

    def write_env(self, **changes: str) -> None:
        """formrelay.env: the example with these settings changed (or added)."""
        self.settings.update(changes)
        rest, lines = dict(self.settings), []
        for line in (UNIT_DIR / "formrelay.env.example").read_text().splitlines():
            name = line.partition("=")[0]
            lines.append(f"{name}={rest.pop(name)}" if name in rest else line)
        lines += [f"{k}={v}" for k, v in rest.items()]
        (self.etc / "formrelay.env").write_text("\n".join(lines) + "\n")
        (self.etc / "formrelay.env").chmod(0o600)

    def credential(self, name: str, secret: str) -> None:
        path = self.etc / "credentials" / name
        path.write_text(secret + "\n")
        path.chmod(0o600)

    def start(self, unit: str, instance: str = "") -> subprocess.Popen[str]:
        proc = service_process(unit, instance, self.etc, self.runtime, formrelay_bin())
        # its own process group, like the unit's cgroup: KillMode=control-group signals all
        return subprocess.Popen(proc.argv, env=proc.env, cwd=proc.cwd, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)


@pytest.fixture
def host(tmp_path: Path, scratch_dbs: ScratchDatabases) -> Iterator[Host]:
    """A migrated WordPress-shaped database with a password user, the env file, credentials."""
    settings = scratch_dbs.create_migrated()
    db = Database(settings)
    add_wp_options(db)
    user, password = f"fr_test_{secrets.token_hex(4)}", secrets.token_hex(16)
    with db.transaction() as cur:
        cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
        cur.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON `{settings.database}`.*"
                    f" TO '{user}'@'%'")
    etc = tmp_path / "etc-formrelay"
    (etc / "credentials").mkdir(parents=True, mode=0o700)
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    made = Host(etc, tmp_path / "run", settings.database)
    made.runtime.mkdir()
    made.write_env(WORDPRESS_DB_HOST=TEST_DB_HOST, WORDPRESS_DB_USER=user,
                   WORDPRESS_DB_NAME=settings.database, WORDPRESS_TABLE_PREFIX=PREFIX,
                   FORMRELAY_PARTNER_URL="http://127.0.0.1:9/api",
                   FORMRELAY_UPLOADS_DIR=str(uploads),
                   FORMRELAY_TEMPLATES_DIR=str(REPO / "templates"),
                   FORMRELAY_LISTEN=f"127.0.0.1:{free_port()}",
                   FORMRELAY_QUEUE_NAME=f"formrelay-systemd-{secrets.token_hex(4)}",
                   FORMRELAY_WORKERS="2")
    made.credential("shared_secret", secrets.token_hex(24))
    made.credential("db_password", password)
    try:
        yield made
    finally:
        with db.transaction() as cur:
            cur.execute(f"DROP USER '{user}'@'%'")
        db.close()


def ready(url: str, proc: subprocess.Popen[str]) -> bool:
    assert proc.poll() is None, f"exited {proc.returncode}: {output(proc)}"
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


def output(proc: subprocess.Popen[str]) -> str:
    return proc.stdout.read() if proc.stdout else ""


def stop(proc: subprocess.Popen[str], unit: str) -> tuple[int, float]:
    """SIGTERM to the group, as systemd's KillMode=control-group; (status, seconds)."""
    limit = int(value(read_unit(unit), "Service", "TimeoutStopSec"))
    started = time.monotonic()
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        status = proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail(f"{unit} did not stop within TimeoutStopSec={limit}; systemd would SIGKILL")
    return status, time.monotonic() - started


def test_web_unit_answers_readyz_and_stops_on_sigterm(host: Host) -> None:
    proc = host.start("formrelay-web.service")
    url = f"http://{host.settings['FORMRELAY_LISTEN']}/readyz"
    wait_until(lambda: ready(url, proc), 60, "formrelay web to answer /readyz")
    status, _ = stop(proc, "formrelay-web.service")
    text = output(proc)
    assert status == 0, text
    assert "http listening on" in text


def workers(host: Host) -> int:
    settings = DbSettings.parse(TEST_DB_HOST, os.environ.get("FORMRELAY_TEST_DB_USER", "root"),
                                os.environ.get("FORMRELAY_TEST_DB_PASSWORD", ""), host.db_name)
    db = Database(settings)
    try:
        with db.transaction() as cur:
            cur.execute(f"SELECT COUNT(*) AS n FROM {PREFIX}formrelay_workers")
            row = cur.fetchone()
            return int(row["n"])  # type: ignore[index]
    finally:
        db.close()


def test_worker_instance_starts_and_stops_cleanly_on_sigterm(host: Host) -> None:
    listen = f"127.0.0.1:{free_port()}"  # the per-instance file the unit reads, optional
    (host.etc / "worker-1.env").write_text(f"FORMRELAY_WORKER_LISTEN={listen}\n")
    proc = host.start("formrelay-worker@.service", "1")
    wait_until(lambda: ready(f"http://{listen}/readyz", proc), 60, "the worker's /readyz")
    wait_until(lambda: workers(host) == 1, 30, "the worker's heartbeat row")
    status, seconds = stop(proc, "formrelay-worker@.service")
    text = output(proc)
    assert status == 0, text
    assert workers(host) == 0, "a clean stop removes the heartbeat row"
    assert seconds < 30, f"an idle worker took {seconds:.1f} s to stop"


@pytest.mark.parametrize(("unit", "change", "says"), [
    ("formrelay-web.service", {"credential": "short"}, "FORMRELAY_SHARED_SECRET"),
    ("formrelay-worker@.service", {"FORMRELAY_PARTNER_URL": "ftp://partner.example.org"},
     "FORMRELAY_PARTNER_URL"),
    ("formrelay-worker@.service", {"FORMRELAY_SHARED_SECRET": "set-twice-0123456789"},
     "FORMRELAY_SHARED_SECRET"),
])
def test_a_bad_setting_exits_78_with_one_line_and_no_secret(
        host: Host, unit: str, change: dict[str, str], says: str) -> None:
    if "credential" in change:  # too short
        host.credential("shared_secret", change.pop("credential"))
    host.write_env(**change)  # a bad URL; or the secret set beside its credential's _FILE
    proc = host.start(unit, "1")
    status = proc.wait(timeout=60)
    text = output(proc)
    assert status == cli.EX_CONFIG == 78, text
    assert says in text
    password = (host.etc / "credentials" / "db_password").read_text().strip()
    assert password not in text and "set-twice-0123456789" not in text


@pytest.mark.skipif(os.geteuid() != 0, reason="formrelay-admin runs as root (it reads root-only"
                    " settings); this test runs as another user")
def test_formrelay_admin_runs_status_with_the_units_settings_and_credentials(host: Host) -> None:
    before = set(Path("/run").glob("formrelay-admin.*"))
    env = {"PATH": os.environ["PATH"], "FORMRELAY_ENV_FILE": str(host.etc / "formrelay.env"),
           "FORMRELAY_CREDENTIALS_DIR": str(host.etc / "credentials"),
           "FORMRELAY_SERVICE_USER": "root",  # the test venv's Python is private to root here
           "FORMRELAY_BIN": formrelay_bin()}
    proc = subprocess.run([str(UNIT_DIR / "formrelay-admin"), "status"], env=env, text=True,
                          capture_output=True, timeout=120)
    assert proc.returncode in (0, 2), proc.stdout + proc.stderr  # 2: no live worker
    assert "schema: version" in proc.stdout
    password = (host.etc / "credentials" / "db_password").read_text().strip()
    assert password not in proc.stdout + proc.stderr
    assert set(Path("/run").glob("formrelay-admin.*")) == before, "its copies are removed"
