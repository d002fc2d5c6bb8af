"""The sweep: find work whose doorbell was lost, and ring it again; and the cleaner.

Huey delivers a task at most once: a task lost with a killed worker or a
flushed Redis leaves its job waiting in MySQL. Every minute one process (a
MySQL named lock decides which; the others skip) releases expired leases and
the leases of workers whose heartbeat stopped (sidecar.store.workers says
when a worker is gone), settles jobs whose documents have all ended, creates
jobs for recent WPForms entries that have none, and rings every due job and
document. A worker also rings due work when it starts. The engine's claims make
extra rings harmless.
Hourly, the cleaner applies retention in short batches.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sidecar import delivery_settings
from sidecar.backfill import backfill
from sidecar.doorbell import Doorbell, ring_due
from sidecar.errors import SubmissionError
from sidecar.retention import Retention
from sidecar.store import LogEntry, Store

log = logging.getLogger("formrelay.sweep")
WATERMARK = "reconcile_watermark"


@dataclass
class SweepResult:
    ran: bool = False  # False: another process holds the sweep lock
    released: int = 0
    orphaned: int = 0  # leases of gone workers released
    settled: int = 0
    reconciled: int = 0
    rung_jobs: int = 0
    rung_documents: int = 0


def sweep(store: Store, tasks: Doorbell, reconcile_days: int = 7,
          max_attempts: int = 10) -> SweepResult:
    result = SweepResult()
    with store.named_lock("formrelay_sweep") as mine:
        if not mine:
            return result
        result.ran = True
        result.released = store.release_expired_leases()
        result.orphaned = release_gone_workers(store)
        result.settled = sum(1 for job_id in store.stuck_jobs()
                             if store.settle_documents(job_id) is not None)
        if reconcile_days > 0:
            result.reconciled = reconcile(store, tasks, reconcile_days, max_attempts)
        result.rung_jobs, result.rung_documents = ring_due(store, tasks)
    if result.released or result.orphaned or result.settled or result.reconciled:
        log.info("sweep: %d expired leases and %d leases of gone workers released,"
                 " %d jobs settled, %d entries without a job queued",
                 result.released, result.orphaned, result.settled, result.reconciled)
    return result


def release_gone_workers(store: Store) -> int:
    """Give back the work of workers whose heartbeat stopped (killed, host lost) at once,
    instead of after their leases expire. Each lease owner begins with its worker's id.
    The partner still gets each step once: a retry sends the same Idempotency-Key."""
    released = 0
    for worker_id, silent in store.gone_workers():
        count = store.release_leases_of(
            f"{worker_id}:", reason=f"its worker sent no heartbeat for {silent:.0f} s",
            event="lease.worker_gone")
        if count:
            log.warning("worker %s sent no heartbeat for %.0f s: released %d of its leases",
                        worker_id, silent, count)
        released += count
    return released


def reconcile(store: Store, tasks: Doorbell, days: int, max_attempts: int = 10) -> int:
    """Jobs for WPForms entries of the last `days` days that have none (missed captures).

    Only what the plugin's delivery settings deliver: entries of delivered forms,
    stored on or after the plugin's activation and the form's selection (entries
    made while the plugin was off or the form was not delivered are left to an
    explicit `formrelay backfill`); nothing while it is deactivated or has not
    published its settings.
    """
    rules = delivery_settings.load(store)
    if not rules.creates_jobs:
        log.debug("reconcile: no jobs created: %s", rules.refusal())
        return 0
    since = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=days)
    if rules.active_since is not None:  # WPForms' entry dates are whole seconds
        since = max(since, rules.active_since.replace(microsecond=0))
    try:
        mark = int(store.meta(WATERMARK) or 0)
        first = store.first_entry_since(since, mark)
        if first is None:
            return 0
        if first - 1 > mark:
            store.set_meta(WATERMARK, str(first - 1))
        found = backfill(store, tasks.ring_record, settings=rules, since=since,
                         skip_imported=True, max_attempts=max_attempts, after_id=first - 1,
                         since_selected=True)
    except SubmissionError:  # no WPForms entry tables (Lite): nothing to reconcile
        return 0
    return found.created


@dataclass
class CleanResult:
    ran: bool = False  # False: another process holds the cleaner's lock
    completed_dropped: int = 0  # completed jobs whose values were dropped
    failed_dropped: int = 0
    cancelled_dropped: int = 0
    names_blanked: int = 0  # documents whose original name was blanked
    jobs_deleted: int = 0
    log_rows_deleted: int = 0  # log rows of no job
    incidents_deleted: int = 0  # resolved incidents (with their alert messages)


def clean(store: Store, retention: Retention) -> CleanResult:
    """Retention, in batches of 500 rows (sidecar.retention says what is kept how long).

    Each step that changed something writes one log row of no job with its counts.
    """
    result = CleanResult()
    with store.named_lock("formrelay_clean") as mine:
        if not mine:
            return result
        result.ran = True
        failed, failed_names = store.drop_ended_values("failed", retention.keep_failed_days)
        cancelled, cancelled_names = store.drop_ended_values("cancelled",
                                                             retention.keep_failed_days)
        result.failed_dropped, result.cancelled_dropped = failed, cancelled
        if failed or cancelled:
            _note(store, "retention.values_dropped",
                  f"submitted values dropped from {failed} failed and {cancelled} cancelled"
                  f" jobs that ended over {retention.keep_failed_days} days ago"
                  f" (FORMRELAY_KEEP_FAILED_DAYS); {failed_names + cancelled_names}"
                  " document names blanked")
        completed, completed_names = store.drop_ended_values("completed",
                                                             retention.keep_snapshot_days)
        result.completed_dropped = completed
        result.names_blanked = failed_names + cancelled_names + completed_names
        if completed:
            _note(store, "retention.values_dropped",
                  f"submitted values dropped from {completed} completed jobs that ended over"
                  f" {retention.keep_snapshot_days} days ago (FORMRELAY_KEEP_SNAPSHOT_DAYS);"
                  f" {completed_names} document names blanked")
        result.jobs_deleted, result.log_rows_deleted = store.delete_old_jobs(
            retention.keep_completed_days)
        result.incidents_deleted = store.delete_old_incidents(retention.keep_completed_days)
        if result.jobs_deleted or result.log_rows_deleted or result.incidents_deleted:
            _note(store, "retention.jobs_deleted",
                  f"{result.jobs_deleted} completed jobs (with their documents and log),"
                  f" {result.log_rows_deleted} log rows of no job and"
                  f" {result.incidents_deleted} resolved incidents deleted, older than"
                  f" {retention.keep_completed_days} days (FORMRELAY_KEEP_COMPLETED_DAYS)")
    return result


def _note(store: Store, event: str, message: str) -> None:
    """A log row of no job (counts only), and the same line on stdout."""
    store.log(LogEntry(event, message, level="info"))
