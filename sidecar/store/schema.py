"""Versioned schema: apply the migration files, or check they were applied.

The files live in wp_bridge_plugin/schema/ (reached here through the
sidecar/schema_sql link) and the WordPress plugin applies the same files with
the same rules (includes/class-formrelay-schema.php):
  * file `NNNN_name.sql` (four digits) is schema version NNNN, one file each;
  * `{prefix}` is the table prefix;
  * lines starting with `--` are comments; a statement ends with `;` at line end;
  * everything runs under GET_LOCK('formrelay_migrate'), each file once, and
    the version is recorded in {prefix}formrelay_meta as `schema_version`.

FormRelay's tables live beside WordPress' own: a database without
`{prefix}options` is not WordPress with this prefix, and missing FormRelay
tables there mean a wrong WORDPRESS_TABLE_PREFIX or database, never "run
migrate" (`not_wordpress`; the `migrate` command refuses it unless --force).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sidecar.errors import SchemaError
from sidecar.store.db import Database

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schema_sql"
LOCK_NAME = "formrelay_migrate"
LOCK_TIMEOUT_SECONDS = 30
MIGRATE_HINT = "run `formrelay migrate`"
FILE_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>.+)\.sql$")  # as the plugin reads them


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def split_statements(sql: str) -> tuple[str, ...]:
    body = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return tuple(s.strip() for s in re.split(r";\s*$", body, flags=re.M) if s.strip())


def load_migrations(prefix: str, directory: Path = SCHEMA_DIR) -> tuple[Migration, ...]:
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = FILE_NAME.match(path.name)
        if not match:
            continue
        version = int(match["version"])
        if version in found:
            raise SchemaError(f"two schema files have version {version} in {directory}")
        sql = path.read_text(encoding="utf-8").replace("{prefix}", prefix)
        found[version] = Migration(version, match["name"], split_statements(sql))
    return tuple(found[v] for v in sorted(found))


def latest_version(directory: Path = SCHEMA_DIR) -> int:
    return max((m.version for m in load_migrations("", directory)), default=0)


def current_version(db: Database, prefix: str) -> int:
    """The recorded schema version; 0 when the meta table or its row is missing."""
    with db.transaction() as cur:
        cur.execute(
            "SELECT COUNT(*) AS n FROM information_schema.tables"
            " WHERE table_schema = DATABASE() AND table_name = %s",
            (f"{prefix}formrelay_meta",),
        )
        if not cur.fetchone()["n"]:
            return 0
        cur.execute(
            f"SELECT value FROM {prefix}formrelay_meta WHERE name = 'schema_version'"
        )
        row = cur.fetchone()
    return int(row["value"]) if row else 0


def _table_exists(cur: Any, name: str) -> bool:
    cur.execute("SELECT COUNT(*) AS n FROM information_schema.tables"
                " WHERE table_schema = DATABASE() AND table_name = %s", (name,))
    return bool(cur.fetchone()["n"])


def has_wordpress(db: Database, prefix: str) -> bool:
    """Whether `{prefix}options` exists: this is a WordPress database with this prefix."""
    with db.transaction() as cur:
        return _table_exists(cur, f"{prefix}options")


def wordpress_prefixes(db: Database) -> list[str]:
    """The prefixes of every `*options` table with WordPress' columns in this database."""
    with db.transaction() as cur:
        cur.execute("SELECT table_name AS name FROM information_schema.columns"
                    " WHERE table_schema = DATABASE() AND column_name = 'option_name'"
                    " AND table_name LIKE %s ORDER BY table_name", ("%options",))
        names = [str(r["name"]) for r in cur.fetchall()]
    return [n[: -len("options")] for n in names if n.endswith("options")]


def not_wordpress(db: Database, prefix: str) -> str:
    """Why this database is not WordPress with `prefix`: the prefix or the database is
    probably wrong (with the prefixes found), said without suggesting `migrate`."""
    found = wordpress_prefixes(db)
    where = f"database {db.settings.database}"
    seen = (f"; WordPress tables found with prefix {', '.join(repr(f) for f in found)}" if found
            else "; no WordPress options table in it at all")
    return (f"{prefix}options does not exist in {where}: this is not a WordPress database"
            f" with table prefix {prefix!r}, so WORDPRESS_TABLE_PREFIX or WORDPRESS_DB_NAME"
            f" is probably wrong{seen}")


def migrate(db: Database, prefix: str, directory: Path = SCHEMA_DIR) -> list[int]:
    """Apply every migration newer than the recorded version; return those applied."""
    migrations = load_migrations(prefix, directory)
    conn = db.connection()
    cur = conn.cursor()
    cur.execute("SELECT GET_LOCK(%s, %s)", (LOCK_NAME, LOCK_TIMEOUT_SECONDS))
    (got,) = cur.fetchone()  # type: ignore[misc]
    if got != 1:
        raise SchemaError(f"another migration holds the {LOCK_NAME!r} lock; try again")
    try:
        version = current_version(db, prefix)
        known = max((m.version for m in migrations), default=0)
        if version > known:
            raise SchemaError(
                f"database schema is version {version}, newer than this sidecar knows"
                f" ({known}): upgrade the sidecar"
            )
        applied = []
        for m in migrations:
            if m.version <= version:
                continue
            for statement in m.statements:  # DDL commits implicitly in MySQL
                cur.execute(statement)
            cur.execute(
                f"INSERT INTO {prefix}formrelay_meta (name, value, updated_at)"
                " VALUES ('schema_version', %s, UTC_TIMESTAMP(3))"
                " ON DUPLICATE KEY UPDATE value = VALUES(value), updated_at = VALUES(updated_at)",
                (str(m.version),),
            )
            conn.commit()
            applied.append(m.version)
        return applied
    finally:
        cur.execute("SELECT RELEASE_LOCK(%s)", (LOCK_NAME,))
        cur.fetchall()
        cur.close()


def check(db: Database, prefix: str, directory: Path = SCHEMA_DIR) -> int:
    """Raise SchemaError unless the database has exactly the schema this sidecar knows."""
    want = latest_version(directory)
    have = current_version(db, prefix)
    if have == 0 and not has_wordpress(db, prefix):
        raise SchemaError(not_wordpress(db, prefix))
    if have == 0:
        raise SchemaError(
            f"FormRelay tables ({prefix}formrelay_*) are missing in this database: {MIGRATE_HINT}"
        )
    if have < want:
        raise SchemaError(f"database schema is version {have}, this sidecar needs {want}: "
                          f"{MIGRATE_HINT}")
    if have > want:
        raise SchemaError(
            f"database schema is version {have}, newer than this sidecar ({want}):"
            " upgrade the sidecar"
        )
    return have
