"""The FormRelay tables as MariaDB reports them, for comparing what two readers built.

A snapshot is information_schema's view of a database's ``<prefix>formrelay_*``
tables (options, columns, indexes, foreign keys, checks) with the prefix
removed, plus the recorded schema version. The sentinel rows and meta/option
readers check that re-running a schema keeps data and bookkeeping as they were.

(tests/wordpress/conftest.py registers this module for pytest's assert rewriting.)
"""

from __future__ import annotations

import re
from typing import Any

from tests.wordpress.conftest import BRIDGE_SOURCE, server_connection

SCHEMA_DIR = BRIDGE_SOURCE / "schema"
MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
REQUIRED_TABLES = {"meta", "jobs", "documents", "log"}


def known_version() -> int:
    versions = [
        int(m.group(1)) for p in SCHEMA_DIR.iterdir() if (m := MIGRATION_NAME.match(p.name))
    ]
    return max(versions)


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
    with server_connection(database) as conn:
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
    """The schema's bookkeeping rows (not the published delivery settings, which activation
    and deactivation rewrite by design)."""
    with server_connection(database) as conn:
        cur = conn.cursor()
        cur.execute(f"SELECT name, value, updated_at FROM `{prefix}formrelay_meta`"
                    " WHERE name <> 'delivery_settings' ORDER BY name")
        return list(cur.fetchall())


def assert_unchanged(
    database: str, prefix: str, snap: dict[str, Any], meta: list[tuple[Any, ...]]
) -> None:
    """The schema is still ``snap`` and the meta rows ``meta`` (not even updated_at moved)."""
    assert_same_schema(schema_snapshot(database, prefix), snap)
    assert meta_rows(database, prefix) == meta


def option(database: str, prefix: str, name: str) -> str | None:
    with server_connection(database) as conn:
        cur = conn.cursor()
        cur.execute(f"SELECT option_value FROM `{prefix}options` WHERE option_name = %s", (name,))
        row = cur.fetchone()
        return None if row is None else _text(row[0])


def assert_version_recorded(database: str, prefix: str, version: int) -> None:
    """The plugin recorded ``version`` in its option and no install error."""
    assert option(database, prefix, "formrelay_schema_version") == str(version)
    assert option(database, prefix, "formrelay_schema_error") is None


def add_sentinel_rows(database: str, prefix: str) -> None:
    """One job with a document and a log line: must survive any re-run of the schema."""
    with server_connection(database) as conn:
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


def sentinel_counts(database: str, prefix: str) -> tuple[int, int, int]:
    with server_connection(database) as conn:
        cur = conn.cursor()
        counts = []
        for table in ("jobs", "documents", "log"):
            cur.execute(f"SELECT COUNT(*) FROM `{prefix}formrelay_{table}`")
            counts.append(cur.fetchone()[0])
        return (counts[0], counts[1], counts[2])


def remove_sentinel_rows(database: str, prefix: str) -> None:
    # documents and log rows go with the job (ON DELETE CASCADE)
    with server_connection(database) as conn:
        conn.cursor().execute(
            f"DELETE FROM `{prefix}formrelay_jobs` WHERE reference = 'sentinel-1'"
        )
