"""`formrelay migrate`: create or upgrade the FormRelay tables; print the GRANTs of a
least-privilege sidecar account (`--print-grants USER`), or create it (`--create-user`).

Migrations run as an admin account (they need CREATE, ALTER, INDEX, DROP, REFERENCES);
the sidecar's own account gets only what sidecar.store.grants.needs() lists. A user, host
or database name that cannot be quoted safely exits 78 with one line; the password is
read from a file and never printed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import mysql.connector

from sidecar import __version__, config, doctor_grants
from sidecar.errors import ConfigError, SchemaError, UsageError
from sidecar.store import Database, DbSettings, Store
from sidecar.store.grants import MIGRATE, AccountError, GrantAdmin, account, grant_statements, needs
from sidecar.store.schema import current_version, has_wordpress, migrate, not_wordpress

DEFAULT_HOST = "%"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true",
                        help="create the tables even in a database without WordPress' options"
                        " table (a wrong WORDPRESS_TABLE_PREFIX or database is more likely)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--print-grants", metavar="USER",
                       help="print the GRANTs the sidecar's own database user needs; change"
                       " nothing")
    which.add_argument("--create-user", metavar="USER",
                       help="after migrating, create this user if absent and grant it exactly"
                       " that (as an admin WORDPRESS_DB_USER; idempotent)")
    parser.add_argument("--password-file", type=Path, metavar="PATH",
                        help="the new user's password (one trailing newline is dropped)")
    parser.add_argument("--host", metavar="HOST",
                        help="the user's host part (default '%%': any host)")


def run(cfg: config.Config, args: argparse.Namespace) -> int:
    user = args.print_grants or args.create_user
    if (args.password_file is not None) != bool(args.create_user):
        raise UsageError(["--create-user and --password-file go together"])
    if args.host is not None and not user:
        raise UsageError(["--host goes with --print-grants or --create-user"])
    host = DEFAULT_HOST if args.host is None else args.host
    try:
        statements = grant_statements(cfg.db_name, cfg.table_prefix, user, host) if user else []
    except AccountError as exc:
        raise ConfigError([str(exc)]) from None
    if args.print_grants:
        print_grants(cfg, account(user, host), statements)
        return 0
    password = _password(args.password_file) if args.create_user else ""
    store = _migrate(cfg, args.force)
    if args.create_user:
        create_user(cfg, store.db, user, host, password)
    return 0


def print_grants(cfg: config.Config, who: str, statements: list[str]) -> None:
    wpforms = sum(n.wpforms for n in needs(cfg.table_prefix))
    print(f"-- formrelay {__version__}: what {who} needs in database {cfg.db_name!r} with table"
          f" prefix {cfg.table_prefix!r}. Run these as an admin account after `formrelay"
          " migrate`, which also runs as an admin account (it needs"
          f" {', '.join(MIGRATE)}), never as this user.")
    print("-- A GRANT on a table that does not exist yet fails (error 1146): the last"
          f" {wpforms} lines need WPForms Pro's entry tables (skip them with WPForms Lite);"
          " `formrelay migrate --create-user` also grants on tables still absent.")
    for statement in statements:
        print(f"{statement};")


def _password(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise ConfigError([f"--password-file {path}: cannot read it ({reason})"]) from None
    text = text[:-1] if text.endswith("\n") else text
    text = text[:-1] if text.endswith("\r") else text
    if not text:
        raise ConfigError([f"--password-file {path} is empty"])
    return text


def _migrate(cfg: config.Config, force: bool) -> Store:
    from sidecar.cli import StartupError, store_for

    store = store_for(cfg)
    if not force and not has_wordpress(store.db, store.prefix):
        raise StartupError(f"refused: {not_wordpress(store.db, store.prefix)}; nothing was"
                           " created (--force creates the tables anyway)")
    try:
        applied = migrate(store.db, store.prefix)
    except SchemaError as exc:
        raise StartupError(str(exc)) from None
    version = current_version(store.db, store.prefix)
    if applied:
        print(f"migrated {cfg.db_name} ({cfg.table_prefix}formrelay_*) to schema version "
              f"{version} (applied {', '.join(map(str, applied))})")
    else:
        print(f"schema of {cfg.db_name} is up to date (version {version})")
    return store


def create_user(cfg: config.Config, db: Database, user: str, host: str, password: str) -> None:
    """Create the account if absent, make its password the file's, grant exactly the needs."""
    from sidecar.cli import StartupError

    admin, who = GrantAdmin(db), account(user, host)
    try:
        created = admin.ensure_user(user, host, password)
        state = "created"
        if not created and not _logs_in(cfg, user, password):
            admin.set_password(user, host, password)
            state = "existed; its password was set from the file"
        elif not created:
            state = "existed; password unchanged (it matches the file)"
        absent = admin.grant(cfg.db_name, cfg.table_prefix, user, host)
        verdict = doctor_grants.judge(admin.grants_of(user, host), cfg.db_name, cfg.table_prefix)
    except mysql.connector.Error as exc:
        said = exc.msg if exc.msg and password not in exc.msg else "message withheld"
        raise StartupError(
            f"cannot create or grant {who} as {cfg.db_user} (MySQL error {exc.errno}: {said}):"
            " --create-user needs an admin account in WORDPRESS_DB_USER/WORDPRESS_DB_PASSWORD"
            " (CREATE USER, and each privilege WITH GRANT OPTION)") from None
    wanted = needs(cfg.table_prefix)
    own = sum(n.privileges != ("SELECT",) for n in wanted)
    later = f" ({len(absent)} not there yet: {', '.join(absent)})" if absent else ""
    print(f"user {who}: {state}")
    print(f"granted SELECT, INSERT, UPDATE, DELETE on {own} FormRelay tables and SELECT on"
          f" {len(wanted) - own} WordPress/WPForms tables{later}")
    if verdict.extras:
        print(f"note: {who} also has more than the sidecar needs, not revoked here:"
              f" {'; '.join(verdict.extras)}")


def _logs_in(cfg: config.Config, user: str, password: str) -> bool:
    """Whether the account logs in with this password from here (the admin's server)."""
    admin = DbSettings.from_config(cfg)
    db = Database(DbSettings(admin.host, user, password, cfg.db_name, admin.port,
                             admin.unix_socket))
    try:
        db.connection()
    except mysql.connector.Error:
        return False
    db.close()
    return True
