"""Retention on MariaDB (sidecar.sweep.clean): the submitted values of ended jobs go after
their window, in batches, through the keep_values index, each step leaving a log row with
counts; the job view (real HTTP, signed) says when a job's values go or went."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from sidecar.doorbell import Recorded
from sidecar.retention import Retention
from sidecar.store import Store
from sidecar.store.maintenance import (
    OLD_COMPLETED_JOBS,
    OLD_INCIDENTS,
    OLD_LOG_ROWS,
    RETENTION_BATCH,
    VALUES_TO_DROP,
)
from sidecar.sweep import clean
from sidecar.web import create_app
from tests.conftest import PREFIX
from tests.integration.test_admin_api import SECRET, sql
from tests.integration.test_admin_views import Page, serving, signed_request

pytestmark = pytest.mark.db

SNAPSHOT = json.dumps({"fields": {"1": {"id": 1, "name": "Name", "value": "Jane Doe"}}})
NAME = "Jane_Doe_HIV_result.pdf"
WINDOWS = Retention(keep_snapshot_days=7, keep_completed_days=30, keep_failed_days=30)


def add_jobs(store: Store, prefix: str, status: str, days_ago: int, n: int = 1,
             documents: int = 1) -> list[int]:
    """`n` jobs that reached `status` `days_ago` days ago, each with a snapshot and
    `documents` documents named after the patient; their ids."""
    phase = {"completed": "done", "pending": "record"}.get(status, "documents")
    with store.db.transaction() as cur:
        cur.executemany(
            f"INSERT INTO {PREFIX}formrelay_jobs (reference, form_id, snapshot, status, phase,"
            " completed_at, failed_at, created_at, updated_at) VALUES (%s, 12, %s, %s, %s,"
            " IF(%s = 'completed', UTC_TIMESTAMP(3) - INTERVAL %s DAY, NULL),"
            " IF(%s = 'failed', UTC_TIMESTAMP(3) - INTERVAL %s DAY, NULL),"
            " UTC_TIMESTAMP(3) - INTERVAL %s DAY, UTC_TIMESTAMP(3) - INTERVAL %s DAY)",
            [(f"{prefix}-{i}", SNAPSHOT, status, phase, status, days_ago, status, days_ago,
              days_ago + 1, days_ago) for i in range(n)])
        cur.execute(f"SELECT id FROM {PREFIX}formrelay_jobs WHERE reference LIKE %s ORDER BY id",
                    (f"{prefix}-%",))
        ids = [int(r["id"]) for r in cur.fetchall()]
        for position in range(documents):
            cur.execute(
                f"INSERT INTO {PREFIX}formrelay_documents (job_id, field_id, position,"
                " original_name, path, status, created_at, updated_at) SELECT id, '4', %s, %s,"
                " '/u/x.pdf', 'failed', created_at, updated_at FROM"
                f" {PREFIX}formrelay_jobs WHERE reference LIKE %s", (position, NAME, f"{prefix}-%"))
    return ids


def values(store: Store) -> dict[str, tuple[bool, bool, bool]]:
    """reference -> (snapshot kept, values_dropped_at set, every document name kept)."""
    rows = sql(store, "SELECT j.reference, j.snapshot IS NOT NULL AS kept,"
                      " j.values_dropped_at IS NOT NULL AS dropped,"
                      " COALESCE(MIN(d.original_name <> ''), 1) AS named"
                      " FROM {p}formrelay_jobs j LEFT JOIN {p}formrelay_documents d"
                      " ON d.job_id = j.id GROUP BY j.id")
    return {r["reference"]: (bool(r["kept"]), bool(r["dropped"]), bool(r["named"]))
            for r in rows}


def retention_rows(store: Store) -> list[dict[str, Any]]:
    return sql(store, "SELECT job_id, document_id, level, event, message FROM {p}formrelay_log"
                      " WHERE event LIKE 'retention.%%' ORDER BY id")


KEPT, DROPPED = (True, False, True), (False, True, False)


def test_failed_and_cancelled_jobs_lose_their_values_after_the_window(store):
    for status in ("failed", "cancelled"):
        add_jobs(store, f"{status}-old", status, 31, documents=2)
        add_jobs(store, f"{status}-new", status, 29, documents=2)
    sql(store, "UPDATE {p}formrelay_documents d JOIN {p}formrelay_jobs j ON j.id = d.job_id"
               " SET d.status = 'uploaded' WHERE d.position = 0")  # the partner has these
    for status in ("pending", "retrying", "processing"):  # waiting: kept however old
        add_jobs(store, f"{status}-old", status, 400)
    add_jobs(store, "completed-new", "completed", 6)
    result = clean(store, WINDOWS)
    assert result.ran
    assert (result.failed_dropped, result.cancelled_dropped, result.completed_dropped) == (1, 1, 0)
    assert result.names_blanked == 4
    assert values(store) == {
        "failed-old-0": DROPPED, "cancelled-old-0": DROPPED,
        "failed-new-0": KEPT, "cancelled-new-0": KEPT, "completed-new-0": KEPT,
        "pending-old-0": KEPT, "retrying-old-0": KEPT, "processing-old-0": KEPT}
    paths = sql(store, "SELECT j.reference, d.status, d.path FROM {p}formrelay_documents d"
                       " JOIN {p}formrelay_jobs j ON j.id = d.job_id WHERE j.reference IN"
                       " ('failed-old-0', 'failed-new-0') ORDER BY j.id, d.position")
    assert [(r["reference"], r["status"], r["path"]) for r in paths] == [
        ("failed-old-0", "uploaded", ""),  # its stored name holds the person's: gone
        ("failed-old-0", "failed", "/u/x.pdf"),  # a retry needs it
        ("failed-new-0", "uploaded", "/u/x.pdf"), ("failed-new-0", "failed", "/u/x.pdf")]
    dropped_at = sql(store, "SELECT TIMESTAMPDIFF(SECOND, values_dropped_at, UTC_TIMESTAMP(3))"
                            " AS age FROM {p}formrelay_jobs WHERE reference = 'failed-old-0'")
    assert 0 <= dropped_at[0]["age"] < 600
    (row,) = retention_rows(store)
    assert (row["job_id"], row["document_id"], row["level"], row["event"]) == (
        None, None, "info", "retention.values_dropped")
    assert row["message"] == ("submitted values dropped from 1 failed and 1 cancelled jobs that"
                              " ended over 30 days ago (FORMRELAY_KEEP_FAILED_DAYS);"
                              " 4 document names blanked")
    assert NAME not in row["message"] and "Jane" not in row["message"]
    again = clean(store, WINDOWS)  # nothing left to do: no change, no log row
    assert (again.failed_dropped, again.cancelled_dropped, again.names_blanked) == (0, 0, 0)
    assert len(retention_rows(store)) == 1


def test_more_than_a_batch_is_dropped_in_batches(store):
    add_jobs(store, "bulk-failed", "failed", 40, n=2 * RETENTION_BATCH + 1)
    add_jobs(store, "bulk-cancelled", "cancelled", 40, n=RETENTION_BATCH)  # exactly one batch
    add_jobs(store, "bulk-new", "failed", 3, n=10)
    result = clean(store, WINDOWS)
    assert (result.failed_dropped, result.cancelled_dropped) == (2 * RETENTION_BATCH + 1,
                                                                  RETENTION_BATCH)
    assert result.names_blanked == 3 * RETENTION_BATCH + 1
    left = sql(store, "SELECT reference LIKE 'bulk-new%%' AS new, COUNT(*) AS n,"
                      " SUM(snapshot IS NULL) AS gone, SUM(values_dropped_at IS NOT NULL)"
                      " AS marked FROM {p}formrelay_jobs GROUP BY 1 ORDER BY 1")
    assert [(r["new"], r["n"], int(r["gone"]), int(r["marked"])) for r in left] == [
        (0, 3 * RETENTION_BATCH + 1, 3 * RETENTION_BATCH + 1, 3 * RETENTION_BATCH + 1),
        (1, 10, 0, 0)]
    (row,) = retention_rows(store)  # one row for the run, counting every batch
    assert f"from {2 * RETENTION_BATCH + 1} failed and {RETENTION_BATCH} cancelled" in (
        row["message"])


def test_completed_jobs_lose_values_then_go_and_failed_ones_are_never_deleted(store):
    old = add_jobs(store, "old", "completed", 40, n=RETENTION_BATCH + 700)
    add_jobs(store, "recent", "completed", 10)
    add_jobs(store, "fresh", "completed", 1)
    add_jobs(store, "failed-ancient", "failed", 900)
    sql(store, "INSERT INTO {p}formrelay_log (job_id, level, event, message, created_at)"
               " VALUES (%s, 'info', 'record.sent', '', UTC_TIMESTAMP(3))", old[7])
    sql(store, "INSERT INTO {p}formrelay_log (job_id, level, event, message, created_at) VALUES"
               " (NULL, 'info', 'sweep.old', '', UTC_TIMESTAMP(3) - INTERVAL 31 DAY),"
               " (NULL, 'info', 'sweep.new', '', UTC_TIMESTAMP(3) - INTERVAL 29 DAY)")
    result = clean(store, WINDOWS)
    assert result.completed_dropped == RETENTION_BATCH + 700 + 1  # the old ones and "recent"
    assert result.jobs_deleted == RETENTION_BATCH + 700
    assert result.log_rows_deleted == 1
    assert values(store) == {"recent-0": DROPPED, "fresh-0": KEPT, "failed-ancient-0": DROPPED}
    assert sql(store, "SELECT COUNT(*) AS n FROM {p}formrelay_log WHERE job_id = %s",
               old[7])[0]["n"] == 0
    assert sql(store, "SELECT COUNT(*) AS n FROM {p}formrelay_documents WHERE job_id = %s",
               old[7])[0]["n"] == 0
    events = [(r["event"], r["message"]) for r in retention_rows(store)]
    assert events == [
        ("retention.values_dropped", "submitted values dropped from 1 failed and 0 cancelled"
         " jobs that ended over 30 days ago (FORMRELAY_KEEP_FAILED_DAYS); 1 document names"
         " blanked"),
        ("retention.values_dropped", f"submitted values dropped from {RETENTION_BATCH + 701}"
         " completed jobs that ended over 7 days ago (FORMRELAY_KEEP_SNAPSHOT_DAYS);"
         f" {RETENTION_BATCH + 701} document names blanked"),
        ("retention.jobs_deleted", f"{RETENTION_BATCH + 700} completed jobs (with their"
         " documents and log), 1 log rows of no job and 0 resolved incidents deleted,"
         " older than 30 days (FORMRELAY_KEEP_COMPLETED_DAYS)")]
    assert [r["event"] for r in sql(store, "SELECT event FROM {p}formrelay_log WHERE job_id"
                                           " IS NULL AND event LIKE 'sweep.%%'")] == ["sweep.new"]


def add_incident(store: Store, kind: str, resolved_days_ago: int | None) -> int:
    """An incident with one sent alert message; open when `resolved_days_ago` is None."""
    sql(store, "INSERT INTO {p}formrelay_incidents (kind, severity, open_key, summary, details,"
               " opened_at, updated_at, resolved_at) VALUES (%s, 'warning', %s, 's', '{}',"
               " UTC_TIMESTAMP(3) - INTERVAL 90 DAY, UTC_TIMESTAMP(3), UTC_TIMESTAMP(3)"
               " - INTERVAL %s DAY)", kind, kind if resolved_days_ago is None else None,
        resolved_days_ago)
    (row,) = sql(store, "SELECT MAX(id) AS id FROM {p}formrelay_incidents")
    sql(store, "INSERT INTO {p}formrelay_alerts (incident_id, message, channel, status,"
               " next_attempt_at, created_at) VALUES (%s, 'opened', 'email', 'sent',"
               " UTC_TIMESTAMP(3), UTC_TIMESTAMP(3))", row["id"])
    return int(row["id"])


def test_resolved_incidents_go_with_their_messages_after_the_window_open_ones_stay(store):
    sql(store, "DELETE FROM {p}formrelay_incidents")
    old = add_incident(store, "backlog", 31)
    recent = add_incident(store, "failed", 29)
    still_open = add_incident(store, "paused", None)  # opened 90 days ago, never resolved
    result = clean(store, WINDOWS)
    assert result.incidents_deleted == 1
    left = sql(store, "SELECT id FROM {p}formrelay_incidents ORDER BY id")
    assert [r["id"] for r in left] == [recent, still_open]
    assert sql(store, "SELECT COUNT(*) AS n FROM {p}formrelay_alerts WHERE incident_id = %s",
               old)[0]["n"] == 0
    (note,) = [r["message"] for r in retention_rows(store) if "incidents" in r["message"]]
    assert "1 resolved incidents deleted" in note


def test_only_one_process_cleans_at_a_time(store):
    add_jobs(store, "f", "failed", 40)
    with store.named_lock("formrelay_clean") as held:
        assert held
        assert clean(store, WINDOWS).ran is False
        assert values(store) == {"f-0": KEPT}
    assert clean(store, WINDOWS).failed_dropped == 1


def explain(store: Store, statement: str, *params: object) -> list[dict[str, Any]]:
    return sql(store, "EXPLAIN " + statement.replace("%s", "{}").format(*map(repr, params))
               .replace("{p}", PREFIX))


def test_every_retention_statement_reads_its_own_index(store):
    add_jobs(store, "c", "completed", 3, n=300)
    add_jobs(store, "f", "failed", 3, n=300)
    sql(store, "ANALYZE TABLE {p}formrelay_jobs, {p}formrelay_log")
    jobs, log = f"{PREFIX}formrelay_jobs", f"{PREFIX}formrelay_log"
    for status in ("failed", "cancelled", "completed"):
        (plan,) = explain(store, VALUES_TO_DROP.format(jobs=jobs), status, 30, RETENTION_BATCH)
        assert plan["key"] == "keep_values" and plan["type"] in ("range", "ref"), plan
        assert "filesort" not in (plan["Extra"] or ""), plan
    (plan,) = explain(store, OLD_COMPLETED_JOBS.format(jobs=jobs), 30, RETENTION_BATCH)
    assert plan["key"] == "completed" and plan["type"] == "range", plan
    (plan,) = explain(store, OLD_LOG_ROWS.format(log=log), 30, RETENTION_BATCH)
    assert plan["key"] == "job" and plan["type"] in ("range", "ref"), plan
    incidents = f"{PREFIX}formrelay_incidents"
    (plan,) = explain(store, OLD_INCIDENTS.format(incidents=incidents), 30, RETENTION_BATCH)
    assert plan["key"] == "resolved_at" and plan["type"] == "range", plan
    for statement in (VALUES_TO_DROP, OLD_COMPLETED_JOBS, OLD_LOG_ROWS, OLD_INCIDENTS):
        assert "LIMIT %s" in statement  # bounded: a batch at a time


# ---- the job view says when values go ---------------------------------------------------

@pytest.fixture
def http(store: Store) -> Iterator[str]:
    app = create_app(store, SECRET, Recorded(),
                     retention=Retention(keep_snapshot_days=7, keep_completed_days=30,
                                         keep_failed_days=45))
    with serving(app) as url:
        yield url


def updated(store: Store, job_id: int) -> Any:
    return sql(store, "SELECT updated_at FROM {p}formrelay_jobs WHERE id = %s",
               job_id)[0]["updated_at"]


def test_the_job_view_says_when_values_go_and_when_they_went(http, store):
    (failed,) = add_jobs(store, "failed", "failed", 2)
    (cancelled,) = add_jobs(store, "cancelled", "cancelled", 50)
    (completed,) = add_jobs(store, "completed", "completed", 1)
    (pending,) = add_jobs(store, "pending", "pending", 0, documents=0)
    assert clean(store, Retention(keep_failed_days=45)).cancelled_dropped == 1
    sql(store, "UPDATE {p}formrelay_documents SET status = 'uploaded', file_removed_at ="
               " UTC_TIMESTAMP(3) WHERE job_id = %s", completed)

    def page(job_id: int) -> tuple[Page, dict[str, Any]]:
        html = signed_request(http, "GET", f"/admin/v1/view/job?id={job_id}")
        api = signed_request(http, "GET", f"/admin/v1/jobs/{job_id}")
        assert html.status_code == 200 and api.status_code == 200, (html.text, api.text)
        return Page(html.text), api.json()["retention"]

    until = (updated(store, failed) + timedelta(days=45)).date().isoformat()
    shown, facts = page(failed)
    assert f"Values kept until {until} (FORMRELAY_KEEP_FAILED_DAYS=45)" in shown.words
    assert facts["values_kept_until"].startswith(until) and facts["values_dropped_at"] is None
    assert (facts["setting"], facts["days"]) == ("FORMRELAY_KEEP_FAILED_DAYS", 45)

    dropped = sql(store, "SELECT DATE(values_dropped_at) AS d FROM {p}formrelay_jobs"
                         " WHERE id = %s", cancelled)[0]["d"].isoformat()
    shown, facts = page(cancelled)
    assert (f"Values deleted by retention on {dropped} (FORMRELAY_KEEP_FAILED_DAYS=45)"
            in shown.words)
    assert f"No submitted values are stored for this job: retention deleted them on {dropped}" \
        in shown.words
    assert facts["values_dropped_at"].startswith(dropped) and facts["values_kept_until"] is None

    until = (updated(store, completed) + timedelta(days=7)).date().isoformat()
    shown, facts = page(completed)
    assert f"Values kept until {until} (FORMRELAY_KEEP_SNAPSHOT_DAYS=7)" in shown.words
    assert "file removed from uploads after delivery" in shown.words
    assert shown.find("span", class_="formrelay-file-removed")
    detail = signed_request(http, "GET", f"/admin/v1/jobs/{completed}").json()
    assert detail["documents"][0]["file_removed_at"] is not None

    shown, facts = page(pending)
    assert "Values kept while the job is not ended" in shown.words
    assert facts["values_kept_until"] is None and facts["setting"] is None
    assert "file removed from uploads" not in shown.words
