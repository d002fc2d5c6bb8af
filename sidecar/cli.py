"""The `formrelay` command.

Start-up problems end the command with one clear line each, never a traceback, and
never a secret: exit status 78 (EX_CONFIG) for the configuration, which no restart
fixes (a supervisor can stop on it: systemd's RestartPreventExitStatus), and 2 for the
database or the schema, which may come right (a database still starting), and for
command-line flags (argparse's usage errors).
`status` exits 3 (Nagios' UNKNOWN) for either.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import secrets
import signal
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NoReturn

import mysql.connector

from sidecar import __version__, config, doctor, keys_command, logs, metrics, migrate_command
from sidecar.breaker import Policy
from sidecar.errors import ConfigError, SchemaError, UsageError
from sidecar.monitor import start as start_monitor
from sidecar.partner_registry import publish_partners
from sidecar.partner_sim import command as partner_sim
from sidecar.partners import keys
from sidecar.queue import build_huey, describe
from sidecar.status_command import UNKNOWN, cmd_status, waiting
from sidecar.status_command import add_arguments as _status_arguments
from sidecar.store import Database, DbSettings, Store
from sidecar.store.db import driver
from sidecar.store.schema import check

log = logging.getLogger("formrelay")
EX_CONFIG = 78  # sysexits.h: the configuration is wrong; restarting will not help


class StartupError(Exception):
    """A problem that stops the command before it starts working; one line each."""

    def __init__(self, *lines: str) -> None:
        self.lines = lines
        super().__init__("; ".join(lines))


def store_for(cfg: config.Config) -> Store:
    db = Database(DbSettings.from_config(cfg))
    try:
        db.connection()
    except mysql.connector.Error as exc:
        where = f"{cfg.db_name} on {cfg.db_host} as {cfg.db_user}"
        raise StartupError(f"cannot connect to database {where}: {exc.msg}") from None
    return Store(db, cfg.table_prefix)


def _checked_store(cfg: config.Config) -> Store:
    store = store_for(cfg)
    try:
        check(store.db, store.prefix)
    except SchemaError as exc:
        raise StartupError(str(exc)) from None
    return store


def cmd_resume(cfg: config.Config, args: argparse.Namespace) -> int:
    from sidecar.doorbell import ring_due
    from sidecar.pause import Pause
    from sidecar.tasks import register

    store = _checked_store(cfg)
    named = [(p.name, key) for p, key in keys(cfg.partners)] or [("", "")]
    names = [name for name, _ in named]
    if args.partner and args.partner not in names:
        raise ConfigError([f"--partner {args.partner}: no such partner (the settings name"
                           f" {', '.join(n for n in names if n) or 'none'})"])
    ended = []
    for name, key in named:
        if args.partner not in (None, name):
            continue
        if (was := Pause(store, Policy(), partner=key).resume(args.actor)) is not None:
            ended.append((name, was))
    if not ended:
        print("delivery was not paused")
        return 0
    jobs, documents = ring_due(store, register(build_huey(cfg), _no_engine))
    for name, was in ended:
        to = f" to {name}" if len(names) > 1 else ""
        print(f"delivery{to} resumed (paused since {was.paused_at} UTC: {was.cause})")
    print(f"rang {jobs} due jobs and {documents} due documents")
    return 0


def _resume_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--actor", default=f"cli:{getpass.getuser()}",
                        help="who resumes, for the log (default: cli:<login>)")
    parser.add_argument("--partner", metavar="NAME",
                        help="resume only this partner (default: every paused partner)")


class Heartbeat:
    """This process in {prefix}formrelay_workers: a row written now and every
    FORMRELAY_HEARTBEAT_SECONDS from a daemon thread, deleted when the process stops cleanly.

    Its id, "host:pid:random" (random: a restarted container often has the same host
    and pid), begins every lease owner of this process's engine, its process workers'
    included, so the sweep can give back the work of a worker that stopped beating.
    """

    def __init__(self, store: Store, cfg: config.Config) -> None:
        self.store, self.cfg, self.every = store, cfg, cfg.heartbeat_seconds
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.worker_id = f"{self.host[:64]}:{self.pid}:{secrets.token_hex(4)}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def beat(self) -> None:
        self.store.heartbeat(self.worker_id, self.host, self.pid, __version__,
                             self.cfg.worker_type, self.cfg.workers, self.every)
        metrics.heartbeat()

    def start(self) -> None:
        self.beat()
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.beat()
            except Exception as exc:  # a database hiccup must not end the worker; next beat
                log.warning("heartbeat failed: %s", exc)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:  # not started: a stop that came mid-start
            self._thread.join(timeout=5)
        self.store.forget_worker(self.worker_id)
        if self._thread.is_alive():  # a beat slower than that (a busy database) would write
            self._thread.join(timeout=30)  # the row again after it was forgotten
            self.store.forget_worker(self.worker_id)


def _app(cfg: config.Config, store: Store, tasks: Any) -> Any:
    from sidecar.ops_http import health_routes
    from sidecar.retention import Retention
    from sidecar.seal import Opener
    from sidecar.web import create_app

    return create_app(store, cfg.shared_secret, tasks, retention=Retention.from_config(cfg),
                      templates_dir=cfg.templates_dir, health=health_routes(cfg, store),
                      opener=Opener.from_config(cfg))


def _serve(cfg: config.Config, app: Any) -> Callable[[], None]:
    """Start the HTTP server in a thread; return the function that stops it."""
    from sidecar.ops_http import serve

    return serve(app, cfg.listen)


def _consumer(cfg: config.Config, store: Store, worker_id: str) -> tuple[Any, Any]:
    """The Huey consumer with this process's engine behind the tasks, and the tasks.

    The engine's lease owners begin with `worker_id` (the heartbeat's). Work that came
    due while no worker ran is rung first.
    """
    from sidecar.doorbell import ring_due
    from sidecar.engine import Engine
    from sidecar.queue import create_consumer
    from sidecar.tasks import build_engine, register

    huey = build_huey(cfg)
    engines: list[Engine] = []  # the tasks ring through the engine built on them
    tasks = register(huey, lambda: engines[0], cfg)
    engines.append(build_engine(cfg, tasks, worker_id))
    ring_due(store, tasks)
    kind = "processes" if cfg.worker_type == "process" else "threads"
    log.info("queue: %s, %d worker %s; MySQL driver: %s", describe(huey), cfg.workers, kind,
             driver())
    return create_consumer(huey, cfg), tasks


def _work(store: Store, consumer: Any, heartbeat: Heartbeat) -> None:
    """Run the consumer with a heartbeat until SIGINT/SIGTERM; then give back what is left.

    Steps still in flight after the shutdown timeout (or interrupted) keep a lease owned by
    "<heartbeat id>:..." (this process's engine, forked into its process workers): released
    here, so the work is due again at once instead of after its lease expires. A worker
    killed outright cannot do this: the sweep does it once its heartbeat stops.
    """
    try:  # a SIGTERM right after the first beat (before Huey's handlers) still forgets it
        heartbeat.start()
        consumer.run()
    finally:
        for _, child in consumer.worker_threads:  # a process worker that ignored its interrupt
            if getattr(child, "pid", None) and child.is_alive():
                child.kill()  # (its lease is released below; multiprocessing would wait on it)
        released = store.release_leases_of(f"{heartbeat.worker_id}:")
        if released:
            log.warning("released %d leases of steps that did not finish before shutdown",
                        released)
        heartbeat.stop()


def cmd_backfill(cfg: config.Config, args: argparse.Namespace) -> int:
    from sidecar import delivery_settings
    from sidecar.backfill import NotDelivering, backfill
    from sidecar.errors import SubmissionError
    from sidecar.tasks import register

    store = _checked_store(cfg)
    rules = delivery_settings.load(store, cfg.form_templates)
    ring = None
    if not args.dry_run and rules.creates_jobs:
        tasks = register(build_huey(cfg), _no_engine)
        ring = tasks.ring_record
    try:
        result = backfill(store, ring, settings=rules, form_id=args.form, since=args.since,
                          dry_run=args.dry_run, max_attempts=cfg.max_attempts,
                          count_skipped=True)
    except NotDelivering as exc:
        print(f"formrelay backfill: refused, no job created: {exc}"
              f" ({waiting(store)} queued jobs still finish)", file=sys.stderr)
        return 1
    except SubmissionError as exc:
        raise StartupError(str(exc)) from None
    forms = ", ".join(f"form {k}: {v}" for k, v in sorted(result.by_form.items()))
    print(f"{result.found} stored entries without a job" + (f" ({forms})" if forms else ""))
    for form, n in sorted(result.skipped.items()):
        print(f"skipped {n} entries of form {form}: {result.reasons[form]}")
    if args.dry_run:
        print("dry run: no jobs created; entry ids: "
              + (" ".join(map(str, result.entry_ids)) or "none"))
    else:
        print(f"created {result.created} jobs")
    return 0


def _no_engine() -> NoReturn:
    raise RuntimeError("this process only enqueues")


def _since(raw: str) -> datetime:
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a date, e.g. 2026-11-01") from None


def _backfill_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--form", type=int, help="only entries of this form id")
    parser.add_argument("--since", type=_since,
                        help="only entries stored on or after (UTC); entries from before the"
                        " plugin's activation, which the sweep leaves alone, are included")
    parser.add_argument("--dry-run", action="store_true", help="count, create nothing")


def cmd_web(cfg: config.Config, args: argparse.Namespace) -> int:
    from waitress import serve

    from sidecar.tasks import register

    store = _checked_store(cfg)
    publish_partners(store, cfg)
    huey = build_huey(cfg)
    app = _app(cfg, store, register(huey, _no_engine))
    log.info("queue: %s; MySQL driver: %s", describe(huey), driver())
    host, _, port = cfg.listen.rpartition(":")
    log.info("http listening on %s", cfg.listen)
    monitor = start_monitor(store, cfg)  # notices "no worker" from the web process too
    try:
        serve(app, host=host.strip("[]"), port=int(port), threads=8)
    finally:
        monitor.stop()
    return 0


def cmd_worker(cfg: config.Config, args: argparse.Namespace) -> int:
    from sidecar import ops_http

    store = _checked_store(cfg)
    publish_partners(store, cfg)
    ops = ops_http.start(cfg, store)  # before any fork: metrics; FORMRELAY_WORKER_LISTEN
    heartbeat = Heartbeat(store, cfg)
    consumer, _ = _consumer(cfg, store, heartbeat.worker_id)
    monitor = start_monitor(store, cfg)
    try:
        _work(store, consumer, heartbeat)
    finally:
        monitor.stop()
        ops.stop()
    return 0


def cmd_run(cfg: config.Config, args: argparse.Namespace) -> int:
    from sidecar import ops_http

    store = _checked_store(cfg)
    publish_partners(store, cfg)
    ops = ops_http.start(cfg, store, listen=False)  # the main app serves health and metrics
    heartbeat = Heartbeat(store, cfg)
    consumer, tasks = _consumer(cfg, store, heartbeat.worker_id)  # the queue exists before
    stop_http = _serve(cfg, _app(cfg, store, tasks))  # /readyz says ready
    monitor = start_monitor(store, cfg)
    try:
        _work(store, consumer, heartbeat)
    finally:
        monitor.stop()
        stop_http()
        ops.stop()
    return 0


def _doctor(cfg: config.Config, args: argparse.Namespace) -> int:
    return doctor.run(args)  # reads the settings itself: invalid ones are its FAIL lines


Command = Callable[[config.Config, argparse.Namespace], int]
HANDLERS: dict[str, tuple[Command, str]] = {
    "keys": (keys_command.run, keys_command.HELP),
    "migrate": (migrate_command.run, "create or upgrade the FormRelay tables (idempotent);"
                " --print-grants/--create-user: the sidecar's least-privilege user"),
    "run": (cmd_run, "HTTP endpoints and a worker in one process"),
    "web": (cmd_web, "HTTP endpoints only"),
    "worker": (cmd_worker, "a worker only (several may run, on several hosts)"),
    "status": (cmd_status, "schema version, job counts, due work, delivery state; Nagios exit"
               " status (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)"),
    "doctor": (_doctor, "check the set-up, one line each: OK/WARN/FAIL and the fix"),
    "backfill": (cmd_backfill, "create jobs for stored WPForms entries that have none"),
    "resume": (cmd_resume, "end an outage pause now (e.g. after fixing the partner token)"),
    "partner-sim": (partner_sim.run, partner_sim.HELP),
}
COMMANDS: tuple[str, ...] = tuple(HANDLERS)
# Commands with options of their own: name -> adds them to the command's parser.
ARGUMENTS: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "keys": keys_command.add_arguments,
    "migrate": migrate_command.add_arguments,
    "status": _status_arguments,
    "doctor": doctor.add_arguments,
    "backfill": _backfill_arguments,
    "resume": _resume_arguments,
    "partner-sim": partner_sim.add_arguments,
}
SERVICES = ("run", "web", "worker", "partner-sim")  # long-running: SIGINT/SIGTERM are a normal stop


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="formrelay", description="Deliver WPForms submissions to a partner API.",
        epilog="Settings come from the environment (and FORMRELAY_CONFIG, a TOML file).")
    parser.add_argument("--version", action="version", version=f"formrelay {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, help_text) in HANDLERS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        if name in ARGUMENTS:
            ARGUMENTS[name](command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in SERVICES:  # until the consumer installs its own, stop cleanly on TERM too
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    logs.setup()  # until the settings say otherwise
    status = args.command == "status"  # Nagios' UNKNOWN for any start-up problem
    try:
        if args.command == "doctor":
            logs.setup(os.environ.get("FORMRELAY_LOG_LEVEL", "warning").lower())
            code = doctor.run(args)  # it reports invalid settings instead of refusing
        else:
            cfg = config.load(args.command)
            logs.setup(cfg.log_level, cfg.log_format)
            code = HANDLERS[args.command][0](cfg, args)
        sys.stdout.flush()  # a reader that left shows up here, inside the try
        return code
    except ConfigError as exc:
        for line in exc.problems:
            print(f"formrelay {args.command}: {line}", file=sys.stderr)
        return UNKNOWN if status else 2 if isinstance(exc, UsageError) else EX_CONFIG
    except StartupError as exc:
        for line in exc.lines:
            print(f"formrelay {args.command}: {line}", file=sys.stderr)
        return UNKNOWN if status else 2
    except KeyboardInterrupt:  # a stop request that came before the consumer's own handlers
        return 0 if args.command in SERVICES else 130
    except BrokenPipeError:  # `formrelay status | head`: the reader left; no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # quiet exit-time flush
        return 141  # what a shell reports for a command killed by SIGPIPE (128 + 13)


if __name__ == "__main__":
    sys.exit(main())
