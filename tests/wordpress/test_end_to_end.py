"""The whole path on real parts: a browser-like POST to WordPress (PHP 8.2, the bridge, the
WPForms emulator), the job row in MariaDB, the signed notify, `formrelay run`, and the partner
simulator over HTTP."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack import wpforms
from devstack.samples import write_jpeg, write_pdf
from devstack.wordpress import LocalWordPress
from tests.conftest import wait_until
from tests.integration.test_cli import formrelay_bin
from tests.wordpress.stack import SECRET, Stack, open_stack

pytestmark = [pytest.mark.wordpress, pytest.mark.db, pytest.mark.sim, pytest.mark.slow]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with open_stack(tmp_path_factory.mktemp("sidecar")) as running:
        yield running


@pytest.fixture
def docs(tmp_path: Path) -> list[Path]:
    return [write_pdf(tmp_path / "Referral.pdf", 3000), write_jpeg(tmp_path / "scan.jpg", 5000)]


def test_a_submission_with_two_documents_reaches_the_partner(stack, docs):
    stack.start()
    try:
        sent = stack.submit(docs)
        reference = f"wpforms:{stack.form}:{sent.entry_id}"
        assert sent.entry_id > 0 and stack.jobs("reference = %s", reference)
        job = wait_until(lambda: stack.completed(reference), 30, "the job to complete")
    finally:
        output = stack.stop()
    (record,) = [r for r in stack.sim.records(bodies=True) if r["id"] == job["partner_record_id"]]
    assert record["body"]["fields"]["Email"] == "jane@example.com"
    assert sorted(d["name"] for d in record["documents"]) == ["Referral.pdf", "scan.jpg"]
    assert {d["size"] for d in record["documents"]} == {3000, 5000}
    assert any("from snapshot" in line for line in stack.log(job["id"]))
    assert "Jane" not in output and "jane@example.com" not in output


def test_with_the_sidecar_down_the_submission_is_quick_and_waits_for_it(stack, docs):
    assert stack.sidecar is None
    baseline = min(stack.submit([]).elapsed_s for _ in range(3))
    sent = stack.submit(docs)
    assert sent.elapsed_s < baseline + 0.5  # no seconds spent on the stopped sidecar
    reference = f"wpforms:{stack.form}:{sent.entry_id}"
    (job,) = stack.jobs("reference = %s", reference)
    assert job["status"] == "pending"
    stack.start()  # the worker rings what came due while it was away
    try:
        wait_until(lambda: stack.completed(reference), 30, "the waiting job to complete")
    finally:
        stack.stop()


def test_lite_mode_delivers_from_the_snapshot(stack):
    lite = wpforms.create_form(stack.wp, "Lite contact", fields=[
        wpforms.name_field(1), wpforms.email_field(2), wpforms.text_field(3, "Date of birth")])
    wpforms.set_mode(stack.wp, "lite")
    try:
        sent = wpforms.submit(stack.wp.url, lite, {"1": {"first": "Jane", "last": "Doe"},
                                                   "2": "jane@example.com", "3": "1980-02-01"})
    finally:
        wpforms.set_mode(stack.wp, "pro")
    assert sent.entry_id == 0
    (job,) = stack.jobs("form_id = %s", lite)
    assert job["entry_id"] == 0 and job["reference"].startswith(f"wpforms:{lite}:")
    stack.start()
    try:
        done = wait_until(lambda: stack.completed(job["reference"]), 30, "the Lite job")
    finally:
        stack.stop()
    assert any("from snapshot" in line for line in stack.log(done["id"]))


def test_a_truncated_snapshot_is_delivered_from_the_wpforms_entry(stack, docs):
    sent = stack.submit(docs)
    reference = f"wpforms:{stack.form}:{sent.entry_id}"
    with stack.wp.db() as conn:  # the snapshot arrives cut short
        cur = conn.cursor()
        cur.execute(f"UPDATE {stack.wp.table_prefix}formrelay_jobs SET snapshot ="
                    " LEFT(snapshot, 40) WHERE reference = %s", (reference,))
        conn.commit()
    stack.start()
    try:
        job = wait_until(lambda: stack.completed(reference), 30, "the job via the fallback")
    finally:
        stack.stop()
    assert any(f"from WPForms entry {sent.entry_id} (snapshot is not valid JSON)" in line
               for line in stack.log(job["id"]))
    (record,) = [r for r in stack.sim.records() if r["id"] == job["partner_record_id"]]
    assert len(record["documents"]) == 2


def test_spam_never_becomes_a_job_nor_does_a_trashed_entry_by_backfill(stack, docs):
    before = len(stack.jobs())
    spam = stack.submit(docs, spam=True)
    assert spam.result == "spam"
    assert len(stack.jobs()) == before
    form = wpforms.create_form(stack.wp, "Backfilled", fields=[wpforms.name_field(1)],
                               disable_entries=False)
    _select_forms(stack.wp, f"array({stack.form})")  # this form's entries are not captured
    try:
        kept = wpforms.submit(stack.wp.url, form, {"1": {"first": "A", "last": "B"}})
        trashed = wpforms.submit(stack.wp.url, form, {"1": {"first": "C", "last": "D"}})
    finally:
        _select_forms(stack.wp, "'all'")
    wpforms.set_entry_status(stack.wp, trashed.entry_id, "trash")
    assert stack.jobs("form_id = %s", form) == []
    out = subprocess.run([formrelay_bin(), "backfill", "--form", str(form)], env=stack.env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert [j["entry_id"] for j in stack.jobs("form_id = %s", form)] == [kept.entry_id]


def _select_forms(wp: LocalWordPress, forms_php: str) -> None:
    """Set which forms the bridge captures (PHP expression: 'all' or an array of ids)."""
    wp.php("$s = get_option('formrelay_bridge_settings', array()); $s = is_array($s) ? $s"
           f" : array(); $s['forms'] = {forms_php};"
           " update_option('formrelay_bridge_settings', $s);")


def test_nothing_secret_or_submitted_is_in_the_job_log(stack):
    rows = [line for job in stack.jobs() for line in stack.log(job["id"])]
    assert rows, "earlier tests should have left log rows"
    text = json.dumps(rows)
    for leaked in ("Jane", "jane@example.com", "1980-02-01", SECRET):
        assert leaked not in text
