"""`formrelay doctor` and `formrelay status --json` as processes, on real parts: a scratch
WordPress-shaped MariaDB database, Redis (one with a password, started here), the partner
simulator answering 401, a least-privilege database user."""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import subprocess
from collections.abc import Iterator

import pytest

from sidecar.partner_sim import run_in_thread
from sidecar.store import Database, Store
from tests.conftest import PREFIX, add_wp_options, wait_until
from tests.integration.processes import worker_env
from tests.integration.test_cli import formrelay, free_port

pytestmark = [pytest.mark.db, pytest.mark.redis, pytest.mark.sim]
TOKEN = "partner-token-that-must-not-show"


@pytest.fixture
def site_env(scratch_dbs, uploads, tmp_path) -> dict[str, str]:
    """A WordPress-shaped database (options, migrated FormRelay tables) and a worker's env."""
    settings = scratch_dbs.create()
    db = Database(settings)
    add_wp_options(db)
    from sidecar.store.schema import migrate
    migrate(db, PREFIX)
    db.close()
    return worker_env(settings.database, "http://127.0.0.1:9/api", uploads, tmp_path)


def lines_of(proc: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """{check: line}; the last line of each check."""
    found = {}
    for line in proc.stdout.splitlines():
        _, _, rest = line.partition(" ")
        found[rest.strip().split(":")[0]] = line
    return found


def test_a_partner_refusing_the_token_is_a_fail_naming_it(site_env):
    sim = run_in_thread(token="the-right-token")
    try:
        env = site_env | {"FORMRELAY_PARTNER_URL": sim.url, "FORMRELAY_PARTNER_TOKEN": TOKEN}
        proc = formrelay(env, "doctor")
        right = formrelay(env | {"FORMRELAY_PARTNER_TOKEN": "the-right-token"}, "doctor")
    finally:
        sim.stop()
    assert lines_of(right)["partner"] == "OK   partner: HEAD / answered HTTP 200 with the token"
    checks = lines_of(proc)
    assert checks["partner"].startswith("FAIL partner: HEAD / answered HTTP 401")
    assert "FORMRELAY_PARTNER_TOKEN" in checks["partner"]
    assert checks["database"].startswith("OK") and checks["schema"].startswith("OK")
    assert checks["wordpress"].startswith("OK")
    assert checks["plugin"].startswith("WARN plugin: FormRelay Bridge is not active")
    assert proc.returncode == 2
    assert TOKEN not in proc.stdout + proc.stderr
    assert site_env["FORMRELAY_SHARED_SECRET"] not in proc.stdout + proc.stderr


def test_a_wrong_prefix_names_the_prefixes_found_and_never_says_migrate(site_env):
    env = site_env | {"WORDPRESS_TABLE_PREFIX": "wrong_"}
    proc = formrelay(env, "doctor", "--quick")
    checks = lines_of(proc)
    assert checks["wordpress"].startswith("FAIL wordpress: wrong_options does not exist")
    assert "'wp_'" in checks["wordpress"] and "WORDPRESS_TABLE_PREFIX" in checks["wordpress"]
    assert "migrate" not in proc.stdout
    assert set(checks) == {"configuration", "database", "wordpress", "schema"}  # --quick
    assert proc.returncode == 2
    refused = formrelay(env, "migrate")
    assert refused.returncode == 2 and "refused: wrong_options does not exist" in refused.stderr
    status = formrelay(env, "status")
    assert status.returncode == 3 and "migrate`" not in status.stdout
    assert "WORDPRESS_TABLE_PREFIX" in status.stdout
    forced = formrelay(env, "migrate", "--force")
    assert forced.returncode == 0, forced.stderr


def test_quick_on_a_sound_site_is_ok_and_an_unreachable_database_is_one_fail(site_env):
    proc = formrelay(site_env, "doctor", "--quick")
    assert proc.returncode == 0, proc.stdout
    assert [line.split()[0] for line in proc.stdout.splitlines()] == ["OK"] * 4
    gone = formrelay(site_env | {"WORDPRESS_DB_NAME": "fr_test_does_not_exist"}, "doctor",
                     "--quick")
    assert gone.returncode == 2
    assert lines_of(gone)["database"].startswith("FAIL database: cannot connect to"
                                                 " fr_test_does_not_exist")


@pytest.fixture
def redis_with_password(tmp_path) -> Iterator[tuple[str, str]]:
    """A private redis-server requiring a password: (host:port, password)."""
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    port, password = free_port(), secrets.token_hex(8)
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--requirepass", password, "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    try:
        def up() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0
        wait_until(up, 20, "redis-server listening")
        yield f"127.0.0.1:{port}", password
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_redis_password_problems_are_named_without_the_password(site_env, redis_with_password):
    where, password = redis_with_password
    cases = {f"redis://:{password}@{where}/0": "OK   redis:",
             f"redis://{where}/0": "requires a password (NOAUTH)",
             f"redis://:wrong-{password}@{where}/0": "refused the user or password"}
    for url, expected in cases.items():
        proc = formrelay(site_env | {"FORMRELAY_REDIS_URL": url}, "doctor")
        assert expected in lines_of(proc)["redis"], proc.stdout
        assert password not in proc.stdout + proc.stderr


@pytest.fixture
def limited_user(site_env) -> Iterator[tuple[str, str]]:
    """A database user with SELECT, INSERT, UPDATE, DELETE on this whole database."""
    from sidecar.store import DbSettings
    from tests.conftest import TEST_DB_HOST, TEST_DB_PASSWORD, TEST_DB_USER
    name, password = f"fr_doc_{secrets.token_hex(3)}", secrets.token_hex(12)
    root = Database(DbSettings.parse(TEST_DB_HOST, TEST_DB_USER, TEST_DB_PASSWORD,
                                     site_env["WORDPRESS_DB_NAME"]))
    with root.transaction() as cur:
        cur.execute(f"CREATE USER '{name}'@'%' IDENTIFIED BY '{password}'")
        cur.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON"
                    f" `{site_env['WORDPRESS_DB_NAME']}`.* TO '{name}'@'%'")
    try:
        yield name, password
    finally:
        with root.transaction() as cur:
            cur.execute(f"DROP USER '{name}'@'%'")
        root.close()


def test_privileges_root_and_a_database_wide_user_are_warnings(site_env, limited_user):
    as_root = lines_of(formrelay(site_env, "doctor"))["privileges"]
    assert as_root.startswith("WARN privileges:") and "ON *.*" in as_root
    assert "least-privilege user is advised" in as_root
    name, password = limited_user
    proc = formrelay(site_env | {"WORDPRESS_DB_USER": name, "WORDPRESS_DB_PASSWORD": password},
                     "doctor")
    line = lines_of(proc)["privileges"]  # the whole database has wp_users too
    database = site_env["WORDPRESS_DB_NAME"]
    assert line.startswith("WARN privileges: the user has more than it needs: DELETE, INSERT,"
                           f" SELECT, UPDATE ON `{database}`.*")
    assert password not in proc.stdout + proc.stderr


def test_uploads_sample_counts_present_and_missing_files_without_names(site_env, uploads):
    from sidecar.store import DbSettings, NewJob
    from tests.conftest import TEST_DB_HOST, TEST_DB_PASSWORD, TEST_DB_USER
    store = Store(Database(DbSettings.parse(TEST_DB_HOST, TEST_DB_USER, TEST_DB_PASSWORD,
                                            site_env["WORDPRESS_DB_NAME"])), PREFIX)
    folder = uploads / "wpforms" / "12-abc"
    (folder / "Scan-of-Jane-Doe.pdf").write_bytes(b"%PDF-1.4 x")
    for n, name in enumerate(["Scan-of-Jane-Doe.pdf", "Missing-John-Roe.pdf"]):
        snapshot = json.dumps({"version": 1, "form_id": 12, "entry_id": n, "fields": {
            "1": {"id": 1, "type": "text", "name": "Name", "value": "x"}},
            "files": [{"field_id": "4", "position": 0, "name": name,
                       "relative": f"wpforms/12-abc/{name}", "size": 10}]})
        store.enqueue(NewJob(f"wpforms:12:{n}", 12, n, snapshot=snapshot))
    store.db.close()
    proc = formrelay(site_env, "doctor")
    line = lines_of(proc)["uploads"]
    assert line.startswith("WARN uploads:") and "1 of 2 files" in line
    assert "Jane" not in proc.stdout and "John" not in proc.stdout


def status_json(env: dict[str, str]) -> tuple[int, dict]:
    proc = formrelay(env, "status", "--json")
    return proc.returncode, json.loads(proc.stdout)


def test_status_json_and_its_nagios_exit_follow_the_delivery_state(site_env):
    from sidecar.breaker import Policy
    from sidecar.pause import Pause
    from sidecar.store import DbSettings
    from tests.conftest import TEST_DB_HOST, TEST_DB_PASSWORD, TEST_DB_USER
    from tests.integration.test_admin_api import make_job
    store = Store(Database(DbSettings.parse(TEST_DB_HOST, TEST_DB_USER, TEST_DB_PASSWORD,
                                            site_env["WORDPRESS_DB_NAME"])), PREFIX)
    code, got = status_json(site_env)
    assert (code, got["severity"]) == (2, "CRITICAL")  # no worker at all
    assert [p["kind"] for p in got["problems"]] == ["no_worker"]
    store.heartbeat("w:1:a", "w", 1, "0.1.0", "thread", 4, beat_seconds=15)
    make_job(store, 1, "pending")
    code, got = status_json(site_env)
    assert (code, got["severity"], got["problems"]) == (0, "OK", [])
    assert got["counts"] == {"pending": 1} and got["delivery"]["waiting"] == 1
    assert got["workers"][0]["id"] == "w:1:a" and got["workers"][0]["silent"] is False
    assert set(got) >= {"counts", "due", "delivery", "workers", "problems", "severity"}
    Pause(store, Policy()).failed("HTTP 503 server", probe=False)
    for _ in range(10):
        Pause(store, Policy()).failed("HTTP 503 server", probe=False)
    code, got = status_json(site_env)
    assert (code, got["severity"]) == (1, "WARNING") and got["delivery"]["paused"] is True
    assert [p["kind"] for p in got["problems"]] == ["paused"]
    Pause(store, Policy()).resume("test")
    make_job(store, 2, "failed")
    code, got = status_json(site_env)
    assert (code, got["severity"]) == (2, "CRITICAL")
    assert [p["kind"] for p in got["problems"]] == ["failed"]
    text = formrelay(site_env, "status")
    assert text.returncode == 2 and "state: CRITICAL" in text.stdout
    assert "problem: CRITICAL failed: 1 job(s) failed permanently" in text.stdout
    store.db.close()
