"""`formrelay backfill`: jobs for stored entries that have none, once, and only deliverable ones."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from sidecar.backfill import backfill
from sidecar.states import Status
from sidecar.store import NewJob
from tests.conftest import PREFIX
from tests.integration.delivery import text_fields

pytestmark = pytest.mark.db


def add_form(store, form_id: int, status: str = "publish") -> None:
    with store.db.transaction() as cur:
        cur.execute(f"INSERT INTO {PREFIX}posts (ID, post_type, post_status, post_title,"
                    " post_content, post_date) VALUES (%s, 'wpforms', %s, 'Intake', '{}',"
                    " UTC_TIMESTAMP())", (form_id, status))


def add_entry(store, entry_id: int, form_id: int, status: str = "", date: str | None = None,
              imported: bool = False) -> None:
    with store.db.transaction() as cur:
        cur.execute(f"INSERT INTO {PREFIX}wpforms_entries (entry_id, form_id, post_id, user_id,"
                    " status, type, fields, meta, date, date_modified, ip_address, user_agent,"
                    " user_uuid) VALUES (%s, %s, 0, 0, %s, '', %s, '',"
                    " COALESCE(%s, UTC_TIMESTAMP()), UTC_TIMESTAMP(), '', '', '')",
                    (entry_id, form_id, status, json.dumps(text_fields()), date))
        if imported:
            cur.execute(f"INSERT INTO {PREFIX}wpforms_entry_meta (entry_id, form_id, user_id,"
                        " status, type, data, date) VALUES (%s, %s, 0, '', 'backup_id', '7',"
                        " UTC_TIMESTAMP())", (entry_id, form_id))


@pytest.fixture
def site(wpforms_tables):
    store = wpforms_tables
    add_form(store, 12)
    add_form(store, 14)
    add_form(store, 13, status="draft")
    for entry_id in (1, 2, 3):
        add_entry(store, entry_id, 12)
    add_entry(store, 4, 12, "spam")
    add_entry(store, 5, 12, "trash")
    add_entry(store, 6, 12, "partial")
    add_entry(store, 7, 13)  # a draft form's entry
    add_entry(store, 8, 14, date="2020-01-01 00:00:00")
    add_entry(store, 9, 14, imported=True)
    return store


def refs(store) -> set[str]:
    with store.db.transaction() as cur:
        cur.execute(f"SELECT reference FROM {PREFIX}formrelay_jobs")
        return {r["reference"] for r in cur.fetchall()}


def test_backfill_creates_one_job_per_deliverable_entry_and_is_idempotent(site):
    rung: list[tuple[int, int]] = []
    first = backfill(site, lambda job_id, priority: rung.append((job_id, priority)))
    assert (first.found, first.created) == (5, 5)
    assert refs(site) == {"wpforms:12:1", "wpforms:12:2", "wpforms:12:3", "wpforms:14:8",
                          "wpforms:14:9"}
    assert len(rung) == 5
    again = backfill(site, lambda *_: rung.append((0, 0)))
    assert (again.found, again.created) == (0, 0) and len(rung) == 5


def test_backfill_filters_and_dry_run(site):
    dry = backfill(site, None, form_id=14, dry_run=True)
    assert (dry.found, dry.created, sorted(dry.entry_ids)) == (2, 0, [8, 9])
    assert refs(site) == set()
    recent = backfill(site, None, form_id=14, since=datetime(2025, 1, 1))
    assert recent.entry_ids == [9]
    skipped = backfill(site, None, skip_imported=True, dry_run=True)
    assert 9 not in skipped.entry_ids and 8 in skipped.entry_ids


def test_backfill_skips_entries_that_already_have_a_job(site):
    site.enqueue(NewJob("wpforms:12:2", 12, 2, "{}"))
    result = backfill(site, None)
    assert 2 not in result.entry_ids and result.created == 4


def test_a_backfilled_job_is_delivered_from_the_wpforms_entry(site, delivery, sim):
    backfill(site, delivery.doorbell.ring_record, form_id=12)
    delivery.drain()
    with site.db.transaction() as cur:
        cur.execute(f"SELECT id, entry_id, status, source, snapshot FROM {PREFIX}formrelay_jobs"
                    " ORDER BY id")
        rows = cur.fetchall()
    assert [(r["status"], r["source"], r["snapshot"]) for r in rows] == [
        (Status.COMPLETED, "backfill", None)] * 3
    assert sim.stats()["records_created"] == 3
    for row in rows:
        sent = [r for r in site.job_log(row["id"]) if r["event"] == "record.sent"]
        assert f"from WPForms entry {row['entry_id']} (snapshot is empty)" in sent[0]["message"]


def env_for(database: str, data_dir) -> dict[str, str]:
    import os

    from tests.conftest import QUEUE_SECRET, TEST_DB_HOST, TEST_DB_PASSWORD, TEST_DB_USER
    return {"PATH": os.environ["PATH"], "WORDPRESS_DB_HOST": TEST_DB_HOST,
            "FORMRELAY_SHARED_SECRET": QUEUE_SECRET,
            "WORDPRESS_DB_USER": TEST_DB_USER, "WORDPRESS_DB_PASSWORD": TEST_DB_PASSWORD,
            "WORDPRESS_DB_NAME": database, "FORMRELAY_DATA_DIR": str(data_dir)}


def test_the_command_counts_creates_and_rings(site, migrated_db, tmp_path):
    import subprocess

    from tests.integration.test_cli import formrelay_bin
    env = env_for(migrated_db.database, tmp_path)
    dry = subprocess.run([formrelay_bin(), "backfill", "--dry-run"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        "5 stored entries without a job (form 12: 3, form 14: 2)",
        "dry run: no jobs created; entry ids: 1 2 3 8 9"]
    real = subprocess.run([formrelay_bin(), "backfill", "--form", "12"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert real.returncode == 0 and real.stdout.splitlines()[-1] == "created 3 jobs"
    assert (tmp_path / "queue.sqlite3").exists()  # the doorbell rang in the embedded queue


def test_the_command_refuses_without_wpforms_tables(scratch_dbs, tmp_path):
    import subprocess

    from sidecar.store import Database
    from sidecar.store.schema import migrate
    from tests.integration.test_cli import formrelay_bin

    settings = scratch_dbs.create()
    migrate(Database(settings), PREFIX)
    env = env_for(settings.database, tmp_path)
    proc = subprocess.run([formrelay_bin(), "backfill", "--dry-run"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("formrelay backfill: WPForms entry tables do not exist"
                                   " (WPForms Lite stores no entries)")
    bad = subprocess.run([formrelay_bin(), "backfill", "--since", "yesterday"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "must be a date" in bad.stderr


# ---- the plugin's delivery settings decide (sidecar.delivery_settings) ----------------------

def publish(store, forms: object = "all", active: bool = True,
            since: str = "2000-01-01 00:00:00.000", form_settings: dict | None = None) -> None:
    """What FormRelay Bridge writes (tests/fixtures/delivery_settings/README.md)."""
    store.set_meta("delivery_settings", json.dumps({
        "version": 1, "active": active, "active_since": since, "forms": forms,
        "form_settings": form_settings or {}}))


@pytest.fixture
def bridge_option(store):
    """WordPress' options table with FormRelay Bridge's settings row: the plugin is set up."""
    with store.db.transaction() as cur:
        cur.execute(f"CREATE TABLE {PREFIX}options (option_id bigint unsigned NOT NULL"
                    " AUTO_INCREMENT PRIMARY KEY, option_name varchar(191) NOT NULL,"
                    " option_value longtext NOT NULL, autoload varchar(20) NOT NULL)")
        cur.execute(f"INSERT INTO {PREFIX}options (option_name, option_value, autoload)"
                    " VALUES ('formrelay_bridge_settings', 'a:0:{}', 'yes')")
    yield store
    with store.db.transaction() as cur:
        cur.execute(f"DROP TABLE {PREFIX}options")


def priorities(store) -> dict[str, int]:
    with store.db.transaction() as cur:
        cur.execute(f"SELECT reference, priority FROM {PREFIX}formrelay_jobs")
        return {r["reference"]: int(r["priority"]) for r in cur.fetchall()}


def test_backfill_queues_only_delivered_forms_with_their_priority(site):
    from sidecar import delivery_settings

    publish(site, forms=[12], form_settings={"12": {"template": "i.j2", "priority": 3}})
    rung: list[tuple[int, int]] = []
    result = backfill(site, lambda j, p: rung.append((j, p)),
                      settings=delivery_settings.load(site), count_skipped=True)
    assert (result.found, result.created) == (3, 3)
    assert priorities(site) == {"wpforms:12:1": 3, "wpforms:12:2": 3, "wpforms:12:3": 3}
    assert [p for _, p in rung] == [3, 3, 3]
    assert result.skipped == {14: 2}
    assert result.reasons == {14: "form 14 is not among the delivered forms (12)"}


def test_backfill_gives_each_job_its_forms_partner(site):
    """A job the sidecar creates goes to the partner the plugin's settings name for its
    form, as capture's would ('' for a form naming none: the default partner)."""
    from sidecar import delivery_settings

    publish(site, forms=[12, 14], form_settings={
        "12": {"template": None, "priority": 10, "partner": "ehr"}})
    backfill(site, None, settings=delivery_settings.load(site))
    with site.db.transaction() as cur:
        cur.execute(f"SELECT form_id, partner FROM {PREFIX}formrelay_jobs")
        found = {(int(r["form_id"]), r["partner"]) for r in cur.fetchall()}
    assert found == {(12, "ehr"), (14, "")}


def test_backfill_refuses_when_deactivated_or_unpublished(site, bridge_option):
    from sidecar import delivery_settings
    from sidecar.backfill import NotDelivering

    unpublished = delivery_settings.load(site)
    assert unpublished.source == "unknown"
    with pytest.raises(NotDelivering, match="has not published"):
        backfill(site, None, settings=unpublished)
    publish(site, active=False)
    with pytest.raises(NotDelivering, match="deactivated"):
        backfill(site, None, settings=delivery_settings.load(site))
    assert refs(site) == set()


def test_the_command_says_what_it_skipped_and_refuses_when_deactivated(site, migrated_db,
                                                                       tmp_path):
    import subprocess

    from tests.integration.test_cli import formrelay_bin
    env = env_for(migrated_db.database, tmp_path)
    publish(site, forms=[12], form_settings={"12": {"template": None, "priority": 4}})
    done = subprocess.run([formrelay_bin(), "backfill"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert [line for line in done.stdout.splitlines() if " INFO " not in line] == [
        "3 stored entries without a job (form 12: 3)",
        "skipped 2 entries of form 14: form 14 is not among the delivered forms (12)",
        "created 3 jobs"]
    assert set(priorities(site).values()) == {4}
    status = subprocess.run([formrelay_bin(), "status"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert "delivered forms: forms 12 (the plugin's settings, active since" in status.stdout
    assert "  form 12: template default, priority 4" in status.stdout

    publish(site, forms="all", active=False)
    off = subprocess.run([formrelay_bin(), "backfill", "--form", "14"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert off.returncode == 1 and off.stdout == ""
    assert off.stderr.strip() == ("formrelay backfill: refused, no job created: the FormRelay"
                                  " Bridge plugin is deactivated (3 queued jobs still finish)")
    assert not any(r.startswith("wpforms:14:") for r in refs(site))
    status = subprocess.run([formrelay_bin(), "status"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert ("delivered forms: NONE: the FormRelay Bridge plugin is deactivated: no new jobs"
            " are created; 3 queued jobs finish") in status.stdout
