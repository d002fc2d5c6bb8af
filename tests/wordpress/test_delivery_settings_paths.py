"""One source of truth for what is delivered, on real parts: WordPress with the bridge and the
WPForms emulator (Pro: entries stored), `formrelay run` with its sweep, `formrelay backfill`,
and the partner simulator over HTTP.

With only form A selected, entries of form B never reach the partner by any path (capture,
the sweep's reconciliation, backfill); jobs the sidecar creates carry A's priority and render
with A's template. With the plugin deactivated, neither the sweep nor backfill creates a job,
and a job queued before still completes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from devstack import wpforms
from sidecar.store import Database, DbSettings, Store
from sidecar.sweep import sweep
from tests.conftest import wait_until
from tests.integration.delivery import RecordingDoorbell
from tests.integration.test_cli import formrelay_bin
from tests.wordpress.bridge_fixtures import update_settings
from tests.wordpress.conftest import BRIDGE_FILE, deactivate_bridge
from tests.wordpress.stack import Stack, open_stack

pytestmark = [pytest.mark.wordpress, pytest.mark.db, pytest.mark.sim, pytest.mark.slow]

DEFAULT_TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
MARKED = ('{"template": "marked", "form_id": {{ job.form_id | tojson }},'
          ' "entry_id": {{ job.entry_id | tojson }}, "fields": {{ values | tojson }}}')
B_EMAIL = "newsletter-only@example.org"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    templates = tmp_path_factory.mktemp("templates")
    shutil.copytree(DEFAULT_TEMPLATES, templates, dirs_exist_ok=True)
    (templates / "payloads" / "marked.json.j2").write_text(MARKED)
    with open_stack(tmp_path_factory.mktemp("sidecar")) as running:
        running.env.update(FORMRELAY_TEMPLATES_DIR=str(templates), FORMRELAY_SWEEP_SECONDS="5")
        yield running


@pytest.fixture(scope="module")
def store(stack: Stack) -> Iterator[Store]:
    wp = stack.wp
    host, _, port = wp.db_host_port.rpartition(":")
    db = Database(DbSettings(host, wp.db_user, wp.db_password, wp.db_name, int(port)))
    yield Store(db, wp.table_prefix)
    db.close()


def formrelay(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([formrelay_bin(), *args], env=stack.env, capture_output=True,
                          text=True, timeout=60)


def said(out: str) -> list[str]:
    """The command's own lines (not the event log lines it also writes to stdout)."""
    return [line for line in out.splitlines() if " INFO " not in line]


def submit_b(stack: Stack, form: int, name: str) -> int:
    sent = wpforms.submit(stack.wp.url, form, {"1": {"first": name, "last": "Reader"},
                                               "2": B_EMAIL})
    assert sent.result == "complete" and sent.entry_id > 0
    return sent.entry_id


def test_a_form_that_is_not_selected_never_reaches_the_partner_by_any_path(stack, store):
    a = stack.form
    b = wpforms.create_form(stack.wp, "Newsletter", fields=[wpforms.name_field(1),
                                                            wpforms.email_field(2)])
    update_settings(stack.wp, forms=[a], form_settings={
        str(a): {"template": "marked.json.j2", "priority": "3"}})
    captured = stack.submit([])
    missed = stack.submit([])
    b_entries = [submit_b(stack, b, "Bea"), submit_b(stack, b, "Bo")]
    assert stack.jobs("form_id = %s", b) == []  # capture obeys the selection
    with stack.wp.db() as conn:  # a notify and capture that never happened for this one
        conn.cursor().execute(f"DELETE FROM {stack.wp.table_prefix}formrelay_jobs"
                              " WHERE reference = %s", (f"wpforms:{a}:{missed.entry_id}",))
        conn.commit()

    stack.start()
    try:
        ref = f"wpforms:{a}:{missed.entry_id}"
        job = wait_until(lambda: stack.completed(ref), 60, "the sweep's job for A to complete")
        assert stack.jobs("form_id = %s", b) == []  # the same reconcile pass left B alone
        assert job["source"] == "backfill" and job["priority"] == 3
        backfilled = formrelay(stack, "backfill")
        assert backfilled.returncode == 0, backfilled.stderr
        assert said(backfilled.stdout) == [
            "0 stored entries without a job",
            f"skipped 2 entries of form {b}: form {b} is not among the delivered forms ({a})",
            "created 0 jobs"]
        wait_until(lambda: stack.completed(f"wpforms:{a}:{captured.entry_id}"), 60,
                   "the captured job")
    finally:
        stack.stop()

    assert stack.jobs("form_id = %s", b) == []
    records = stack.sim.records(bodies=True)
    assert records and all(r["body"].get("form_id") != b for r in records)
    assert B_EMAIL not in json.dumps(records)
    (sent,) = [r for r in records if r["id"] == job["partner_record_id"]]
    assert sent["body"]["template"] == "marked" and sent["body"]["entry_id"] == missed.entry_id
    assert sweep(store, RecordingDoorbell(), reconcile_days=7).reconciled == 0
    assert all(e not in [j["entry_id"] for j in stack.jobs()] for e in b_entries)

    # Choosing B now delivers B from now on: its entries stored before stay undelivered.
    # WPForms dates entries in whole seconds: choose B in a later second than theirs.
    stored = max(_entry_date(stack, e) for e in b_entries)
    wait_until(lambda: datetime.now(UTC).replace(tzinfo=None, microsecond=0) > stored, 5,
               "the clock to pass the entries' second")
    update_settings(stack.wp, forms=[a, b])
    assert sweep(store, RecordingDoorbell(), reconcile_days=7).reconciled == 0
    assert stack.jobs("form_id = %s", b) == []
    later = submit_b(stack, b, "Bix")
    assert [j["entry_id"] for j in stack.jobs("form_id = %s", b)] == [later]  # captured
    with stack.wp.db() as conn:  # as if its capture had been missed
        conn.cursor().execute(f"DELETE FROM {stack.wp.table_prefix}formrelay_jobs"
                              " WHERE form_id = %s", (b,))
        conn.commit()
    assert sweep(store, RecordingDoorbell(), reconcile_days=7).reconciled == 1
    assert [j["entry_id"] for j in stack.jobs("form_id = %s", b)] == [later]
    with stack.wp.db() as conn:  # the next test counts the queue: leave it as found
        conn.cursor().execute(f"DELETE FROM {stack.wp.table_prefix}formrelay_jobs"
                              " WHERE form_id = %s", (b,))
        conn.commit()


def test_deactivated_nothing_new_is_created_and_a_queued_job_finishes(stack, store):
    update_settings(stack.wp, forms="all")  # form A keeps its template and priority
    queued = stack.submit([])
    ref = f"wpforms:{stack.form}:{queued.entry_id}"
    assert [j["status"] for j in stack.jobs("reference = %s", ref)] == ["pending"]
    deactivate_bridge(stack.wp)
    try:
        off = stack.submit([])  # stored by WPForms; the bridge is off, so no capture
        assert off.entry_id > 0 and stack.jobs("entry_id = %s", off.entry_id) == []

        assert sweep(store, RecordingDoorbell(), reconcile_days=7).reconciled == 0
        refused = formrelay(stack, "backfill")
        assert refused.returncode == 1 and said(refused.stdout) == []
        assert refused.stderr.strip() == (
            "formrelay backfill: refused, no job created: the FormRelay Bridge plugin is"
            " deactivated (1 queued jobs still finish)")
        status = formrelay(stack, "status")
        assert ("delivered forms: NONE: the FormRelay Bridge plugin is deactivated: no new"
                " jobs are created; 1 queued jobs finish") in status.stdout

        stack.start()
        try:
            wait_until(lambda: stack.completed(ref), 60, "the job queued before deactivation")
        finally:
            stack.stop()
        assert stack.jobs("entry_id = %s", off.entry_id) == []
        # WPForms dates entries in whole seconds: reactivate in a later second than this one.
        stored = _entry_date(stack, off.entry_id)
        wait_until(lambda: datetime.now(UTC).replace(tzinfo=None, microsecond=0) > stored, 5,
                   "the clock to pass the entry's second")
    finally:
        stack.wp.activate_plugin(*_bridge(stack))
    # Active again: entries made while it was off are left to an explicit backfill.
    assert sweep(store, RecordingDoorbell(), reconcile_days=7).reconciled == 0
    assert stack.jobs("entry_id = %s", off.entry_id) == []
    explicit = formrelay(stack, "backfill", "--form", str(stack.form))
    assert explicit.returncode == 0 and said(explicit.stdout)[-1] == "created 1 jobs"
    (job,) = stack.jobs("entry_id = %s", off.entry_id)
    assert job["source"] == "backfill" and job["priority"] == 3  # form A's, kept from before
    stack.start()
    try:
        done = wait_until(lambda: stack.completed(job["reference"]), 60, "the backfilled job")
    finally:
        stack.stop()
    (sent,) = [r for r in stack.sim.records(bodies=True) if r["id"] == done["partner_record_id"]]
    assert sent["body"] == {"template": "marked", "form_id": stack.form,
                            "entry_id": off.entry_id, "fields": sent["body"]["fields"]}


def _entry_date(stack: Stack, entry_id: int) -> datetime:
    with stack.wp.db() as conn:
        cur = conn.cursor()
        cur.execute(f"SELECT date FROM {stack.wp.table_prefix}wpforms_entries"
                    " WHERE entry_id = %s", (entry_id,))
        (value,) = cur.fetchone()
    assert isinstance(value, datetime)
    return value


def _bridge(stack: Stack) -> tuple[Any, str]:
    """activate_plugin()'s arguments for the bridge as open_stack installed it."""
    return Path(__file__).resolve().parents[2] / "wp_bridge_plugin", BRIDGE_FILE.split("/")[0]
