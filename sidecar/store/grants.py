"""The sidecar's least-privilege database account: what it needs, as GRANT statements, and
the admin-side SQL that creates it (`formrelay migrate --print-grants / --create-user`).

What the running sidecar needs is defined here once (the doctor judges SHOW GRANTS against
`needs()`): SELECT, INSERT, UPDATE, DELETE on each table the migration files create, and
SELECT on the WordPress and WPForms tables it reads (sidecar/store/wpforms.py, doctor.py,
incidents.py). Not `wpforms_entry_fields`: every value is in `wpforms_entries.fields`.
Migrations need more (CREATE, ALTER, INDEX, DROP, REFERENCES) and run as an admin account.

Names never reach SQL unquoted: the database and tables as backtick identifiers, the user
and host as string literals, both validated first (`AccountError`, one line).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mysql.connector import errorcode
from mysql.connector.errors import ProgrammingError

from sidecar.store.db import Database
from sidecar.store.schema import load_migrations

RUN = ("SELECT", "INSERT", "UPDATE", "DELETE")
READ = ("SELECT",)
MIGRATE = ("CREATE", "ALTER", "INDEX", "DROP", "REFERENCES")
WORDPRESS_READS = ("options", "posts", "postmeta")
WPFORMS_READS = ("wpforms_entries", "wpforms_entry_meta")  # WPForms Pro only
CREATE_TABLE = re.compile(r"CREATE TABLE IF NOT EXISTS (\S+)")
# Portable account names: MySQL allows 32 characters; no quote, backslash or space.
USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}")
# A host name, IP (v4/v6), `%`/`_` wildcard pattern, or address/netmask.
HOST = re.compile(r"[A-Za-z0-9_.%:-]{1,255}(?:/[0-9.]{1,15})?")


class AccountError(ValueError):
    """A user, host or database name that cannot be used safely in a GRANT."""


@dataclass(frozen=True)
class Need:
    table: str
    privileges: tuple[str, ...]
    wpforms: bool = False  # a WPForms Pro table: absent (and ungranted) with Lite


def formrelay_tables(prefix: str) -> list[str]:
    """Every table the migration files create, with this prefix."""
    return sorted({m[1] for mig in load_migrations(prefix) for st in mig.statements
                   for m in [CREATE_TABLE.search(st)] if m})


def needs(prefix: str) -> list[Need]:
    """What the running sidecar needs, table by table: its own first, then what it reads."""
    own = [Need(t, RUN) for t in formrelay_tables(prefix)]
    return (own + [Need(f"{prefix}{t}", READ) for t in WORDPRESS_READS]
            + [Need(f"{prefix}{t}", READ, wpforms=True) for t in WPFORMS_READS])


def identifier(name: str) -> str:
    """A database or table name as a backtick-quoted identifier."""
    if not name or len(name) > 64 or "\0" in name or name != name.rstrip():
        raise AccountError(f"not a usable database or table name: {name!r}")
    return "`" + name.replace("`", "``") + "`"


def account(user: str, host: str) -> str:
    """'user'@'host', both validated (they contain no quote or backslash to escape)."""
    if not USER.fullmatch(user):
        raise AccountError(f"not a usable user name: {user!r} (1-32 letters, digits, _ . -)")
    if not HOST.fullmatch(host):
        raise AccountError(f"not a usable host: {host!r} (a host name, IP, pattern with % or"
                           " _, or address/netmask)")
    return f"'{user}'@'{host}'"


@dataclass(frozen=True)
class Grant:
    table: str
    privileges: str  # "SELECT, INSERT"
    target: str  # `db`.`table`, quoted
    who: str  # 'user'@'host', quoted

    def sql(self, extra: str = "") -> str:
        return f"GRANT {self.privileges}{extra} ON {self.target} TO {self.who}"


def grants(database: str, prefix: str, user: str, host: str) -> list[Grant]:
    """One GRANT per table, exactly `needs(prefix)`; WPForms' tables last."""
    who, db = account(user, host), identifier(database)
    return [Grant(n.table, ", ".join(n.privileges), f"{db}.{identifier(n.table)}", who)
            for n in needs(prefix)]


def grant_statements(database: str, prefix: str, user: str, host: str) -> list[str]:
    return [g.sql() for g in grants(database, prefix, user, host)]


class GrantAdmin:
    """Run as an admin account (CREATE USER, and each privilege WITH GRANT OPTION)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def ensure_user(self, user: str, host: str, password: str) -> bool:
        """CREATE USER IF NOT EXISTS; True when it was created now (no note that it exists)."""
        account(user, host)  # validated; bound below, as `%s` in a host is substituted
        with self.db.transaction() as cur:
            cur.execute("CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s",
                        (user, host, password))
            cur.execute("SHOW WARNINGS")
            return not cur.fetchall()

    def set_password(self, user: str, host: str, password: str) -> None:
        account(user, host)
        with self.db.transaction() as cur:
            cur.execute("ALTER USER %s@%s IDENTIFIED BY %s", (user, host, password))

    def existing_tables(self, names: list[str]) -> set[str]:
        with self.db.transaction() as cur:
            cur.execute("SELECT table_name AS name FROM information_schema.tables"
                        " WHERE table_schema = DATABASE() AND table_name IN"
                        f" ({', '.join(['%s'] * len(names))})", names)
            return {str(r["name"]) for r in cur.fetchall()}

    def grant(self, database: str, prefix: str, user: str, host: str) -> list[str]:
        """Apply `grant_statements`; return the tables that do not exist (yet).

        MariaDB and MySQL refuse a table GRANT on a missing table (error 1146) unless
        CREATE is among the privileges: so for those, grant with CREATE and revoke CREATE
        at once, leaving exactly the privileges needed when WordPress, WPForms Pro or a
        migration creates the table later.
        """
        wanted = grants(database, prefix, user, host)
        present = self.existing_tables([g.table for g in wanted])
        absent = [g.table for g in wanted if g.table not in present]
        with self.db.transaction() as cur:
            for g in wanted:
                if g.table in present:
                    cur.execute(g.sql())
                    continue
                cur.execute(g.sql(", CREATE"))
                cur.execute(f"REVOKE CREATE ON {g.target} FROM {g.who}")
        return absent

    def grants_of(self, user: str, host: str) -> list[str]:
        """SHOW GRANTS of the account ([] when it does not exist)."""
        try:
            with self.db.transaction() as cur:
                cur.execute(f"SHOW GRANTS FOR {account(user, host)}")
                return [str(next(iter(r.values()))) for r in cur.fetchall()]
        except ProgrammingError as exc:
            if exc.errno != errorcode.ER_NONEXISTING_GRANT:
                raise
            return []
