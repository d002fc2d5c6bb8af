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
    BRIDGE_SLUG,
    BRIDGE_SOURCE,
    DB_HOST,
    DB_PASSWORD,
    DB_PORT,
    DB_USER,
    REPO_ROOT,
    rendered_notices,
)
from tests.wordpress.schema_snapshot import (
    MIGRATION_NAME,
    SCHEMA_DIR,
    add_sentinel_rows,
    assert_same_schema,
    assert_snapshot_is_the_full_schema,
    assert_unchanged,
    assert_version_recorded,
    known_version,
    meta_rows,
    option,
    remove_sentinel_rows,
    schema_snapshot,
    sentinel_counts,
)

pytestmark = [pytest.mark.wordpress, pytest.mark.db]


def formrelay_cli() -> Path:
    for candidate in (
        Path(sys.executable).with_name("formrelay"),
        REPO_ROOT / ".venv" / "bin" / "formrelay",
    ):
        if candidate.exists():
            return candidate
    pytest.fail("the sidecar's `formrelay` command is not installed in the venv (pip install -e .)")


def run_migrator(db_name: str, prefix: str, *args: str) -> subprocess.CompletedProcess[str]:
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
        [str(formrelay_cli()), "migrate", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


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
    proc = run_migrator(db_name, "wp_", "--force")  # an empty database: not WordPress
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
        assert_unchanged(db, prefix, before, meta_before)
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

    assert_unchanged(db, prefix, py_snap, meta_before)
    assert sentinel_counts(db, prefix) == (1, 1, 1)
    # Activation did run the installer: it read and recorded the version.
    assert_version_recorded(db, prefix, known_version())
    assert rendered_notices(wp) == []
    # Same schema as the plugin built under the default prefix.
    assert_same_schema(py_snap, schema_snapshot(wordpress.db_name, wordpress.table_prefix))
