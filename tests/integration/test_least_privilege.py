"""The sidecar as its least-privilege database user, on a real MariaDB: exactly the GRANTs
`formrelay migrate --print-grants` prints (migrations as root), then `web`, `backfill`,
`worker`, `status` and `doctor` as that user; `--create-user` twice; an extra grant is a
doctor WARN, a missing one a FAIL; a WPForms Lite database (no entry tables)."""

from __future__ import annotations

import secrets
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mysql.connector
import pytest
import requests

from devstack.samples import write_pdf
from sidecar.states import Status
from sidecar.store import Database, NewJob, Store
from tests.conftest import PREFIX, QUEUE_SECRET, add_wp_options, wait_until
from tests.integration.delivery import WPFORMS_DDL, snapshot, text_fields
from tests.integration.processes import run_worker_until, status, stop, worker_env
from tests.integration.test_backfill import add_entry, add_form
from tests.integration.test_cli import formrelay, formrelay_bin, free_port
from tests.integration.test_doctor import lines_of
from tests.integration.test_notify import post_notify

pytestmark = [pytest.mark.db, pytest.mark.sim]


@dataclass
class Site:
    root_env: dict[str, str]  # the admin account (root): migrate, --create-user
    store: Store  # as root: what the plugin and WordPress write
    user: str
    password: str

    @property
    def database(self) -> str:
        return self.root_env["WORDPRESS_DB_NAME"]

    def env(self, **more: str) -> dict[str, str]:
        """The sidecar's environment as the least-privilege user."""
        return self.root_env | {"WORDPRESS_DB_USER": self.user,
                                "WORDPRESS_DB_PASSWORD": self.password} | more

    def root(self, *statements: str) -> None:
        with self.store.db.transaction() as cur:
            for statement in statements:
                cur.execute(statement)

    def grants(self) -> set[str]:
        with self.store.db.transaction() as cur:
            cur.execute(f"SHOW GRANTS FOR '{self.user}'@'%'")
            return {str(next(iter(r.values()))) for r in cur.fetchall()
                    if "USAGE ON *.*" not in str(next(iter(r.values())))}


def make_site(scratch_dbs, sim, uploads: Path, tmp_path: Path, wpforms: bool) -> Iterator[Site]:
    settings = scratch_dbs.create()
    store = Store(Database(settings), PREFIX)
    add_wp_options(store.db)
    if wpforms:  # WPForms Pro's entry tables, WordPress' posts and postmeta
        with store.db.transaction() as cur:
            for statement in filter(str.strip, WPFORMS_DDL.replace("{p}", PREFIX).split(";")):
                cur.execute(statement)
    root_env = worker_env(settings.database, sim.url, uploads, tmp_path,
                          FORMRELAY_QUEUE_NAME=f"fr-lp-{secrets.token_hex(4)}",
                          FORMRELAY_LISTEN=f"127.0.0.1:{free_port()}")
    migrated = formrelay(root_env, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    site = Site(root_env, store, f"fr_lp_{secrets.token_hex(4)}", secrets.token_urlsafe(18))
    try:
        yield site
    finally:
        site.root(f"DROP USER IF EXISTS '{site.user}'@'%'")
        store.db.close()


@pytest.fixture
def pro_site(scratch_dbs, sim, uploads, tmp_path) -> Iterator[Site]:
    yield from make_site(scratch_dbs, sim, uploads, tmp_path, wpforms=True)


@pytest.fixture
def lite_site(scratch_dbs, sim, uploads, tmp_path) -> Iterator[Site]:
    yield from make_site(scratch_dbs, sim, uploads, tmp_path, wpforms=False)


def printed(site: Site) -> list[str]:
    proc = formrelay(site.root_env, "migrate", "--print-grants", site.user)
    assert proc.returncode == 0, proc.stderr
    return [line.rstrip(";") for line in proc.stdout.splitlines() if not line.startswith("--")]


def create_user(site: Site, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    secret = tmp_path / "db_password"
    secret.write_text(site.password + "\n")
    proc = formrelay(site.root_env, "migrate", "--create-user", site.user,
                     "--password-file", str(secret))
    assert proc.returncode == 0, proc.stderr
    assert site.password not in proc.stdout + proc.stderr
    return proc


def privileges(site: Site) -> str:
    proc = formrelay(site.env(), "doctor")
    assert site.password not in proc.stdout + proc.stderr
    return lines_of(proc)["privileges"]


@pytest.mark.slow
def test_the_sidecar_delivers_as_the_user_with_exactly_the_printed_grants(pro_site, sim,
                                                                         uploads):
    site = pro_site
    statements = printed(site)
    site.root(f"CREATE USER '{site.user}'@'%' IDENTIFIED BY '{site.password}'", *statements)
    quoted = {s.replace(f"'{site.user}'@'%'", f"`{site.user}`@`%`") for s in statements}
    assert site.grants() == quoted  # the server holds exactly what was printed

    # the plugin's part, as WordPress' account: a captured job; a stored WPForms Pro entry
    docs = [write_pdf(uploads / "wpforms" / "12-abc" / "referral.pdf", 3000)]
    job, _ = site.store.enqueue(NewJob("wpforms:12:1", 12, 1,
                                       snapshot(12, 1, text_fields(), uploads, docs)))
    add_form(site.store, 12)
    add_entry(site.store, 1, 12)
    add_entry(site.store, 2, 12)  # its capture was lost: backfill finds it

    web = subprocess.Popen([formrelay_bin(), "web"], env=site.env(), text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = f"http://{site.env()['FORMRELAY_LISTEN']}"
        wait_until(lambda: web.poll() is None and _ready(url), 30, "formrelay web's /readyz")
        body = f'{{"job_id": {job.id}}}'.encode()
        assert post_notify(url, body, secret=QUEUE_SECRET).status_code == 202
        backfilled = formrelay(site.env(), "backfill")
        assert backfilled.returncode == 0, backfilled.stderr
        assert "created 1 jobs" in backfilled.stdout
        output = run_worker_until(site.env(), lambda: _statuses(site) == {Status.COMPLETED},
                                  "both jobs delivered by the limited user's worker")
        web.send_signal(signal.SIGINT)
        assert web.wait(timeout=30) == 0
    finally:
        output_web = stop(web)
    assert sim.stats()["records_created"] == 2 and sim.stats()["documents_created"] == 1
    for text in (output, output_web):
        assert "denied" not in text.lower() and "1142" not in text and "Traceback" not in text
    assert "jobs: completed 2" in status(site.env())
    doctor = lines_of(formrelay(site.env(), "doctor"))
    assert doctor["privileges"].startswith("OK   privileges: exactly what the sidecar needs")
    assert doctor["wpforms"].startswith("OK   wpforms: WPForms Pro entry tables present")
    assert doctor["schema"].startswith("OK") and doctor["wordpress"].startswith("OK")


def _ready(url: str) -> bool:
    try:
        return requests.get(url + "/readyz", timeout=1).ok
    except requests.RequestException:
        return False


def _statuses(site: Site) -> set[str]:
    with site.store.db.transaction() as cur:
        cur.execute(f"SELECT status FROM {PREFIX}formrelay_jobs")
        return {str(r["status"]) for r in cur.fetchall()}


def test_create_user_twice_then_an_extra_grant_warns_and_a_missing_one_fails(pro_site,
                                                                            tmp_path):
    site = pro_site
    first = create_user(site, tmp_path)
    assert f"user '{site.user}'@'%': created" in first.stdout
    granted = site.grants()
    second = create_user(site, tmp_path)
    assert "existed; password unchanged" in second.stdout and "note:" not in second.stdout
    assert site.grants() == granted == {
        s.replace(f"'{site.user}'@'%'", f"`{site.user}`@`%`") for s in printed(site)}
    assert privileges(site).startswith("OK   privileges: exactly what the sidecar needs")

    db = f"`{site.database}`"
    site.root(f"CREATE TABLE {PREFIX}users (ID BIGINT PRIMARY KEY)",
              f"GRANT INSERT ON {db}.`{PREFIX}users` TO '{site.user}'@'%'")
    line = privileges(site)
    assert line.startswith("WARN privileges: the user has more than it needs: INSERT on wp_users")
    assert "least-privilege user is advised" in line and "--print-grants" in line
    third = create_user(site, tmp_path)  # it grants, it does not revoke: it says so
    assert "not revoked here: INSERT on wp_users" in third.stdout

    site.root(f"REVOKE INSERT ON {db}.`{PREFIX}users` FROM '{site.user}'@'%'",
              f"REVOKE DELETE ON {db}.`{PREFIX}formrelay_log` FROM '{site.user}'@'%'")
    line = privileges(site)
    assert line.startswith("FAIL privileges: the user lacks DELETE on wp_formrelay_log Fix:")
    create_user(site, tmp_path)  # puts it back
    assert privileges(site).startswith("OK   privileges:")


def test_a_changed_password_file_sets_the_password(pro_site, tmp_path):
    site = pro_site
    create_user(site, tmp_path)
    site.password = f"it's a \\ \"quoted\" `pass` %s {secrets.token_hex(4)}"  # escaped, bound
    again = create_user(site, tmp_path)
    assert "existed; its password was set from the file" in again.stdout
    assert formrelay(site.env(), "status").returncode in (0, 1, 2)  # it logs in with the new one


def test_an_account_that_may_not_create_users_is_one_line_without_the_password(pro_site,
                                                                               tmp_path):
    site = pro_site
    create_user(site, tmp_path)
    secret = tmp_path / "other"
    secret.write_text("another-password-123")
    proc = formrelay(site.env(), "migrate", "--create-user", "fr_lp_other", "--password-file",
                     str(secret))
    assert proc.returncode == 2 and proc.stdout.count("\n") <= 1  # "schema is up to date"
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "needs an admin account" in proc.stderr and "another-password" not in proc.stderr


def test_wpforms_lite_absent_tables_are_granted_ahead_and_a_denied_one_reads_as_none(
        lite_site, tmp_path):
    site = lite_site
    made = create_user(site, tmp_path)
    with pytest.raises(mysql.connector.errors.ProgrammingError) as plain:  # why --create-user
        site.root(f"GRANT SELECT ON `{site.database}`.`{PREFIX}wpforms_entries`"  # adds CREATE
                  f" TO '{site.user}'@'%'")
    assert plain.value.errno == 1146  # the table does not exist
    assert ("(4 not there yet: wp_posts, wp_postmeta, wp_wpforms_entries, wp_wpforms_entry_meta)"
            in made.stdout)
    assert not any("CREATE" in g for g in site.grants())  # granted with CREATE, revoked at once
    assert privileges(site).startswith("OK   privileges:")
    lite = formrelay(site.env(), "backfill")
    assert lite.returncode == 2
    assert lite.stderr.strip() == ("formrelay backfill: WPForms entry tables do not exist"
                                   " (WPForms Lite stores no entries)")

    site.root(f"REVOKE SELECT ON `{site.database}`.`{PREFIX}wpforms_entries`"
              f" FROM '{site.user}'@'%'")  # as if pasted without the WPForms lines
    denied = formrelay(site.env(), "backfill")
    assert denied.returncode == 2 and "do not exist or this user may not read them" in (
        denied.stderr)
    line = privileges(site)
    assert line.startswith("WARN privileges: the user cannot SELECT wp_wpforms_entries")
    create_user(site, tmp_path)

    with site.store.db.transaction() as cur:  # an upgrade to WPForms Pro makes its tables
        for statement in filter(str.strip, WPFORMS_DDL.replace("{p}", PREFIX).split(";")):
            cur.execute(statement)
    pro = formrelay(site.env(), "backfill")
    assert pro.returncode == 0, pro.stderr
    assert "0 stored entries without a job" in pro.stdout


def test_doctor_and_status_as_the_user_read_no_information_schema_they_may_not(lite_site,
                                                                              tmp_path):
    site = lite_site
    create_user(site, tmp_path)
    proc = formrelay(site.env(), "status", "--json")
    assert proc.returncode in (0, 1, 2), proc.stdout + proc.stderr
    assert '"version": ' in proc.stdout
    lines = lines_of(formrelay(site.env(), "doctor", "--quick"))
    assert all(lines[c].startswith("OK") for c in ("database", "wordpress", "schema"))


def test_a_host_pattern_with_percent_s_stays_the_host(pro_site, tmp_path):
    """The connector substitutes `%s` anywhere in a statement with parameters: the account
    is bound as parameters too, so the password can never land in the host."""
    site = pro_site
    secret = tmp_path / "db_password"
    secret.write_text(site.password)
    try:
        proc = formrelay(site.root_env, "migrate", "--create-user", site.user, "--host", "1%s",
                         "--password-file", str(secret))
        assert proc.returncode == 0, proc.stderr
        assert f"user '{site.user}'@'1%s': created" in proc.stdout
        with site.store.db.transaction() as cur:
            cur.execute(f"SHOW GRANTS FOR '{site.user}'@'1%s'")
            grants = [str(next(iter(r.values()))) for r in cur.fetchall()]
        assert len(grants) == 1 + len(printed(site))
        assert all(f"`{site.user}`@`1%s`" in g and site.password not in g for g in grants)
    finally:
        site.root(f"DROP USER IF EXISTS '{site.user}'@'1%s'")


def test_a_database_name_with_a_backtick_and_to_is_quoted(scratch_dbs, sim, uploads, tmp_path):
    name = f"fr_test_{secrets.token_hex(4)}` TO x"
    server = Database(scratch_dbs.settings(""))
    conn = server.connect(database=False)
    conn.cursor().execute(f"CREATE DATABASE `{name.replace('`', '``')}`")
    user, password = f"fr_lp_{secrets.token_hex(4)}", secrets.token_urlsafe(18)
    try:
        add_wp_options(Database(scratch_dbs.settings(name)))
        root_env = worker_env(name, sim.url, uploads, tmp_path)
        secret = tmp_path / "db_password"
        secret.write_text(password)
        made = formrelay(root_env, "migrate", "--create-user", user, "--password-file",
                         str(secret))
        assert made.returncode == 0, made.stderr
        assert "migrated" in made.stdout and "granted SELECT, INSERT" in made.stdout
        line = lines_of(formrelay(root_env | {"WORDPRESS_DB_USER": user,
                                              "WORDPRESS_DB_PASSWORD": password}, "doctor"))
        assert line["privileges"].startswith("OK   privileges: exactly what the sidecar needs")
    finally:
        cur = conn.cursor()
        cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        cur.execute(f"DROP DATABASE IF EXISTS `{name.replace('`', '``')}`")
        conn.close()
