"""`make demo` with `DEMO_ARGS=--fhir`: the same submissions delivered to a flaky FHIR R4 partner.

The demo runs as a user runs it, with --keep-running so that, once it has printed
its summary, the simulator's control API (/_sim/fhir) and the demo's database can
be read; SIGINT (Ctrl-C) then stops it and it cleans up as without the flag.
"""

from __future__ import annotations

import os
import queue
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from sidecar.partner_sim.server import SimControl
from sidecar.store import Database, DbSettings
from tests.conftest import TEST_DB_HOST, TEST_DB_PASSWORD, TEST_DB_USER
from tests.integration.test_demo import assert_cleaned_up

pytestmark = [pytest.mark.wordpress, pytest.mark.db, pytest.mark.sim, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SYSTEM = "urn:formrelay:reference"  # the fhir-r4 client's identifier system (docs/fhir.md)
KEPT = "the stack keeps running"  # the demo's line once the summary is out (--keep-running)


class Output:
    """A process's stdout, read line by line from a thread; waits have deadlines."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc, self.text = proc, ""
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def until(self, marker: str, timeout: float) -> str:
        """All output up to the line containing `marker`; fails at EOF or the deadline."""
        deadline = time.monotonic() + timeout
        while marker not in self.text:
            left = deadline - time.monotonic()
            assert left > 0, f"no {marker!r} within {timeout:.0f} s:\n{self.text}"
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                continue
            assert line is not None, f"the demo ended before {marker!r}:\n{self.text}"
            self.text += line
        return self.text

    def rest(self, timeout: float) -> str:
        """Everything until EOF (the process has been told to stop)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.text += line
        return self.text


def _default_sigint() -> None:  # Ctrl-C must reach the demo even if the runner ignores it
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _rows(db_name: str, query: str) -> list[tuple[Any, ...]]:
    server = Database(DbSettings.parse(TEST_DB_HOST, TEST_DB_USER, TEST_DB_PASSWORD, db_name))
    conn = server.connect()
    try:
        cur = conn.cursor()
        cur.execute(query)
        return [tuple(row) for row in cur.fetchall()]
    finally:
        conn.close()


def _identifier(resource: dict[str, Any]) -> str:
    values = [i["value"] for i in resource.get("identifier", []) if i.get("system") == SYSTEM]
    assert len(values) == 1, resource.get("identifier")
    return str(values[0])


def test_the_fhir_demo_delivers_every_submission_as_patient_and_document_references():
    name = f"demofhir{secrets.token_hex(3)}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "devstack.demo", "--fhir", "--keep-running", "--name", name,
         "--timeout", "240"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True, preexec_fn=_default_sigint)
    output = Output(proc)
    try:
        out = output.until(KEPT, timeout=400)
        port = int(re.search(r"partner simulator \(flaky, FHIR R4 at /fhir\) on port (\d+)",
                             out).group(1))
        db_name = re.search(r"\(database (fr_wp_\w+)\)", out).group(1)
        sim = SimControl(f"http://127.0.0.1:{port}")
        fhir = sim.fhir(bodies=True)
        stats = sim.stats()
        jobs = _rows(db_name, "SELECT id, reference, status, partner_record_id, last_error"
                              " FROM wp_formrelay_jobs")
        documents = _rows(db_name, "SELECT job_id, status, partner_document_id, size"
                                   " FROM wp_formrelay_documents")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # Ctrl-C ends --keep-running
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    out = output.rest(timeout=10)
    assert proc.returncode == 0, out

    # the summary: the same lines as the default demo's, the partner's side from FHIR
    assert "25 submissions sent through WordPress" in out
    assert re.search(r"submissions delivered\s+24 of 25\n", out), out
    assert re.search(r"documents rejected\s+1\n", out), out
    assert "rejected: type text/html is not a document" in out
    uploaded = int(re.search(r"documents uploaded\s+(\d+)\n", out).group(1))
    retries = int(re.search(r"retries \(all steps\)\s+(\d+)\n", out).group(1))
    assert re.search(r"partner records created\s+25 Patients\n", out), out
    assert re.search(rf"partner documents created\s+{uploaded} DocumentReferences\n", out), out
    absorbed = int(re.search(r"duplicates the partner absorbed\s+(\d+) \(conditional creates"
                             r" matched\)\n", out).group(1))
    binaries = int(re.search(rf"FHIR resources created\s+Patient 25, QuestionnaireResponse 25,"
                             rf" Binary (\d+), DocumentReference {uploaded}\n", out).group(1))
    assert binaries >= uploaded
    assert re.search(r"outage pauses\s+\d+\n", out), out
    assert re.search(r"time to deliver everything\s+[\d.]+ s\n", out), out
    assert re.search(r"dashboard\s+http://127\.0\.0\.1:\d+/wp-admin/admin\.php\?page=formrelay"
                     r"\s+login: admin / \S+", out)
    assert "Demo Person" not in out and "@example.org" not in out  # no submitted values

    # the simulator's resources (GET /_sim/fhir) against the demo's jobs and documents
    created, resources = fhir["created"], fhir["resources"]
    assert absorbed == sum(fhir["matched"].values())
    assert created["Binary"] == binaries
    patients = {_identifier(p): pid for pid, p in resources["Patient"].items()}
    assert len(patients) == len(resources["Patient"]) == 25  # one Patient per submission
    assert set(patients) == {str(reference) for _, reference, *_ in jobs}
    record_of = {}
    for job_id, reference, status, record_id, error in jobs:
        assert record_id == patients[reference], (job_id, reference)  # no submission lost
        assert status == "completed" or (status == "failed" and "text/html" in error), job_id
        record_of[job_id] = record_id
    answers = resources["QuestionnaireResponse"].values()
    assert sorted(r["subject"]["reference"] for r in answers) == sorted(
        f"Patient/{p}" for p in patients.values())
    refs = resources["DocumentReference"]
    sent = [(job_id, doc_id, size) for job_id, status, doc_id, size in documents
            if status == "uploaded"]
    assert len(sent) == uploaded == len(refs)  # each document once, none twice
    for job_id, doc_id, size in sent:
        ref = refs[doc_id]
        assert ref["subject"]["reference"] == f"Patient/{record_of[job_id]}"
        attachment = ref["content"][0]["attachment"]
        binary = fhir["binaries"][attachment["url"].rsplit("/", 1)[-1]]
        assert binary["size"] == attachment["size"] == size
    assert [s for _, s, *_ in documents].count("rejected") == 1

    # the flaky knobs fired and were absorbed: retries, and still nothing lost above
    assert stats["forced"].get("random", 0) >= 1, stats["forced"]
    assert stats["forced"].get("outage", 0) >= 1, stats["forced"]
    assert retries >= 1

    # and it cleans up as the default demo does
    assert "stopped; the site and its database are removed" in out
    assert_cleaned_up(db_name, name)
