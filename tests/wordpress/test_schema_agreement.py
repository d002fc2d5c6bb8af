"""The plugin's activation and the sidecar's `formrelay migrate` build the same schema.

Both read wp_bridge_plugin/schema/NNNN_*.sql with the same rules; these tests
compare what each actually creates in MariaDB (information_schema), in both
orders, and check that neither disturbs a schema the other made.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.wordpress.conftest import (
    BRIDGE_FILE,
    BRIDGE_SLUG,
    BRIDGE_SOURCE,
    DB_HOST,
    DB_PASSWORD,
    DB_PORT,
    DB_USER,
    server_connection,
)

pytestmark = [pytest.mark.wordpress, pytest.mark.db]

SCHEMA_DIR = BRIDGE_SOURCE / "schema"
MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
REQUIRED_TABLES = {"meta", "jobs", "documents", "log"}
NOTICE = re.compile(r'<div class="notice notice-(\w+) formrelay-notice"><p>(.*?)</p></div>', re.S)


def known_version() -> int:
    versions = [
        int(m.group(1)) for p in SCHEMA_DIR.iterdir() if (m := MIGRATION_NAME.match(p.name))
    ]
    return max(versions)


# ------------------------------------------------------------------ helpers
def formrelay_cli() -> Path:
    for candidate in (
        Path(sys.executable).with_name("formrelay"),
        Path(__file__).resolve().parents[2] / ".venv" / "bin" / "formrelay",
    ):
        if candidate.exists():
            return candidate
    pytest.fail("the sidecar's `formrelay` command is not installed in the venv (pip install -e .)")


def run_migrator(db_name: str, prefix: str) -> subprocess.CompletedProcess[str]:
    """`formrelay migrate` against ``db_name`` configured only by the WordPress variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FORMRELAY_", "WORDPRESS_"))}
    env.update(
        WORDPRESS_DB_HOST=f"{DB_HOST}:{DB_PORT}",
        WORDPRESS_DB_USER=DB_USER,
        WORDPRESS_DB_PASSWORD=DB_PASSWORD,
        WORDPRESS_DB_NAME=db_name,
        WORDPRESS_TABLE_PREFIX=prefix,
    )
    return subprocess.run(
        [str(formrelay_cli()), "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, (bytes, bytearray)) else value


def _query(cur: Any, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    cur.execute(sql, params)
    return [{k: _text(v) for k, v in row.items()} for row in cur.fetchall()]


def schema_snapshot(database: str, prefix: str) -> dict[str, Any]:
    """The FormRelay tables of ``database`` from information_schema, prefix removed."""

    def bare(name: str) -> str:
        assert name.startswith(prefix), f"{name!r} lacks the table prefix {prefix!r}"
        return name[len(prefix) :]

    like = prefix.replace("_", "\\_") + "formrelay\\_%"
    conn = server_connection(database)
    try:
        cur = conn.cursor(dictionary=True)
        tables: dict[str, Any] = {}
        for t in _query(
            cur,
            "SELECT TABLE_NAME, ENGINE, TABLE_COLLATION, TABLE_COMMENT"
            " FROM information_schema.TABLES"
            " WHERE TABLE_SCHEMA = %s AND TABLE_NAME LIKE %s ORDER BY TABLE_NAME",
            (database, like),
        ):
            name = t["TABLE_NAME"]
            key = bare(name).removeprefix("formrelay_")
            columns = _query(
                cur,
                "SELECT COLUMN_NAME, ORDINAL_POSITION, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT,"
                " EXTRA, IS_GENERATED, GENERATION_EXPRESSION, CHARACTER_SET_NAME, COLLATION_NAME"
                " FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s"
                " ORDER BY ORDINAL_POSITION",
                (database, name),
            )
            index_rows = _query(
                cur,
                "SELECT INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, NON_UNIQUE, INDEX_TYPE, SUB_PART,"
                " COLLATION FROM information_schema.STATISTICS"
                " WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY INDEX_NAME, SEQ_IN_INDEX",
                (database, name),
            )
            indexes: dict[str, Any] = {}
            for row in index_rows:
                idx = indexes.setdefault(
                    row["INDEX_NAME"],
                    {
                        "unique": not int(row["NON_UNIQUE"]),
                        "type": row["INDEX_TYPE"],
                        "columns": [],
                    },
                )
                idx["columns"].append((row["COLUMN_NAME"], row["SUB_PART"], row["COLLATION"]))
            fk_rows = _query(
                cur,
                "SELECT rc.CONSTRAINT_NAME, rc.REFERENCED_TABLE_NAME, rc.UPDATE_RULE,"
                " rc.DELETE_RULE, k.COLUMN_NAME, k.REFERENCED_COLUMN_NAME, k.ORDINAL_POSITION"
                " FROM information_schema.REFERENTIAL_CONSTRAINTS rc"
                " JOIN information_schema.KEY_COLUMN_USAGE k"
                "   ON k.CONSTRAINT_SCHEMA = rc.CONSTRAINT_SCHEMA"
                "  AND k.CONSTRAINT_NAME = rc.CONSTRAINT_NAME AND k.TABLE_NAME = rc.TABLE_NAME"
                " WHERE rc.CONSTRAINT_SCHEMA = %s AND rc.TABLE_NAME = %s"
                " ORDER BY rc.CONSTRAINT_NAME, k.ORDINAL_POSITION",
                (database, name),
            )
            fks: dict[str, Any] = {}
            for row in fk_rows:
                fk = fks.setdefault(
                    bare(row["CONSTRAINT_NAME"]),
                    {
                        "references": bare(row["REFERENCED_TABLE_NAME"]),
                        "on_update": row["UPDATE_RULE"],
                        "on_delete": row["DELETE_RULE"],
                        "columns": [],
                        "referenced_columns": [],
                    },
                )
                fk["columns"].append(row["COLUMN_NAME"])
                fk["referenced_columns"].append(row["REFERENCED_COLUMN_NAME"])
            checks = _query(
                cur,
                "SELECT CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS"
                " WHERE CONSTRAINT_SCHEMA = %s AND TABLE_NAME = %s ORDER BY CONSTRAINT_NAME",
                (database, name),
            )
            tables[key] = {
                "options": {k: t[k] for k in ("ENGINE", "TABLE_COLLATION", "TABLE_COMMENT")},
                "columns": columns,
                "indexes": indexes,
                "foreign_keys": fks,
                "checks": checks,
            }
        version = None
        if "meta" in tables:
            rows = _query(
                cur,
                f"SELECT value FROM `{prefix}formrelay_meta` WHERE name = %s",
                ("schema_version",),
            )
            version = rows[0]["value"] if rows else None
        return {"tables": tables, "schema_version": version}
    finally:
        conn.close()


def assert_snapshot_is_the_full_schema(snap: dict[str, Any]) -> None:
    """Guard against comparing two empty or shallow snapshots."""
    tables = snap["tables"]
    assert set(tables) >= REQUIRED_TABLES, sorted(tables)
    assert snap["schema_version"] == str(known_version())
    for name in REQUIRED_TABLES:
        assert tables[name]["columns"] and "PRIMARY" in tables[name]["indexes"], name
        assert tables[name]["options"]["ENGINE"] == "InnoDB", name
    # What dbDelta() could not have made, and what a careless reader would drop.
    jobs_cols = {c["COLUMN_NAME"]: c for c in tables["jobs"]["columns"]}
    generated = [c for c in jobs_cols.values() if c["IS_GENERATED"] != "NEVER"]
    assert generated and all(c["GENERATION_EXPRESSION"] for c in generated)
    assert jobs_cols["status"]["COLUMN_DEFAULT"] == "'pending'"
    assert any(i["unique"] for n, i in tables["jobs"]["indexes"].items() if n != "PRIMARY")
    assert any(len(i["columns"]) > 1 for i in tables["jobs"]["indexes"].values())
    assert "FULLTEXT" in {i["type"] for i in tables["log"]["indexes"].values()}
    fks = {name: fk for t in tables.values() for name, fk in t["foreign_keys"].items()}
    assert len(fks) >= 2 and all(name.startswith("formrelay_") for name in fks), sorted(fks)
    assert all(fk["columns"] and fk["on_delete"] for fk in fks.values())
    assert "CASCADE" in {fk["on_delete"] for fk in fks.values()}


def assert_same_schema(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert sorted(got["tables"]) == sorted(want["tables"])
    for table in want["tables"]:
        for part in ("options", "columns", "indexes", "foreign_keys", "checks"):
            assert got["tables"][table][part] == want["tables"][table][part], f"{table} {part}"
    assert got["schema_version"] == want["schema_version"]


def meta_rows(database: str, prefix: str) -> list[tuple[Any, ...]]:
    conn = server_connection(database)
    try:
        cur = conn.cursor()
        cur.execute(f"SELECT name, value, updated_at FROM `{prefix}formrelay_meta` ORDER BY name")
        return list(cur.fetchall())
    finally:
        conn.close()


def option(database: str, prefix: str, name: str) -> str | None:
    conn = server_connection(database)
    try:
        cur = conn.cursor()
        cur.execute(f"SELECT option_value FROM `{prefix}options` WHERE option_name = %s", (name,))
        row = cur.fetchone()
        return None if row is None else _text(row[0])
    finally:
        conn.close()


def add_sentinel_rows(database: str, prefix: str) -> None:
    """One job with a document and a log line: must survive any re-run of the schema."""
    conn = server_connection(database)
    try:
        cur = conn.cursor()
        cur.execute(
            f"INSERT INTO `{prefix}formrelay_jobs` (reference, form_id, created_at, updated_at)"
            " VALUES ('sentinel-1', 7, UTC_TIMESTAMP(3), UTC_TIMESTAMP(3))"
        )
        job_id = cur.lastrowid
        cur.execute(
            f"INSERT INTO `{prefix}formrelay_documents`"
            " (job_id, field_id, path, created_at, updated_at)"
            " VALUES (%s, '4', '/tmp/x.pdf', UTC_TIMESTAMP(3), UTC_TIMESTAMP(3))",
            (job_id,),
        )
        cur.execute(
            f"INSERT INTO `{prefix}formrelay_log` (job_id, event, message, created_at)"
            " VALUES (%s, 'sentinel', 'kept', UTC_TIMESTAMP(3))",
            (job_id,),
        )
    finally:
        conn.close()


def sentinel_counts(database: str, prefix: str) -> tuple[int, int, int]:
    conn = server_connection(database)
    try:
        cur = conn.cursor()
        counts = []
        for table in ("jobs", "documents", "log"):
            cur.execute(f"SELECT COUNT(*) FROM `{prefix}formrelay_{table}`")
            counts.append(cur.fetchone()[0])
        return (counts[0], counts[1], counts[2])
    finally:
        conn.close()


def remove_sentinel_rows(database: str, prefix: str) -> None:
    conn = server_connection(database)
    try:  # documents and log rows go with the job (ON DELETE CASCADE)
        conn.cursor().execute(
            f"DELETE FROM `{prefix}formrelay_jobs` WHERE reference = 'sentinel-1'"
        )
    finally:
        conn.close()


def deactivate_bridge(wp: Any) -> None:
    out = wp.php(
        """
        require_once ABSPATH . 'wp-admin/includes/plugin.php';
        deactivate_plugins( $snippet_args[0] );
        echo is_plugin_active( $snippet_args[0] ) ? 'active' : 'inactive';
        """,
        BRIDGE_FILE,
        user=wp.admin_user,
        admin=True,
    )
    assert out == "inactive"


def rendered_notices(wp: Any, user: str | None = None) -> list[tuple[str, str]]:
    """The FormRelay notices the admin_notices hook prints for ``user`` (default admin)."""
    out = wp.php("do_action( 'admin_notices' );", user=user or wp.admin_user, admin=True)
    return NOTICE.findall(out)


# -------------------------------------------------------------------- tests
def _php_schema_reader(payload: Any) -> Any:
    """FormRelay_Schema's file and statement rules, run by PHP without WordPress."""
    harness = (
        "define( 'ABSPATH', '/nonexistent/' );"
        "define( 'FORMRELAY_BRIDGE_PATH', $argv[1] );"
        "require $argv[1] . 'includes/class-formrelay-schema.php';"
        "$in = json_decode( stream_get_contents( STDIN ), true );"
        "$split = array();"
        "foreach ( $in as $case ) {"
        "  $split[] = FormRelay_Schema::statements( $case[0], $case[1] );"
        "}"
        "echo json_encode( array( 'versions' => array_keys( FormRelay_Schema::migrations() ),"
        " 'known' => FormRelay_Schema::known_version(), 'split' => $split ) );"
    )
    proc = subprocess.run(
        ["php", "-d", "display_errors=stderr", "-r", harness, str(BRIDGE_SOURCE) + "/"],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(proc.stdout)


SPLIT_CASES = [
    (
        "-- a comment; with a semicolon\nCREATE TABLE a (x INT);\n\nINSERT INTO a VALUES (1) ;  \n",
        "wp_",
    ),
    ("   -- indented comment\nSELECT 1; SELECT 2;\nSELECT 3", "wp_"),
    ("SELECT 1;\r\n-- crlf comment\r\nSELECT 2;\r\n", "wp_"),
    ("CREATE TABLE {prefix}t (\n  a INT, -- trailing comment;\n  b INT\n);\n\t\n", "my_pfx_"),
    ("SELECT 1; -- not a statement end\nSELECT 2;\n;\n", "wp_"),
    ("INSERT INTO {prefix}x VALUES ('a;\nb');\nSELECT '--x';\n", "p2_"),
]


def test_php_and_python_read_the_migration_files_by_the_same_rules():
    from sidecar.store.schema import load_migrations, split_statements

    names = sorted(p.name for p in SCHEMA_DIR.glob("*.sql"))
    assert names, "no migration files"
    # Names outside NNNN_name.sql are where the two readers could differ: allow none.
    assert all(MIGRATION_NAME.match(n) for n in names), names
    versions = [int(n[:4]) for n in names]
    assert len(set(versions)) == len(versions), names

    shipped = [(p.read_text(encoding="utf-8"), "wp_") for p in sorted(SCHEMA_DIR.glob("*.sql"))]
    cases = SPLIT_CASES + shipped
    php = _php_schema_reader(cases)
    assert php["versions"] == [m.version for m in load_migrations("wp_")] == sorted(versions)
    assert php["known"] == known_version()
    python = [list(split_statements(sql.replace("{prefix}", prefix))) for sql, prefix in cases]
    assert php["split"] == python
    # The shipped file really is split into its CREATE TABLEs, comments gone.
    first = php["split"][len(SPLIT_CASES)]
    assert len(first) >= 4
    assert all(s.startswith("CREATE TABLE IF NOT EXISTS wp_formrelay_") for s in first)
    assert not any("--" in s for s in first)


def test_php_activation_and_python_migrator_create_the_same_schema(wordpress, scratch_database):
    php_snap = schema_snapshot(wordpress.db_name, wordpress.table_prefix)
    assert_snapshot_is_the_full_schema(php_snap)

    db_name = scratch_database()
    proc = run_migrator(db_name, "wp_")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    py_snap = schema_snapshot(db_name, "wp_")
    assert_snapshot_is_the_full_schema(py_snap)
    assert_same_schema(py_snap, php_snap)


def test_python_migrator_on_the_plugins_database_changes_nothing(wordpress):
    db, prefix = wordpress.db_name, wordpress.table_prefix
    before, meta_before = schema_snapshot(db, prefix), meta_rows(db, prefix)
    add_sentinel_rows(db, prefix)
    try:
        proc = run_migrator(db, prefix)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert re.search(r"up[ -]to[ -]date", proc.stdout + proc.stderr, re.I), proc.stdout
        assert_same_schema(schema_snapshot(db, prefix), before)
        assert meta_rows(db, prefix) == meta_before  # not even updated_at moved
        assert sentinel_counts(db, prefix) == (1, 1, 1)
    finally:
        remove_sentinel_rows(db, prefix)


def test_sidecar_first_then_activation_with_another_prefix(make_wordpress, wordpress):
    wp = make_wordpress(table_prefix="frx_")
    db, prefix = wp.db_name, "frx_"
    proc = run_migrator(db, prefix)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    py_snap = schema_snapshot(db, prefix)
    assert_snapshot_is_the_full_schema(py_snap)
    meta_before = meta_rows(db, prefix)
    add_sentinel_rows(db, prefix)
    assert option(db, prefix, "formrelay_schema_version") is None

    wp.activate_plugin(BRIDGE_SOURCE, BRIDGE_SLUG)

    assert_same_schema(schema_snapshot(db, prefix), py_snap)
    assert meta_rows(db, prefix) == meta_before
    assert sentinel_counts(db, prefix) == (1, 1, 1)
    # Activation did run the installer: it read and recorded the version.
    assert option(db, prefix, "formrelay_schema_version") == str(known_version())
    assert option(db, prefix, "formrelay_schema_error") is None
    assert rendered_notices(wp) == []
    # Same schema as the plugin built under the default prefix.
    assert_same_schema(py_snap, schema_snapshot(wordpress.db_name, wordpress.table_prefix))


def test_activating_twice_is_idempotent(make_wordpress):
    wp = make_wordpress(plugins=[(BRIDGE_SLUG, BRIDGE_SOURCE)])
    db, prefix = wp.db_name, wp.table_prefix
    before, meta_before = schema_snapshot(db, prefix), meta_rows(db, prefix)
    assert_snapshot_is_the_full_schema(before)
    add_sentinel_rows(db, prefix)
    # Forget the recorded option so the second activation has to rebuild it.
    wp.php("delete_option( 'formrelay_schema_version' );")
    assert option(db, prefix, "formrelay_schema_version") is None

    deactivate_bridge(wp)
    wp.activate_plugin(BRIDGE_SOURCE, BRIDGE_SLUG)

    assert_same_schema(schema_snapshot(db, prefix), before)
    assert meta_rows(db, prefix) == meta_before
    assert sentinel_counts(db, prefix) == (1, 1, 1)
    assert option(db, prefix, "formrelay_schema_version") == str(known_version())
    assert option(db, prefix, "formrelay_schema_error") is None


def test_a_newer_schema_in_the_database_is_left_alone_and_noticed(make_wordpress):
    wp = make_wordpress(plugins=[(BRIDGE_SLUG, BRIDGE_SOURCE)])
    db, prefix = wp.db_name, wp.table_prefix
    newer = known_version() + 1
    assert rendered_notices(wp) == []
    conn = server_connection(db)
    try:
        conn.cursor().execute(
            f"UPDATE `{prefix}formrelay_meta` SET value = %s WHERE name = 'schema_version'",
            (str(newer),),
        )
    finally:
        conn.close()
    # The sidecar moved ahead while the plugin was active: noticed on the next admin page.
    notices = rendered_notices(wp)
    assert len(notices) == 1 and notices[0][0] == "warning", notices
    assert f"version {newer}" in notices[0][1] and f"({known_version()})" in notices[0][1]

    before, meta_before = schema_snapshot(db, prefix), meta_rows(db, prefix)
    deactivate_bridge(wp)
    wp.activate_plugin(BRIDGE_SOURCE, BRIDGE_SLUG)  # raises if activation failed

    assert_same_schema(schema_snapshot(db, prefix), before)
    assert meta_rows(db, prefix) == meta_before
    assert meta_before[0][1] == str(newer)
    assert option(db, prefix, "formrelay_schema_version") == str(newer)
    assert option(db, prefix, "formrelay_schema_error") is None
    assert [n[0] for n in rendered_notices(wp)] == ["warning"]
    # Only for people who can act on it.
    wp.php(
        "wp_insert_user( array( 'user_login' => 'sub', 'user_pass' => 'x-pass-1',"
        " 'user_email' => 'sub@example.com', 'role' => 'subscriber' ) );"
    )
    assert rendered_notices(wp, user="sub") == []


def test_a_failed_install_stops_activation_with_the_reason(make_wordpress):
    wp = make_wordpress()
    db, prefix = wp.db_name, wp.table_prefix
    conn = server_connection(db)
    try:  # a meta table the migration cannot use: CREATE ... IF NOT EXISTS keeps it
        conn.cursor().execute(
            f"CREATE TABLE `{prefix}formrelay_meta` (name VARCHAR(64) PRIMARY KEY)"
        )
    finally:
        conn.close()

    with pytest.raises(Exception, match=r"FormRelay Bridge.*Unknown column 'value'") as caught:
        wp.activate_plugin(BRIDGE_SOURCE, BRIDGE_SLUG)
    assert "activation failed" in str(caught.value)

    out = wp.php("echo wp_json_encode( get_option( 'active_plugins' ) );")
    assert json.loads(out) == []
    error = option(db, prefix, "formrelay_schema_error")
    assert error is not None and "Unknown column 'value'" in error
    # The notice shows it, escaped, wherever the plugin is loaded.
    out = wp.php(
        "include WP_PLUGIN_DIR . '/' . $snippet_args[0]; do_action( 'admin_notices' );",
        BRIDGE_FILE,
        user=wp.admin_user,
        admin=True,
    )
    notices = NOTICE.findall(out)
    assert [n[0] for n in notices] == ["error"]
    assert "Unknown column &#039;value&#039;" in notices[0][1]
