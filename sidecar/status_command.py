"""`formrelay status [--json]`: what the queue and delivery are doing, with a Nagios exit.

Exit status: 0 OK, 1 WARNING, 2 CRITICAL, judged by sidecar.health (the one
judgement healthz, incidents and metrics share), and 3 UNKNOWN when the state
cannot be read: the database unreachable, the configuration invalid, or the
schema not this sidecar's (missing, behind or ahead). The text form keeps its
lines (schema, claims, jobs, due now, delivery, delivered forms, workers) and
adds `state:` and one `problem:` line each; the JSON form is one object.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import mysql.connector

from sidecar import config, delivery_settings, partners
from sidecar.breaker import Policy
from sidecar.health import DeliveryState, read_state
from sidecar.pause import Pause
from sidecar.states import WAITING
from sidecar.store import Database, DbSettings, Store, Worker
from sidecar.store.schema import (
    MIGRATE_HINT,
    current_version,
    has_wordpress,
    latest_version,
    not_wordpress,
)

UNKNOWN = 3  # Nagios: the state could not be judged


def cmd_status(cfg: config.Config, args: argparse.Namespace) -> int:
    db = Database(DbSettings.from_config(cfg))
    try:
        db.connection()
    except mysql.connector.Error as exc:
        where = f"{cfg.db_name} on {cfg.db_host} as {cfg.db_user}"
        return _unknown(args, "database", f"cannot connect to database {where}: {exc.msg}")
    store = Store(db, cfg.table_prefix)
    have, want = current_version(db, store.prefix), latest_version()
    schema_problem = _schema_problem(store, have, want)
    if args.json:
        if schema_problem:
            return _unknown(args, "schema", schema_problem, {"version": have, "sidecar": want})
        found = as_json(store, read_state(store), cfg, have)
        print(json.dumps(found, indent=2))
        return int(found["exit"])
    print(f"schema: version {have} (this sidecar: {want})"
          + (f" - {schema_problem}" if schema_problem else ""))
    if have:
        claims = "FOR UPDATE SKIP LOCKED" if store.skip_locked else "row-lock fallback"
        print(f"claims: {claims}")
        counts = store.counts_by_status()
        print("jobs: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"))
        print(f"due now: {store.count_due()}")
        print("\n".join(_delivery_lines(store, cfg)))
        print("\n".join(_delivered_lines(store, cfg)))
    if have >= 2:  # the workers table came with schema version 2
        _print_workers(store.workers())
    if schema_problem:
        return UNKNOWN
    state = read_state(store)
    backlog = cfg.backlog_minutes * 60
    print(f"state: {state.severity(backlog).name}")
    for p in state.problems(backlog):
        print(f"problem: {p.severity.name} {p.kind}: {p.reason}")
    return int(state.severity(backlog))


def _schema_problem(store: Store, have: int, want: int) -> str:
    if have == want:
        return ""
    if have == 0 and not has_wordpress(store.db, store.prefix):
        return not_wordpress(store.db, store.prefix)  # never "run migrate" for a wrong prefix
    if have > want:
        return "newer than this sidecar: upgrade the sidecar"
    return MIGRATE_HINT


def _unknown(args: argparse.Namespace, kind: str, reason: str,
             schema: dict[str, int] | None = None) -> int:
    if args.json:
        print(json.dumps({"severity": "UNKNOWN", "exit": UNKNOWN, "schema": schema,
                          "problems": [{"kind": kind, "severity": "UNKNOWN", "reason": reason}]},
                         indent=2))
    else:
        print(f"formrelay status: {reason}")
    return UNKNOWN


def as_json(store: Store, state: DeliveryState, cfg: config.Config, have: int) -> dict[str, Any]:
    backlog = cfg.backlog_minutes * 60
    severity = state.severity(backlog)
    rules = delivery_settings.load(store, cfg.form_templates)
    return {
        "schema": {"version": have, "sidecar": latest_version()},
        "claims": "skip_locked" if store.skip_locked else "row_lock",
        "counts": store.counts_by_status(),
        "due": store.count_due(),
        "delivery": state.as_json(),
        "delivered": rules.as_dict(),
        "workers": [{"id": w.id, "version": w.version, "worker_type": w.worker_type,
                     "threads": w.threads, "seconds_since_seen": round(w.seconds_since_seen, 1),
                     "silent": w.silent} for w in store.workers()],
        "backlog_minutes": cfg.backlog_minutes,
        "problems": [{"kind": p.kind, "severity": p.severity.name, "reason": p.reason}
                     for p in state.problems(backlog)],
        "severity": severity.name,
        "exit": int(severity),
    }


def _delivered_lines(store: Store, cfg: config.Config) -> list[str]:
    rules = delivery_settings.load(store, cfg.form_templates)
    return delivery_settings.describe(rules, waiting(store))


def _delivery_lines(store: Store, cfg: config.Config) -> list[str]:
    """One line for the one partner; with named partners, one per partner (each pauses
    on its own)."""
    if len(cfg.partners) <= 1:
        return [_delivery_line(store, "", "delivery")]
    return [_delivery_line(store, key, f"delivery to {p.name}")
            for p, key in partners.keys(cfg.partners)]


def _delivery_line(store: Store, key: str, label: str) -> str:
    b = Pause(store, Policy(), partner=key).state()
    if not b.paused:
        return f"{label}: running" + (f" ({b.failures} retryable failures in a row)"
                                      if b.failures else "")
    then = ("held until the partner token changes or `formrelay resume`" if b.sticky
            else f"next probe at {b.next_probe_at} UTC")
    return f"{label}: PAUSED since {b.paused_at} UTC: {b.cause}; {then}"


def _print_workers(workers: list[Worker]) -> None:
    """`SILENT`: the sweep's rule (Worker.silent): missed 2 of its own beats plus 15 s."""
    print(f"workers: {len(workers) or 'none'}")
    for w in workers:
        flag = "  SILENT (missed 2 heartbeats: judged gone)" if w.silent else ""
        print(f"  {w.id} v{w.version} {w.worker_type}\u00d7{w.threads}"
              f" last seen {w.seconds_since_seen:.0f} s ago{flag}")


def waiting(store: Store) -> int:
    counts = store.counts_by_status()
    return sum(counts.get(str(s), 0) for s in WAITING)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="one JSON object: counts, due, delivery state, workers, problems,"
                        " severity")
