"""Judging SHOW GRANTS against what the sidecar needs (sidecar.store.grants.needs): what is
missing, and every grant beyond it.

Needed: SELECT, INSERT, UPDATE, DELETE on each FormRelay table, SELECT on the WordPress and
WPForms tables it reads; nothing else (`formrelay migrate` runs as an admin account). A
grant ON *.*, ON a whole database (it includes `wp_users`), on another table, an extra
privilege on a needed table, GRANT OPTION or PROXY is more than that. Roles granted to the
user are not followed (their grants need SET ROLE to read).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sidecar.store.grants import needs

ALL = "ALL PRIVILEGES"
GRANT = re.compile(r"^GRANT (?P<privs>.+?) ON (?P<target>(?:`(?:[^`]|``)*`|\*)\."
                   r"(?:`(?:[^`]|``)*`|\*)) TO .*?(?P<option> WITH GRANT OPTION)?$")
NAME = r"`(?:[^`]|``)*`|\*"


@dataclass
class Grants:
    global_privs: set[str] = field(default_factory=set)
    on_databases: list[tuple[str, re.Pattern[str], set[str]]] = field(default_factory=list)
    on_tables: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    other: list[str] = field(default_factory=list)  # GRANT OPTION, PROXY: always extra
    roles: bool = False

    def has(self, database: str, table: str) -> set[str]:
        found = set(self.global_privs)
        for _, pattern, privs in self.on_databases:
            if pattern.fullmatch(database):
                found |= privs
        return found | self.on_tables.get((database, table), set())

    def missing(self, database: str, table: str, wanted: tuple[str, ...]) -> list[str]:
        held = self.has(database, table)
        return [] if ALL in held else [p for p in wanted if p not in held]


def _privileges(text: str) -> set[str]:
    """Privilege names; a column list (`SELECT (a, b)`) counts as the privilege."""
    text = re.sub(r"\([^)]*\)", "", text)
    privs = {p.strip().upper() for p in text.split(",")}
    return {ALL if p in ("ALL", ALL) else p for p in privs} - {"USAGE", ""}


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
            if line.startswith("GRANT PROXY "):
                grants.other.append("PROXY")
            elif line.startswith("GRANT ") and " ON " not in line:
                grants.roles = True
            continue
        privs = _privileges(match["privs"])
        db_part, table_part = re.findall(NAME, match["target"])
        if match["option"]:
            grants.other.append(f"GRANT OPTION ON {match['target']}")
        if db_part == "*":
            grants.global_privs |= privs
        elif table_part == "*":
            grants.on_databases.append((db_part, _database_pattern(_unquote(db_part)), privs))
        else:
            key = (_unquote(db_part), _unquote(table_part))
            grants.on_tables[key] = grants.on_tables.get(key, set()) | privs
    return grants


@dataclass(frozen=True)
class Verdict:
    missing: dict[str, list[str]]  # table -> privileges the running sidecar lacks
    missing_wpforms: list[str]  # WPForms Pro tables it cannot SELECT (absent with Lite)
    extras: list[str]  # each grant beyond the needs, e.g. "INSERT on wp_users"
    roles: bool


def _order(privs: set[str]) -> str:
    return ", ".join(sorted(privs))


def judge(lines: list[str], database: str, prefix: str) -> Verdict:
    grants = parse(lines)
    wanted = needs(prefix)
    missing: dict[str, list[str]] = {}
    wpforms: list[str] = []
    for need in wanted:
        lacking = grants.missing(database, need.table, need.privileges)
        if lacking and need.wpforms:
            wpforms.append(need.table)
        elif lacking:
            missing[need.table] = lacking
    extras = [f"{_order(grants.global_privs)} ON *.*"] if grants.global_privs else []
    extras += [f"{_order(privs)} ON {name}.*" for name, _, privs in grants.on_databases if privs]
    allowed = {n.table: set(n.privileges) for n in wanted}
    for (db, table), privs in grants.on_tables.items():
        beyond = privs - allowed.get(table, set()) if db == database else privs
        if beyond:
            where = table if db == database else f"`{db}`.`{table}`"
            extras.append(f"{_order(beyond)} on {where}")
    return Verdict(missing, wpforms, extras + grants.other, grants.roles)
