"""Judging SHOW GRANTS: does the sidecar's database user have what it needs, and not far more?

The sidecar needs SELECT, INSERT, UPDATE and DELETE on its own tables
(`{prefix}formrelay_*`) and SELECT on the WordPress tables it reads; `formrelay
migrate` also needs CREATE, ALTER, INDEX and REFERENCES on its tables. Any
privilege granted ON *.* (every database of the server) is far more than that.
Roles granted to the user are not followed (their grants need SET ROLE to read).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sidecar.store.schema import load_migrations

RUN = ("SELECT", "INSERT", "UPDATE", "DELETE")
MIGRATE = ("CREATE", "ALTER", "INDEX", "REFERENCES")
WORDPRESS_READS = ("options", "posts", "postmeta", "wpforms_entries", "wpforms_entry_meta")
ALL = "ALL PRIVILEGES"
GRANT = re.compile(r"^GRANT (?P<privs>.+?) ON (?P<target>(?:`[^`]*`|\*)\.(?:`[^`]*`|\*)) TO ")
CREATE_TABLE = re.compile(r"CREATE TABLE IF NOT EXISTS (\S+)")


def formrelay_tables(prefix: str) -> list[str]:
    """Every table the migration files create, with this prefix."""
    return sorted({m[1] for mig in load_migrations(prefix) for st in mig.statements
                   for m in [CREATE_TABLE.search(st)] if m})


@dataclass
class Grants:
    global_privs: set[str] = field(default_factory=set)
    on_databases: list[tuple[re.Pattern[str], set[str]]] = field(default_factory=list)
    on_tables: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    roles: bool = False

    def has(self, database: str, table: str) -> set[str]:
        found = set(self.global_privs)
        for pattern, privs in self.on_databases:
            if pattern.fullmatch(database):
                found |= privs
        found |= self.on_tables.get((database, table), set())
        return found

    def missing(self, database: str, table: str, wanted: tuple[str, ...]) -> list[str]:
        held = self.has(database, table)
        return [] if ALL in held else [p for p in wanted if p not in held]


def _privileges(text: str) -> set[str]:
    privs = {re.sub(r"\s*\(.*\)$", "", p.strip()).upper() for p in text.split(",")}
    return {ALL if p in ("ALL", ALL) else p for p in privs} - {"USAGE"}


def _unquote(name: str) -> str:
    return name[1:-1].replace("``", "`") if name.startswith("`") else name


def _database_pattern(name: str) -> re.Pattern[str]:
    """A database name in a GRANT: `_` and `%` are wildcards unless escaped with `\\`."""
    out, i = "", 0
    while i < len(name):
        c = name[i]
        if c == "\\" and i + 1 < len(name):
            out, i = out + re.escape(name[i + 1]), i + 2
            continue
        out += ".*" if c == "%" else "." if c == "_" else re.escape(c)
        i += 1
    return re.compile(out)


def parse(lines: list[str]) -> Grants:
    grants = Grants()
    for line in lines:
        match = GRANT.match(line)
        if not match:
            grants.roles = grants.roles or (line.startswith("GRANT ") and " ON " not in line)
            continue
        privs = _privileges(match["privs"])
        db_part, _, table_part = match["target"].partition(".")
        if db_part == "*":
            grants.global_privs |= privs
        elif table_part == "*":
            grants.on_databases.append((_database_pattern(_unquote(db_part)), privs))
        else:
            key = (_unquote(db_part), _unquote(table_part))
            grants.on_tables[key] = grants.on_tables.get(key, set()) | privs
    return grants


@dataclass(frozen=True)
class Verdict:
    missing_run: dict[str, list[str]]  # table -> privileges the running sidecar lacks
    missing_reads: list[str]  # WordPress tables it cannot SELECT
    missing_migrate: list[str]  # privileges only `formrelay migrate` needs
    too_broad: list[str]  # privileges held ON *.*
    roles: bool


def judge(lines: list[str], database: str, prefix: str) -> Verdict:
    grants = parse(lines)
    tables = formrelay_tables(prefix)
    run = {t: m for t in tables if (m := grants.missing(database, t, RUN))}
    reads = [f"{prefix}{t}" for t in WORDPRESS_READS
             if grants.missing(database, f"{prefix}{t}", ("SELECT",))]
    migrate = sorted({p for t in tables for p in grants.missing(database, t, MIGRATE)})
    return Verdict(run, reads, migrate, sorted(grants.global_privs), grants.roles)
