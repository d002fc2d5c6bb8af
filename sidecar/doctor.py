"""`formrelay doctor`: is this installation set up right? One line per check.

    OK   database: fr_site on db:3306 as formrelay
    WARN privileges: the user has ALL PRIVILEGES ON *.* (every database) Fix: ...
    FAIL partner: HEAD / answered HTTP 401: the partner refused ... Fix: ...

Exit status: the worst line (0 OK, 1 WARN, 2 FAIL). The doctor never refuses to
start: settings that are missing or invalid are FAIL lines, and it checks what
it still can. `--quick` runs only the local checks (configuration, database,
WordPress prefix, schema) for container healthchecks. No line shows a secret,
a submitted value or a file name (docs/doctor.md).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum

from sidecar import config
from sidecar.errors import ConfigError


class Level(IntEnum):
    OK = 0
    WARN = 1
    FAIL = 2


@dataclass(frozen=True)
class Result:
    check: str
    level: Level
    detail: str
    fix: str = ""  # plain words: what to do (empty when OK)

    def line(self) -> str:
        return (f"{self.level.name:<4} {self.check}: {self.detail}"
                + (f" Fix: {self.fix}" if self.fix else ""))


def ok(check: str, detail: str) -> Result:
    return Result(check, Level.OK, detail)


def warn(check: str, detail: str, fix: str) -> Result:
    return Result(check, Level.WARN, detail, fix)


def fail(check: str, detail: str, fix: str) -> Result:
    return Result(check, Level.FAIL, detail, fix)


# Settings some command cannot do without: missing, they are FAILs here.
NEEDED = {"db_user": "every command", "db_name": "every command",
          "shared_secret": "web, worker and run", "partner_url": "worker and run",
          "uploads_dir": "worker and run"}


def check_config(environ: Mapping[str, str]) -> tuple[config.Config | None, list[Result]]:
    """The configuration with its invalid settings left out (so the rest can be checked),
    and one FAIL per problem; (None, ...) when even that cannot be built."""
    results: list[Result] = []
    bad: set[str] = set()
    try:
        cfg: config.Config | None = config.load("doctor", environ)
    except ConfigError as exc:
        for problem in exc.problems:
            results.append(fail("configuration", problem, "correct that setting"))
        bad = {s.env for s in config.SETTINGS if any(p.startswith(s.env + " ")
                                                      for p in exc.problems)}
        try:
            cfg = config.load("doctor", {k: v for k, v in environ.items() if k not in bad})
        except ConfigError:
            cfg = None
    for name, who in NEEDED.items():
        setting = config.SETTINGS_BY_NAME[name]
        if cfg is not None and not getattr(cfg, name) and setting.env not in bad:
            results.append(fail("configuration", f"{setting.env} is not set ({who} need it)",
                                f"set {setting.env}"))
    if not results:
        results.append(ok("configuration", "every setting is valid"))
    return cfg, results


def run(args: argparse.Namespace, environ: Mapping[str, str] | None = None,
        out: Callable[[str], None] = print) -> int:
    """Print each check's line as it finishes; return the worst level."""
    from sidecar.doctor_checks import connect, local_checks
    from sidecar.doctor_remote import remote_checks

    cfg, results = check_config(os.environ if environ is None else environ)
    for result in results:
        out(result.line())

    def report(result: Result) -> None:
        results.append(result)
        out(result.line())

    if cfg is None:
        return Level.FAIL
    db = None
    if cfg.db_user and cfg.db_name:
        db, result = connect(cfg)
        report(result)
    try:
        for result in local_checks(cfg, db, quick=args.quick,
                                   repair_counts=getattr(args, "repair_counts", False)
                                   ) if db is not None else ():
            report(result)
        for result in () if args.quick else remote_checks(cfg, db):
            report(result)
    finally:
        if db is not None:
            db.close()
    return max(r.level for r in results)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="only the local checks (configuration, database, schema),"
                        " e.g. for a container healthcheck")
    parser.add_argument("--repair-counts", action="store_true",
                        help="rewrite the status counts table from the jobs table when they"
                        " differ (the counts line says so)")
