"""A partner that echoes what it was sent: no value, no file name anywhere but Reveal.

A real `formrelay worker` process delivers two jobs to the simulator, scripted to
answer 503 and then 422 with every submitted value (whole, HTML-escaped,
upper-cased, in part) or the uploaded file's name in the error. Then the log
table, both last_error columns, the worker's stdout (event lines and every other
log line) and the dashboard (job view, jobs list, log viewer and the JSON API,
signed, over real HTTP) are searched for each value's words and the file name's:
none is found. Reveal shows them.
"""

from __future__ import annotations

import json
import re

import pytest

from devstack.samples import write_pdf
from sidecar.states import Event, EventKind, Status
from sidecar.store import NewJob
from tests.integration.delivery import snapshot
from tests.integration.processes import run_worker_until, worker_env
from tests.integration.test_admin_views import http, signed_request

pytestmark = [pytest.mark.db, pytest.mark.sim]
__all__ = ["http"]  # a fixture, used by name

FILE_NAME = "Jane_Doe_HIV_result.pdf"
FIELDS = {
    "1": {"name": "Name", "value": "Jane Doe", "id": 1, "type": "name", "first": "Jane",
          "middle": "", "last": "Doe"},
    "2": {"name": "Surname at birth", "value": "O'Brien", "id": 2, "type": "text"},
    "3": {"name": "Diagnosis", "value": "Type 2 diabetes, insulin dependent", "id": 3,
          "type": "textarea"},
    "4": {"name": "Email", "value": "jane.doe@example.com", "id": 4, "type": "email"},
    "5": {"name": "Medication", "value": "Metformin Glucophage", "id": 5, "type": "text"},
}
# Every word that must not be readable outside Reveal (as a word, in any case).
SECRET_WORDS = ["jane", "doe", "brien", "diabetes", "insulin", "dependent", "example",
                "metformin", "glucophage", "hiv"]
SECRET_TEXTS = [FILE_NAME, "Jane_Doe", "HIV_result", "result.pdf", "O'Brien", "O&#39;Brien",
                "O&#x27;Brien", "Type 2"]


def leaks(text: str) -> list[str]:
    found = [w for w in SECRET_WORDS if re.search(rf"(?<![a-z]){w}(?![a-z])", text, re.I)]
    return found + [t for t in SECRET_TEXTS if t.casefold() in text.casefold()]


@pytest.mark.slow  # a real worker process
def test_echoed_values_and_file_names_are_masked_everywhere_but_reveal(
        store, migrated_db, sim, uploads, tmp_path, http):
    doc = write_pdf(uploads / "wpforms" / "12-abc" / FILE_NAME, 3000)
    first, _ = store.enqueue(NewJob("wpforms:12:1", 12, 1, snapshot(
        12, 1, FIELDS, uploads, [doc])))
    second, _ = store.enqueue(NewJob("wpforms:12:2", 12, 2, snapshot(
        12, 2, FIELDS, uploads, [doc])))
    # One record is refused for good (after a 503 for either), the other is sent and its
    # document refused twice (503, then for good), each answer echoing what was sent.
    sim.script({"kind": "record", "status": 503, "echo": True},
               {"kind": "record", "echo": True},
               {"kind": "document", "status": 503, "echo": True},
               {"kind": "document", "echo": True})
    env = worker_env(migrated_db.database, sim.url, uploads, tmp_path,
                     FORMRELAY_BACKOFF_BASE="0.2", FORMRELAY_WORKERS="1")
    stdout = run_worker_until(env, lambda: all(  # it rings the due jobs when it starts
        store.get_job(j).status == Status.FAILED for j in (first.id, second.id)),
        "both jobs failed")

    # The partner did echo them (else this test proves nothing).
    assert sim.stats()["forced"]["script"] == 4
    # Which job's record met the 422 depends on the order the worker took them in.
    jobs = {j.partner_record_id is None: j for j in map(store.get_job, (first.id, second.id))}
    record, document = jobs[True], jobs[False]
    (failed_doc,) = store.documents(document.id)
    assert failed_doc.status == Status.FAILED and failed_doc.attempts == 2
    assert (record.error_category, document.error_category,
            failed_doc.error_category) == ("validation", "validation", "validation")
    assert record.last_error.startswith("HTTP 422 validation: invalid values: ")
    assert failed_doc.last_error.startswith("HTTP 422 validation: file [redacted] rejected")
    assert "needs a signed consent form" in failed_doc.last_error  # the partner's own words

    with store.db.transaction() as cur:
        cur.execute(f"SELECT message FROM {store.t.log}")
        log_rows = [r["message"] for r in cur.fetchall()]
        cur.execute(f"SELECT last_error FROM {store.t.jobs}")
        job_errors = [r["last_error"] or "" for r in cur.fetchall()]
        cur.execute(f"SELECT last_error FROM {store.t.documents}")
        doc_errors = [r["last_error"] or "" for r in cur.fetchall()]
    assert any("event=record.retry" in line and "HTTP 503 server" in line
               for line in stdout.splitlines())
    assert "event=document.failed" in stdout and "[redacted]" in stdout
    for where, texts in {"log rows": log_rows, "jobs.last_error": job_errors,
                         "documents.last_error": doc_errors, "worker stdout": [stdout]}.items():
        for text in texts:
            assert not leaks(text), (where, leaks(text), text)

    pages = {
        "job view": f"/admin/v1/view/job?id={document.id}",
        "job view (record)": f"/admin/v1/view/job?id={record.id}",
        "jobs list": "/admin/v1/view/jobs",
        "failed jobs": "/admin/v1/view/jobs?status=failed",
        "log viewer": "/admin/v1/view/logs",
        "overview": "/admin/v1/view/overview",
        "API job": f"/admin/v1/jobs/{document.id}",
        "API jobs": "/admin/v1/jobs",
        "API logs": "/admin/v1/logs",
    }
    for name, path in pages.items():
        resp = signed_request(http, "GET", path)
        assert resp.status_code == 200, (name, resp.text[:300])
        assert "[redacted]" in resp.text or name == "overview", name
        assert not leaks(resp.text), (name, leaks(resp.text))

    revealed = signed_request(http, "POST", f"/admin/v1/jobs/{document.id}/fields", b"{}")
    assert revealed.status_code == 200
    answer = revealed.json()
    assert answer["documents"] == [{"id": failed_doc.id, "name": FILE_NAME}]
    values = {f["name"]: f["value"] for f in answer["fields"]}
    assert values["Diagnosis"] == "Type 2 diabetes, insulin dependent"
    assert values["Surname at birth"] == "O'Brien"
    after = signed_request(http, "GET", "/admin/v1/logs?event=job.fields_revealed")
    assert not leaks(json.dumps(after.json()))
    assert [r["job_id"] for r in after.json()["logs"]] == [document.id]


@pytest.mark.parametrize("kind", ["record", "document"])
def test_the_category_is_written_with_the_error_and_cleared_by_success_and_retry(
        delivery, sim, uploads, kind):
    doc = write_pdf(uploads / "wpforms" / "12-abc" / FILE_NAME, 3000)
    job_id = delivery.enqueue("wpforms:12:9", snapshot(12, 9, FIELDS, uploads, [doc]), 9)
    sim.script({"kind": kind, "status": 429}, {"kind": kind, "status": 413, "echo": True})

    def step():  # the job, or its document
        return (delivery.store.get_job(job_id) if kind == "record"
                else delivery.store.documents(job_id)[0])

    delivery.drain(max_steps=2 if kind == "record" else 3)
    assert (step().status, step().error_category) == (Status.RETRYING, "rate_limited")
    assert step().last_error == "HTTP 429 rate_limited: rate limited"
    delivery.make_due()
    delivery.drain()
    assert (step().status, step().error_category) == (Status.FAILED, "too_large")
    assert delivery.store.get_job(job_id).error_category == "too_large"
    assert not leaks(step().last_error) and "[redacted]" in step().last_error
    delivery.store.transition_job(job_id, Event(EventKind.RETRY))  # an admin's retry
    assert (step().status, step().last_error, step().error_category) == (
        Status.PENDING, None, None)
    job = delivery.store.get_job(job_id)
    assert (job.last_error, job.error_category) == (None, None)
    delivery.doorbell.ring_record(job_id, 10)
    delivery.doorbell.rings += [("document", d.id, 0) for d in delivery.store.documents(job_id)]
    delivery.drain()
    assert delivery.store.get_job(job_id).status == Status.COMPLETED
    assert (step().last_error, step().error_category) == (None, None)
