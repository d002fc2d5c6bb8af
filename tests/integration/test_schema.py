"""Migrations and the start-up schema check, and the EXPLAIN of the hot queries."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import pytest

from sidecar.errors import SchemaError
from sidecar.store import Database, Store
from sidecar.store.schema import (
    SCHEMA_DIR,
    check,
    current_version,
    latest_version,
    load_migrations,
    migrate,
    split_statements,
)
from tests.conftest import PREFIX, add_wp_options, fill_history

pytestmark = pytest.mark.db


def migrate_in_process(settings, prefix):  # a top-level function for spawned processes
    db = Database(settings)
    try:
        return migrate(db, prefix)
    finally:
        db.close()


@pytest.mark.unit
def test_statements_split_on_semicolons_at_line_end_and_skip_comments():
    sql = ("-- a comment; with a semicolon\nCREATE TABLE a (x INT);\n\n"
           "INSERT INTO a VALUES (1) ;  \n")
    assert split_statements(sql) == ("CREATE TABLE a (x INT)", "INSERT INTO a VALUES (1)")


@pytest.mark.unit
def test_the_migration_files_are_the_plugins_files():
    assert SCHEMA_DIR.resolve().parts[-2:] == ("wp_bridge_plugin", "schema")
    migrations = load_migrations("wp_")
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert all("{prefix}" not in s for m in migrations for s in m.statements)


@pytest.mark.unit
def test_only_four_digit_named_files_count_and_versions_are_unique(tmp_path):
    (tmp_path / "0001_first.sql").write_text("SELECT 1;\n")
    (tmp_path / "0002.sql").write_text("SELECT 2;\n")
    (tmp_path / "12_short.sql").write_text("SELECT 3;\n")
    assert [m.version for m in load_migrations("wp_", tmp_path)] == [1]
    (tmp_path / "0001_again.sql").write_text("SELECT 4;\n")
    with pytest.raises(SchemaError, match="two schema files have version 1"):
        load_migrations("wp_", tmp_path)


def all_versions() -> list[int]:
    return [m.version for m in load_migrations(PREFIX)]


def test_migrate_is_idempotent_and_check_passes(scratch_dbs):
    db = Database(scratch_dbs.create())
    add_wp_options(db)
    with pytest.raises(SchemaError, match=r"missing.*run `formrelay migrate`"):
        check(db, PREFIX)
    assert migrate(db, PREFIX) == all_versions()
    assert migrate(db, PREFIX) == []
    assert check(db, PREFIX) == latest_version()
    with db.transaction() as cur:
        cur.execute("SHOW TABLES")
        tables = {next(iter(r.values())) for r in cur.fetchall()}
    assert {f"{PREFIX}formrelay_{t}"
            for t in ("jobs", "documents", "log", "meta", "workers")} <= tables


def test_check_names_the_command_for_an_old_schema_and_refuses_a_newer_one(scratch_dbs):
    db = Database(scratch_dbs.create())
    add_wp_options(db)
    migrate(db, PREFIX)
    with db.transaction() as cur:
        cur.execute(f"UPDATE {PREFIX}formrelay_meta SET value = '0' WHERE name = 'schema_version'")
    with pytest.raises(SchemaError, match=r"missing.*formrelay migrate"):
        check(db, PREFIX)
    with db.transaction() as cur:
        cur.execute(f"UPDATE {PREFIX}formrelay_meta SET value = %s WHERE name = 'schema_version'",
                    (str(latest_version() + 1),))
    with pytest.raises(SchemaError, match="newer than this sidecar"):
        check(db, PREFIX)
    with pytest.raises(SchemaError, match="upgrade the sidecar"):
        migrate(db, PREFIX)


def test_an_older_schema_is_upgraded_by_the_next_migration(scratch_dbs, tmp_path):
    db = Database(scratch_dbs.create())
    for path in SCHEMA_DIR.glob("*.sql"):
        (tmp_path / path.name).write_text(path.read_text())
    migrate(db, PREFIX, tmp_path)
    (tmp_path / "9999_probe.sql").write_text(
        "-- a later migration\nCREATE TABLE {prefix}formrelay_probe (id INT PRIMARY KEY);\n")
    have = latest_version()
    with pytest.raises(SchemaError, match=f"version {have}, this sidecar needs 9999: run"):
        check(db, PREFIX, tmp_path)
    assert migrate(db, PREFIX, tmp_path) == [9999]
    assert current_version(db, PREFIX) == 9999


def test_concurrent_migrations_apply_each_file_once(scratch_dbs):
    settings = scratch_dbs.create()
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(3, mp_context=ctx) as pool:
        results = list(pool.map(migrate_in_process, [settings] * 3, [PREFIX] * 3))
    assert sorted(map(tuple, results)) == [(), (), tuple(all_versions())]


def test_tables_use_another_prefix(scratch_dbs):
    db = Database(scratch_dbs.create())
    migrate(db, "site2_")
    assert check(db, "site2_") == latest_version()
    with pytest.raises(SchemaError):
        check(db, PREFIX)


# ---- EXPLAIN: the queries that run all the time must use their index --------------------

@pytest.fixture(scope="module")
def history(scratch_dbs):
    """20,000 jobs, mostly completed, as in a site that has run for a while."""
    db = Database(scratch_dbs.create())
    migrate(db, PREFIX)
    # Also the columns the hot queries below filter on (claim, leases, retention).
    # Partners: most jobs go to the default ("intake"), one in ten to "ehr"; the pending
    # ones are not claimed yet ('').
    fill_history(db, priority="10", next_attempt_at="UTC_TIMESTAMP(3)",
                 completed_at="UTC_TIMESTAMP(3)",
                 lease_expires_at="UTC_TIMESTAMP(3) + INTERVAL 5 MINUTE",
                 partner="IF(seq % 100 = 1, '', IF(seq % 10 = 3, 'ehr', 'intake'))")
    yield db
    db.close()


def explain(db: Database, query: str) -> list[dict]:
    with db.transaction() as cur:
        cur.execute("EXPLAIN " + query.replace("{p}", PREFIX))
        return list(cur.fetchall())


@pytest.mark.parametrize("name,query,index", [
    ("claim", "SELECT id FROM {p}formrelay_jobs FORCE INDEX (claim) WHERE due_priority IS NOT NULL"
     " AND next_attempt_at <= UTC_TIMESTAMP(3) ORDER BY due_priority, id LIMIT 10", "claim"),
    ("expired leases", "SELECT id FROM {p}formrelay_jobs WHERE status = 'processing'"
     " AND lease_expires_at < UTC_TIMESTAMP(3) LIMIT 500", "lease"),
    ("retention", "SELECT id FROM {p}formrelay_jobs WHERE status = 'completed'"
     " AND completed_at < UTC_TIMESTAMP(3) - INTERVAL 30 DAY LIMIT 500", "completed"),
    ("status view", "SELECT id FROM {p}formrelay_jobs WHERE status = 'retrying'"
     " ORDER BY created_at DESC LIMIT 20", "status_created"),
    ("form filter", "SELECT id FROM {p}formrelay_jobs WHERE form_id = 3"
     " ORDER BY created_at DESC LIMIT 20", "form_created"),
    ("entry search", "SELECT id FROM {p}formrelay_jobs WHERE entry_id = 1234", "entry"),
    ("partner id search", "SELECT id FROM {p}formrelay_jobs WHERE partner_record_id = 'P-9'",
     "partner_record"),
    ("job timeline", "SELECT id FROM {p}formrelay_log WHERE job_id = 5 ORDER BY id", "job"),
    ("partner status view", "SELECT id FROM {p}formrelay_jobs WHERE partner = 'ehr'"
     " AND status = 'completed' ORDER BY created_at DESC LIMIT 20", "partner_status"),
])
def test_hot_queries_use_their_index(history, name, query, index):
    (plan,) = explain(history, query)
    assert plan["key"] == index, plan
    assert "filesort" not in (plan["Extra"] or ""), plan
    assert plan["type"] in ("range", "ref", "const", "index_merge"), plan


@pytest.mark.parametrize("partner", ["j.partner = 'ehr'", "j.partner IN ('intake', '')"])
def test_a_partners_status_counts_read_its_index_alone(history, partner):
    """The jobs list's counts with a partner filter (AdminStore.job_status_counts; the
    default partner's filter also takes ''): a range of `partner_status` (migration 10),
    read without the rows, never the table."""
    (plan,) = explain(history, "SELECT j.status, COUNT(*) AS n FROM {p}formrelay_jobs j"
                               f" WHERE {partner} GROUP BY j.status")
    assert plan["key"] == "partner_status", plan
    assert plan["type"] in ("range", "ref"), plan
    assert "Using index" in (plan["Extra"] or ""), plan


def test_a_partners_page_reads_its_index_in_id_order(history):
    """The jobs list's page ids with a partner filter in its default order (newest first):
    the `partner` index (partner, id) read backwards, no sort, LIMIT stops at the page."""
    (plan,) = explain(history, "SELECT j.id FROM {p}formrelay_jobs j WHERE j.partner = 'ehr'"
                               " ORDER BY j.id DESC LIMIT 20")
    assert (plan["key"], plan["type"]) == ("partner", "ref"), plan
    assert "filesort" not in (plan["Extra"] or ""), plan


def test_the_default_partners_page_is_no_table_scan(history):
    """With the jobs not yet claimed ('') the default partner's filter is two ranges: the
    primary key walked from the newest (it holds most jobs, so LIMIT stops early) or those
    ranges; never every row read and sorted."""
    (plan,) = explain(history, "SELECT j.id FROM {p}formrelay_jobs j"
                               " WHERE j.partner IN ('intake', '') ORDER BY j.id DESC LIMIT 20")
    assert plan["type"] != "ALL", plan
    assert plan["key"] in ("PRIMARY", "partner", "partner_status"), plan


def test_the_claim_reads_only_the_queue(history):
    """The optimizer's row estimate for a claim follows the due rows, not the 20,000."""
    (plan,) = explain(history, "SELECT id FROM {p}formrelay_jobs FORCE INDEX (claim)"
                               " WHERE due_priority IS NOT NULL ORDER BY due_priority, id")
    assert int(plan["rows"]) <= 1000, plan
    assert Store(history, PREFIX).count_due() == 400


def test_a_wrong_prefix_is_named_never_answered_with_migrate(scratch_dbs):
    """No `{prefix}options`: the prefix or the database is wrong; the prefixes found are listed."""
    db = Database(scratch_dbs.create())
    add_wp_options(db, "site2_")
    with pytest.raises(SchemaError) as refused:
        check(db, PREFIX)
    message = str(refused.value)
    assert "wp_options does not exist" in message and "WORDPRESS_TABLE_PREFIX" in message
    assert "'site2_'" in message and "migrate" not in message
    assert check_prefix_then_migrate(db, "site2_") == latest_version()


def check_prefix_then_migrate(db: Database, prefix: str) -> int:
    migrate(db, prefix)
    return check(db, prefix)
