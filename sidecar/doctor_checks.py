"""The doctor's checks of this host and the database: connection, privileges, WordPress
prefix, schema, status counts, WPForms tables, uploads, clock. Each yields `Result`s
(sidecar.doctor)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import mysql.connector

from sidecar import doctor_grants, doctor_seal
from sidecar.config import Config
from sidecar.doctor import Level, Result, fail, ok, warn
from sidecar.seal import NotOpened, Opener, UnknownKey
from sidecar.store import Database, DbSettings, Store
from sidecar.store.doctor import DoctorReads
from sidecar.store.schema import current_version, has_wordpress, latest_version, not_wordpress
from sidecar.submission import from_snapshot, locate

SAMPLE_JOBS = 20  # the newest jobs whose files the uploads check looks for
SKEW_WARN_SECONDS = 5.0
GRANT_HINT = ("`formrelay migrate --print-grants USER` prints the GRANT lines the sidecar"
              " needs; `--create-user` applies them as an admin account (docs/doctor.md)")


def connect(cfg: Config) -> tuple[Database | None, Result]:
    db = Database(DbSettings.from_config(cfg))
    where = f"{cfg.db_name} on {cfg.db_host} as {cfg.db_user}"
    try:
        db.connection()
    except mysql.connector.Error as exc:
        return None, fail("database", f"cannot connect to {where}: {exc.msg}",
                          "check WORDPRESS_DB_HOST, WORDPRESS_DB_USER, WORDPRESS_DB_PASSWORD"
                          " and WORDPRESS_DB_NAME, and that the server lets this host in")
    return db, ok("database", where)


def local_checks(cfg: Config, db: Database, quick: bool,
                 repair_counts: bool = False) -> Iterator[Result]:
    wordpress = has_wordpress(db, cfg.table_prefix)
    yield prefix_check(db, cfg.table_prefix, wordpress)
    schema = schema_check(db, cfg.table_prefix, wordpress)
    yield schema
    if quick:
        return
    if schema.level == Level.OK:
        yield counts_check(db, cfg.table_prefix, repair_counts)
    reads = DoctorReads(db, cfg.table_prefix)
    yield privileges_check(reads, cfg.db_name, cfg.table_prefix)
    if wordpress:
        yield wpforms_check(reads)
    yield from uploads_checks(reads, cfg)
    if schema.level == Level.OK:
        yield doctor_seal.rows_check(Store(db, cfg.table_prefix), Opener.from_config(cfg))
    yield clock_check(reads)


def counts_check(db: Database, prefix: str, repair: bool) -> Result:
    """The status counts table (migration 0008) against GROUP BY over the jobs table."""
    try:
        drift = Store(db, prefix).recount_jobs(repair=repair)
    except mysql.connector.Error as exc:
        return warn("counts", f"cannot compare the status counts: {exc.msg}", GRANT_HINT)
    if not drift:
        return ok("counts", "the status counts agree with the jobs table")
    found = ", ".join(f"form {form} {status} {n:+d}" for (form, status), n
                      in sorted(drift.items())[:5]) + (" ..." if len(drift) > 5 else "")
    if repair:
        return ok("counts", f"repaired the status counts (they were off: {found})")
    return warn("counts", f"the status counts differ from the jobs table: {found} (a sidecar"
                " older than schema 8 ran after the migration, or rows were changed by hand)",
                "run `formrelay doctor --repair-counts`: it rewrites them from the jobs table")


def prefix_check(db: Database, prefix: str, wordpress: bool) -> Result:
    if wordpress:
        return ok("wordpress", f"{prefix}options exists: a WordPress database with prefix"
                  f" {prefix!r}")
    return fail("wordpress", not_wordpress(db, prefix),
                "set WORDPRESS_TABLE_PREFIX to WordPress' $table_prefix (wp-config.php) and"
                " WORDPRESS_DB_NAME to its DB_NAME")


def schema_check(db: Database, prefix: str, wordpress: bool) -> Result:
    have, want = current_version(db, prefix), latest_version()
    if have == want:
        return ok("schema", f"version {have}")
    if have == 0 and not wordpress:
        return fail("schema", f"no FormRelay tables ({prefix}formrelay_*) with this prefix",
                    "fix the database or the prefix first (see the wordpress line)")
    if have == 0:
        return fail("schema", f"the FormRelay tables ({prefix}formrelay_*) are missing",
                    "run `formrelay migrate` (or activate the FormRelay Bridge plugin)")
    if have < want:
        return fail("schema", f"version {have}, this sidecar needs {want}",
                    "run `formrelay migrate`")
    return fail("schema", f"version {have} is newer than this sidecar's ({want})",
                "upgrade the sidecar to the plugin's version")


def privileges_check(reads: DoctorReads, database: str, prefix: str) -> Result:
    try:
        v = doctor_grants.judge(reads.grants(), database, prefix)
    except mysql.connector.Error as exc:
        return warn("privileges", f"SHOW GRANTS failed (MySQL error {exc.errno})",
                    "check the grants by hand (docs/doctor.md)")
    extras = f"more than it needs: {'; '.join(v.extras)}" if v.extras else ""
    roles = "; roles granted to the user were not examined" if v.roles else ""
    if v.missing:
        lacking = "; ".join(f"{', '.join(p)} on {t}" for t, p in v.missing.items())
        also = f"; it also has {extras}" if extras else ""
        return fail("privileges", f"the user lacks {lacking}{also}{roles}", GRANT_HINT)
    if v.extras:
        return warn("privileges", f"the user has {extras}{roles}",
                    f"a least-privilege user is advised: {GRANT_HINT}")
    if v.missing_wpforms:
        return warn("privileges", f"the user cannot SELECT {', '.join(v.missing_wpforms)}"
                    " (WPForms Pro's entry tables): with Pro, no reconciliation of a lost"
                    f" submission and no backfill{roles}",
                    f"with WPForms Pro, grant SELECT on them ({GRANT_HINT}); nothing to do"
                    " with WPForms Lite")
    return ok("privileges", "exactly what the sidecar needs (`formrelay migrate --print-grants`;"
              f" migrations run as an admin account){roles}")


def wpforms_check(reads: DoctorReads) -> Result:
    prefix = reads.prefix
    tables = reads.existing_tables([f"{prefix}wpforms_entries", f"{prefix}wpforms_entry_meta",
                                    f"{prefix}posts"])
    forms = reads.wpforms_form_count() if f"{prefix}posts" in tables else 0
    if {f"{prefix}wpforms_entries", f"{prefix}wpforms_entry_meta"} <= tables:
        return ok("wpforms", f"WPForms Pro entry tables present, {forms} published form(s):"
                  " reconciliation and backfill work")
    return warn("wpforms", f"no WPForms entry tables (WPForms Lite, or WPForms not installed),"
                f" {forms} published form(s): deliveries come only from the plugin's snapshots,"
                " so there is no reconciliation of a lost submission and no backfill",
                "nothing to do with Lite; with WPForms Pro, check the prefix and database")


def uploads_checks(reads: DoctorReads, cfg: Config) -> Iterator[Result]:
    uploads = cfg.uploads_dir
    if uploads is None:
        return  # the configuration line said it is not set
    if not os.access(uploads, os.R_OK | os.X_OK):
        yield fail("uploads", f"{uploads} is not readable by this user (uid {os.getuid()})",
                   "mount WordPress' uploads directory readable for the sidecar's user")
        return
    snapshots = reads.recent_snapshots(SAMPLE_JOBS, include_completed=not
                                       cfg.delete_delivered_files)
    opener = Opener.from_config(cfg)
    present = missing = 0
    for key, text in snapshots:
        try:
            submission, _ = from_snapshot(opener.open_snapshot(key, text))
        except (UnknownKey, NotOpened):  # the sealing check says so
            continue
        for ref in submission.files if submission else ():
            where = locate(ref, uploads, lambda _: None)
            if where and _readable_inside(Path(where), uploads):
                present += 1
            else:
                missing += 1
    total, sample = present + missing, f"the {len(snapshots)} newest jobs with their values"
    if total == 0:
        yield ok("uploads", f"{uploads} is readable; {sample} reference no file")
    elif missing == 0:
        yield ok("uploads", f"{uploads} is readable; all {total} files of {sample} are there")
    else:
        fix = ("check that FORMRELAY_UPLOADS_DIR is WordPress' uploads directory"
               " (wp-content/uploads), mounted whole, with the same layout")
        detail = f"{missing} of {total} files of {sample} are missing or unreadable"
        yield (fail if present == 0 else warn)("uploads", detail, fix)


def _readable_inside(path: Path, uploads: Path) -> bool:
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        return False
    return real.is_relative_to(uploads.resolve()) and real.is_file() and os.access(real, os.R_OK)


def clock_check(reads: DoctorReads) -> Result:
    before = time.time()
    server = reads.utc_now().replace(tzinfo=UTC).timestamp()
    after = time.time()
    return judge_clock(server - (before + after) / 2, after - before)


def judge_clock(skew: float, round_trip: float) -> Result:
    """`skew`: the database's clock minus this host's, in seconds."""
    if abs(skew) <= SKEW_WARN_SECONDS + round_trip / 2:
        return ok("clock", f"within {max(abs(skew), 0.001):.3f} s of the database's")
    way = "behind" if skew > 0 else "ahead of"
    return warn("clock", f"this host's clock is {abs(skew):.1f} s {way} the database's",
                "synchronise the clocks (NTP): signed requests between WordPress and the"
                " sidecar are refused when their clocks differ by over 5 minutes")
