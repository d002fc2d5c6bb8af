"""The chaos run's figures: counts from the database, the give-ups expected by chance,
the printout of them all, and where the logs are."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.chaos.checks import GAVE_UP
from tests.chaos.faults import Monitor


def describe_logs(log_dir: Path) -> str:
    return "\n".join(f"  {p} ({p.stat().st_size} bytes)" for p in sorted(log_dir.iterdir()))


def db_figures(monitor: Monitor) -> dict[str, Any]:
    events = {r["event"]: int(r["n"]) for r in monitor.query(
        "SELECT event, COUNT(*) AS n FROM {p}formrelay_log GROUP BY event")}
    attempts = monitor.query(
        "SELECT (SELECT COALESCE(SUM(attempts), 0) FROM {p}formrelay_jobs) AS jobs,"
        " (SELECT COALESCE(SUM(attempts), 0) FROM {p}formrelay_documents) AS documents,"
        " (SELECT COALESCE(MIN(max_attempts), 0) FROM {p}formrelay_jobs) AS jobs_max,"
        " (SELECT COALESCE(MIN(max_attempts), 0) FROM {p}formrelay_documents) AS documents_max"
    )[0]
    statuses = {f"jobs {r['status']}": int(r["n"]) for r in monitor.query(
        "SELECT status, COUNT(*) AS n FROM {p}formrelay_jobs GROUP BY status")}
    doc_statuses = {f"documents {r['status']}": int(r["n"]) for r in monitor.query(
        "SELECT status, COUNT(*) AS n FROM {p}formrelay_documents GROUP BY status")}
    gave_up = monitor.query(
        "SELECT (SELECT COUNT(*) FROM {p}formrelay_jobs WHERE last_error LIKE %s) AS jobs,"
        " (SELECT COUNT(*) FROM {p}formrelay_documents WHERE last_error LIKE %s) AS docs",
        (f"%{GAVE_UP}%", f"%{GAVE_UP}%"))[0]
    return {"attempts_records": int(attempts["jobs"]),
            "attempts_documents": int(attempts["documents"]),
            # the attempts each step may take, as its row holds them (the fewest, if they vary)
            "max_attempts_records": int(attempts["jobs_max"]),
            "max_attempts_documents": int(attempts["documents_max"]),
            "pauses": events.get("delivery.paused", 0),
            "leases_expired": events.get("lease.expired", 0),
            "gave_up_jobs": int(gave_up["jobs"]), "gave_up_documents": int(gave_up["docs"]),
            "statuses": {**statuses, **doc_statuses}, "log_events": events}


def format_figures(f: Mapping[str, Any]) -> str:
    sim = f["sim"]
    dup = sim["duplicates_suppressed"]
    rows = [
        ("scale / seed", f"{f['scale']:g} / {f['seed']}"),
        ("submissions", f"{f['submissions']} ({f['html_submissions']} with an HTML page"
                        " named .pdf)"),
        ("documents", f"{f['documents']} ({f['valid_documents']} valid,"
                      f" {f['documents'] - f['valid_documents']} HTML)"),
        ("partner records / documents created",
         f"{sim['records_created']} / {sim['documents_created']}"),
        ("partner requests total", f"{sim['requests_total']}  by status"
                                   f" {dict(sorted(sim['requests_by_status'].items()))}"),
        ("forced by the partner", str(dict(sorted(sim["forced"].items())))),
        ("attempts (from the DB)", f"{f['attempts_records'] + f['attempts_documents']}"
                                   f" ({f['attempts_records']} record,"
                                   f" {f['attempts_documents']} document)"),
        ("duplicates suppressed", f"{sum(dup.values())} ({dup.get('record', 0)} record,"
                                  f" {dup.get('document', 0)} document)"),
        ("idempotency conflicts", str(sim["idempotency_conflicts"])),
        ("pauses (delivery.paused)", str(f["pauses"])),
        ("worker kills (SIGKILL)", f"{f['kills']} (workers started: {f['workers_started']})"),
        ("redis FLUSHALL", f"{f['flushes']} ({f['keys_flushed']} keys holding"
                           f" {f['entries_flushed']} queued or scheduled tasks)"),
        ("MariaDB connections killed", str(f["connections_killed"])),
        ("outage", f"{f['outage_seconds']:g} s from T+{f['outage_at']:g}s; work open at its"
                   f" start: {f['open_at_outage']} jobs"),
        ("leases expired", str(f["leases_expired"])),
        ("steps that ran out of attempts", f"{f['gave_up_jobs']} jobs,"
                                           f" {f['gave_up_documents']} documents (by chance"
                                           f" alone {f['expected_gave_up']:.2f} expected:"
                                           f" {f['record_steps']} records x"
                                           f" {f['failure_rate']:g}^{f['max_attempts_records']}"
                                           f" + {f['document_steps']} documents x"
                                           f" {f['failure_rate']:g}"
                                           f"^{f['max_attempts_documents']})"),
        ("end statuses", ", ".join(f"{k} {v}" for k, v in sorted(f["statuses"].items()))),
        ("time to drain", "did not drain by the deadline" if math.isnan(f["drain_seconds"])
         else f"{f['drain_seconds']:.1f} s after T0"
              f" ({f['after_outage']:.1f} s after the outage ended)"),
        ("partner max in flight", str(sim["max_in_flight"])),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(["== chaos figures =="] + [f"{k.ljust(width)}  {v}" for k, v in rows])


def expected_gave_up(f: Mapping[str, Any]) -> float:
    """A step fails for good after its max_attempts failed attempts in a row: at the
    partner's failure rate alone, this many steps of the run are expected to (no outage,
    no kills). Each step counts with the attempts its row holds."""
    rate = float(f["failure_rate"])
    return float(f["record_steps"] * rate ** int(f["max_attempts_records"])
                 + f["document_steps"] * rate ** int(f["max_attempts_documents"]))
