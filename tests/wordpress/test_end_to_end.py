"""The whole path on real parts: a browser-like POST to WordPress (PHP 8.2, the bridge, the
WPForms emulator), the job row in MariaDB, the signed notify, `formrelay run`, and the partner
simulator over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from devstack import wpforms
from devstack.samples import write_jpeg, write_pdf
from devstack.wordpress import LocalWordPress, free_port
from sidecar.partner_sim import RunningSim, run_in_thread
from tests.conftest import wait_until
from tests.integration.test_cli import formrelay_bin
from tests.wordpress.conftest import site as make_site

pytestmark = [pytest.mark.wordpress, pytest.mark.db, pytest.mark.sim, pytest.mark.slow]

SECRET = "end-to-end-secret-0123456789"


class Stack:
    """WordPress with the bridge and the emulator; a sidecar that can be started and stopped."""

    def __init__(self, wp: LocalWordPress, listen: str, sim: RunningSim, data: Path) -> None:
        self.wp, self.listen, self.sim = wp, listen, sim
        self.env = {
            "PATH": os.environ["PATH"], "WORDPRESS_DB_HOST": wp.db_host_port,
            "WORDPRESS_DB_USER": wp.db_user, "WORDPRESS_DB_PASSWORD": wp.db_password,
            "WORDPRESS_DB_NAME": wp.db_name, "WORDPRESS_TABLE_PREFIX": wp.table_prefix,
            "FORMRELAY_SHARED_SECRET": SECRET, "FORMRELAY_LISTEN": listen,
            "FORMRELAY_PARTNER_URL": sim.url, "FORMRELAY_UPLOADS_DIR": str(wp.uploads_dir),
            "FORMRELAY_DATA_DIR": str(data), "FORMRELAY_BACKOFF_BASE": "0.2"}
        self.sidecar: subprocess.Popen[str] | None = None
        self.form = wpforms.create_form(wp, "Intake", fields=[
            wpforms.name_field(1), wpforms.email_field(2), wpforms.text_field(3, "Date of birth"),
            wpforms.file_field(4, style="modern")])

    def start(self) -> None:
        self.sidecar = subprocess.Popen([formrelay_bin(), "run"], env=self.env, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        wait_until(self._healthy, 30, "the sidecar to answer /healthz")

    def _healthy(self) -> bool:
        try:
            return requests.get(f"http://{self.listen}/healthz", timeout=1).ok
        except requests.RequestException:
            assert self.sidecar is not None and self.sidecar.poll() is None, "sidecar exited"
            return False

    def stop(self) -> str:
        if self.sidecar is None:
            return ""
        self.sidecar.terminate()
        self.sidecar.wait(timeout=30)
        out = self.sidecar.stdout.read() if self.sidecar.stdout else ""
        self.sidecar = None
        return out

    def jobs(self, where: str = "1=1", *args: Any) -> list[dict[str, Any]]:
        with self.wp.db() as conn:
            cur = conn.cursor(dictionary=True)
            cur.execute(f"SELECT * FROM {self.wp.table_prefix}formrelay_jobs WHERE {where}"
                        " ORDER BY id", args)
            return list(cur.fetchall())

    def log(self, job_id: int) -> list[str]:
        with self.wp.db() as conn:
            cur = conn.cursor()
            cur.execute(f"SELECT event, message FROM {self.wp.table_prefix}formrelay_log"
                        " WHERE job_id = %s ORDER BY id", (job_id,))
            return [f"{e}: {m}" for e, m in cur.fetchall()]

    def submit(self, files: list[Path], **kw: Any) -> wpforms.Submitted:
        values = {"1": {"first": "Jane", "last": "Doe"}, "2": "jane@example.com",
                  "3": "1980-02-01"}
        return wpforms.submit(self.wp.url, self.form, values, files={"4": files} if files
                              else None, **kw)

    def completed(self, reference: str) -> dict[str, Any] | None:
        rows = self.jobs("reference = %s AND status = 'completed'", reference)
        return rows[0] if rows else None


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    listen = f"127.0.0.1:{free_port()}"
    wp = make_site(plugins=[Path(__file__).resolve().parents[2] / "wp_bridge_plugin",
                            wpforms.plugin()],
                   constants={"FORMRELAY_SIDECAR_URL": f"http://{listen}",
                              "FORMRELAY_SHARED_SECRET": SECRET})
    sim = run_in_thread()
    with wp:
        running = Stack(wp, listen, sim, tmp_path_factory.mktemp("sidecar"))
        try:
            yield running
        finally:
            running.stop()
            sim.stop()


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
