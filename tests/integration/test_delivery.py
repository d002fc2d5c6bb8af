"""Every delivery outcome, against real MariaDB and the partner simulator over HTTP."""

from __future__ import annotations

import json
import os

import pytest

from devstack.samples import write_html_as_pdf, write_jpeg, write_pdf, write_png
from sidecar.errors import ConfigError, PartnerConfigError
from sidecar.states import Phase, Status
from tests.conftest import PREFIX
from tests.integration.delivery import build_delivery, snapshot, text_fields

pytestmark = [pytest.mark.db, pytest.mark.sim]


def events(delivery, job_id):
    return [r["event"] for r in delivery.store.job_log(job_id)]


def files(uploads, *names):
    writers = {"pdf": write_pdf, "jpg": write_jpeg, "png": write_png}
    return [writers[n.rsplit(".", 1)[1]](uploads / "wpforms" / "12-abc" / n, 4096) for n in names]


def test_a_record_and_two_documents_arrive_and_the_job_completes(delivery, sim, uploads):
    docs = files(uploads, "Referral.pdf", "scan.jpg")
    job_id = delivery.enqueue("wpforms:12:1", snapshot(12, 1, text_fields(), uploads, docs), 1)
    delivery.drain()
    job = delivery.store.get_job(job_id)
    assert (job.status, job.phase, job.attempts) == (Status.COMPLETED, Phase.DONE, 1)
    (record,) = sim.records(bodies=True)
    assert record["id"] == job.partner_record_id
    assert record["idempotency_key"] == "wpforms:12:1:1"
    assert record["body"]["external_reference"] == "wpforms:12:1"
    assert record["body"]["fields"]["Email"] == "jane@example.com"
    uploaded = {d["name"]: d for d in record["documents"]}
    assert set(uploaded) == {"Referral.pdf", "scan.jpg"}
    stored = delivery.store.documents(job_id)
    for doc in stored:
        assert doc.status == Status.UPLOADED and doc.partner_document_id
        assert uploaded[doc.original_name]["sha256"] == doc.sha256
        assert uploaded[doc.original_name]["size"] == doc.size == 4096
    assert {d.detected_type for d in stored} == {"application/pdf", "image/jpeg"}
    assert events(delivery, job_id) == ["job.created", "record.sent", "document.uploaded",
                                        "document.uploaded", "job.completed"]
    sent = delivery.store.job_log(job_id)[1]
    assert sent["http_status"] == 201 and sent["duration_ms"] is not None
    assert "from snapshot" in sent["message"]


def test_a_job_without_documents_completes_after_the_record(delivery, sim, uploads):
    job_id = delivery.enqueue("wpforms:12:2", snapshot(12, 2, text_fields(), uploads, []), 2)
    delivery.drain()
    assert delivery.store.get_job(job_id).status == Status.COMPLETED
    assert sim.stats()["documents_created"] == 0


def test_a_timeout_then_success(delivery, sim, uploads):
    sim.script({"kind": "record", "timeout": True})
    job_id = delivery.enqueue("wpforms:12:3", snapshot(12, 3, text_fields(), uploads, []), 3)
    delivery.drain()
    job = delivery.store.get_job(job_id)
    assert (job.status, job.attempts) == (Status.COMPLETED, 2)
    assert events(delivery, job_id) == ["job.created", "record.retry", "record.sent"]
    assert sim.stats()["records_created"] == 1


def test_503_three_times_then_success(delivery, sim, uploads):
    sim.script({"kind": "record", "status": 503, "count": 3})
    job_id = delivery.enqueue("wpforms:12:4", snapshot(12, 4, text_fields(), uploads, []), 4)
    delivery.drain()
    job = delivery.store.get_job(job_id)
    assert (job.status, job.attempts) == (Status.COMPLETED, 4)
    retries = [r for r in delivery.store.job_log(job_id) if r["event"] == "record.retry"]
    assert [(r["attempt"], r["http_status"], r["level"]) for r in retries] == [
        (1, 503, "warning"), (2, 503, "warning"), (3, 503, "warning")]


def test_429_waits_at_least_its_retry_after(delivery, sim, uploads):
    sim.script({"kind": "record", "status": 429, "retry_after": 7})
    job_id = delivery.enqueue("wpforms:12:5", snapshot(12, 5, text_fields(), uploads, []), 5)
    delivery.drain()
    job = delivery.store.get_job(job_id)
    assert job.status == Status.RETRYING
    wait = (job.next_attempt_at - job.updated_at).total_seconds()
    assert 6.9 <= wait <= 7.1
    assert delivery.doorbell.rings == []  # its ring was taken: a retry 7 s from now
    delivery.make_due()
    delivery.drain()
    assert delivery.store.get_job(job_id).status == Status.COMPLETED


def test_422_fails_the_job_at_once_with_the_partners_message_masked(delivery, sim, uploads):
    fields = text_fields() | {"9": {"name": "Flag", "value": "x", "id": 9, "type": "hidden"}}
    snap = json.loads(snapshot(12, 6, fields, uploads, []))
    snap["template"] = "reject.json.j2"
    template = delivery.engine.renderer.env.loader.searchpath[0] + "/reject.json.j2"
    with open(template, "w") as fh:
        fh.write('{"reject": true, "email": {{ values["Email"] | tojson }}}')
    try:
        job_id = delivery.enqueue("wpforms:12:6", json.dumps(snap), 6)
        delivery.drain()
    finally:
        os.remove(template)
    job = delivery.store.get_job(job_id)
    assert (job.status, job.attempts) == (Status.FAILED, 1)
    assert job.last_error.startswith("HTTP 422 validation: ")
    assert job.error_category == "validation"
    assert "jane@example.com" not in job.last_error and "[redacted]" in job.last_error
    assert all("jane@example.com" not in r["message"] for r in delivery.store.job_log(job_id))
    assert events(delivery, job_id)[-1] == "record.failed"


def test_401_pauses_without_failing_or_spending_an_attempt(delivery, sim, uploads):
    sim.script({"kind": "record", "status": 401})
    job_id = delivery.enqueue("wpforms:12:7", snapshot(12, 7, text_fields(), uploads, []), 7)
    with pytest.raises(PartnerConfigError, match="HTTP 401"):
        delivery.drain()
    job = delivery.store.get_job(job_id)
    assert (job.status, job.attempts) == (Status.RETRYING, 0)
    assert "HTTP 401" in job.last_error
    assert events(delivery, job_id)[-1] == "record.paused"


def test_a_missing_uploads_directory_pauses_documents_without_spending_attempts(
        delivery, sim, uploads):
    docs = files(uploads, "a.pdf")
    job_id = delivery.enqueue("wpforms:12:16", snapshot(12, 16, text_fields(), uploads, docs), 16)
    renamed = uploads.with_name("uploads-unmounted")
    uploads.rename(renamed)
    try:  # the record goes; its worker goes on with the document, and finds no uploads
        with pytest.raises(ConfigError, match="uploads"):
            delivery.drain()
        assert delivery.store.get_job(job_id).partner_record_id
    finally:
        renamed.rename(uploads)
    (doc,) = delivery.store.documents(job_id)
    assert (doc.status, doc.attempts) == (Status.RETRYING, 0)
    assert [kind for kind, _, _ in delivery.doorbell.rings] == ["document"]  # rung again
    delivery.make_due()
    delivery.drain()
    assert delivery.store.get_job(job_id).status == Status.COMPLETED


def test_a_document_failing_twice_retries_only_itself(delivery, sim, uploads):
    docs = files(uploads, "a.pdf", "b.pdf", "c.pdf", "d.pdf", "e.pdf")
    job_id = delivery.enqueue("wpforms:12:8", snapshot(12, 8, text_fields(), uploads, docs), 8)
    sim.script({"kind": "document", "status": 500, "count": 2})
    delivery.drain()  # the first document meets both failures; the others go on without it
    stored = delivery.store.documents(job_id)
    assert [d.attempts for d in stored] == [3, 1, 1, 1, 1]
    assert all(d.status == Status.UPLOADED for d in stored)
    assert delivery.store.get_job(job_id).status == Status.COMPLETED
    assert sim.stats()["documents_created"] == 5


def test_html_disguised_as_pdf_and_an_empty_file_are_rejected_and_the_job_fails(
        delivery, sim, uploads):
    good = files(uploads, "ok.pdf")[0]
    html = write_html_as_pdf(uploads / "wpforms" / "12-abc" / "login.pdf", 3000)
    empty = uploads / "wpforms" / "12-abc" / "empty.pdf"
    empty.touch()
    job_id = delivery.enqueue(
        "wpforms:12:9", snapshot(12, 9, text_fields(), uploads, [good, html, empty]), 9)
    delivery.drain()
    job = delivery.store.get_job(job_id)
    assert job.status == Status.FAILED
    assert job.last_error.startswith("document 2 rejected: type text/html")
    assert "document 3 rejected: file is 0 bytes" in job.last_error
    assert [d.status for d in delivery.store.documents(job_id)] == [
        Status.UPLOADED, Status.REJECTED, Status.REJECTED]
    assert [d.attempts for d in delivery.store.documents(job_id)] == [1, 1, 1]  # no retry
    assert sim.stats()["documents_created"] == 1
    assert events(delivery, job_id).count("document.rejected") == 2


def test_a_symlink_out_of_the_uploads_directory_is_refused(delivery, sim, uploads, tmp_path):
    secret = write_pdf(tmp_path / "outside" / "secret.pdf", 4096)
    link = uploads / "wpforms" / "12-abc" / "innocent.pdf"
    link.symlink_to(secret)
    job_id = delivery.enqueue("wpforms:12:10", snapshot(12, 10, text_fields(), uploads, [link]),
                              10)
    delivery.drain()
    (doc,) = delivery.store.documents(job_id)
    assert doc.status == Status.REJECTED
    assert "outside the uploads directory" in doc.last_error
    assert sim.stats()["documents_created"] == 0


def test_an_incomplete_snapshot_is_recovered_from_the_wpforms_tables(
        delivery, sim, uploads, wpforms_tables):
    (doc,) = files(uploads, "Referral.pdf")
    full = json.loads(snapshot(12, 55, text_fields(), uploads, [doc]))["fields"]
    with delivery.store.db.transaction() as cur:
        cur.execute(f"INSERT INTO {PREFIX}wpforms_entries (entry_id, form_id, post_id, user_id,"
                    " status, type, fields, meta, date, date_modified, ip_address, user_agent,"
                    " user_uuid) VALUES (55, 12, 0, 0, '', '', %s, '', UTC_TIMESTAMP(),"
                    " UTC_TIMESTAMP(), '', '', '')", (json.dumps(full),))
    broken = json.dumps({"version": 1, "form_id": 12, "entry_id": 55, "fields": {}})
    job_id = delivery.enqueue("wpforms:12:55", broken, 55)
    delivery.drain()
    job = delivery.store.get_job(job_id)
    assert job.status == Status.COMPLETED
    sent = next(r for r in delivery.store.job_log(job_id) if r["event"] == "record.sent")
    assert "from WPForms entry 55 (snapshot has no fields)" in sent["message"]
    (record,) = sim.records(bodies=True)
    assert record["body"]["fields"]["Name"] == "Jane Doe"
    assert [d["name"] for d in record["documents"]] == ["Referral.pdf"]


@pytest.mark.parametrize("snap", ["{not json", None])
def test_an_unusable_snapshot_of_an_unstored_entry_fails_with_the_reason(delivery, sim, snap):
    job_id = delivery.enqueue("wpforms:12:uuid-1", snap, 0)
    delivery.drain()
    job = delivery.store.get_job(job_id)
    assert job.status == Status.FAILED
    assert "the entry was not stored (entry id 0)" in job.last_error
    assert sim.stats()["requests_total"] == 0


def test_attempts_exhausted_end_in_failed_with_the_last_error(store, sim, uploads):
    delivery = build_delivery(store, sim.url, uploads, max_attempts=3)
    sim.configure(error_rate=1.0)
    job_id = delivery.enqueue("wpforms:12:11", snapshot(12, 11, text_fields(), uploads, []), 11,
                              max_attempts=3)
    delivery.drain()
    job = delivery.store.get_job(job_id)
    assert (job.status, job.attempts) == (Status.FAILED, 3)
    assert job.last_error.startswith("gave up after 3 attempts: HTTP 503")
    assert events(delivery, job_id)[-1] == "record.failed"


def test_a_duplicate_task_does_nothing(delivery, sim, uploads):
    job_id = delivery.enqueue("wpforms:12:12", snapshot(12, 12, text_fields(), uploads, []), 12)
    delivery.doorbell.ring_record(job_id, 10)  # the same doorbell, twice
    delivery.drain()
    delivery.engine.deliver_record(job_id)  # and once more, late
    assert delivery.store.get_job(job_id).attempts == 1
    assert sim.stats()["requests_total"] == 1
    assert events(delivery, job_id) == ["job.created", "record.sent"]


def test_a_timeout_after_the_partner_accepted_creates_one_patient(delivery, sim, uploads):
    sim.script({"kind": "record", "accept_then_timeout": True})
    job_id = delivery.enqueue("wpforms:12:13", snapshot(12, 13, text_fields(), uploads, []), 13)
    delivery.drain()
    job = delivery.store.get_job(job_id)
    assert (job.status, job.attempts) == (Status.COMPLETED, 2)
    stats = sim.stats()
    assert stats["records_created"] == 1
    assert stats["duplicates_suppressed"]["record"] == 1
    (record,) = sim.records()
    assert record["id"] == job.partner_record_id


def test_a_2xx_without_an_id_is_not_a_success(delivery, sim, uploads):
    sim.script({"kind": "record", "status": 200, "body": {}})
    job_id = delivery.enqueue("wpforms:12:14", snapshot(12, 14, text_fields(), uploads, []), 14)
    delivery.drain()
    log = delivery.store.job_log(job_id)
    assert log[1]["event"] == "record.retry" and "without 'id'" in log[1]["message"]
    assert delivery.store.get_job(job_id).status == Status.COMPLETED


def test_nothing_submitted_reaches_the_log_or_stdout(delivery, sim, uploads, caplog):
    sim.script({"kind": "record", "status": 503})
    docs = files(uploads, "Referral.pdf")
    job_id = delivery.enqueue("wpforms:12:15", snapshot(12, 15, text_fields(), uploads, docs), 15)
    with caplog.at_level("DEBUG"):
        delivery.drain()
    assert delivery.store.get_job(job_id).status == Status.COMPLETED
    text = caplog.text + json.dumps([r["message"] for r in delivery.store.job_log(job_id)])
    for value in ("Jane Doe", "jane@example.com", "1980-02-01", "Referral.pdf"):
        assert value not in text
    assert "event=record.sent" in caplog.text and f"job={job_id}" in caplog.text


def test_the_sidecars_attempt_limit_applies_to_the_record_step(store, sim, uploads):
    """The bridge writes a default limit into the job row; FORMRELAY_MAX_ATTEMPTS rules."""
    d = build_delivery(store, sim.url, uploads, read_timeout=1.0, max_attempts=3)
    sim.configure(error_rate=1.0)
    job_id = d.enqueue("FR-MAX", snapshot(12, 0, text_fields(), uploads, []), max_attempts=10)
    for _ in range(5):
        d.drain()
        d.make_due()
    job = store.get_job(job_id)
    assert (job.status, job.attempts, job.max_attempts) == (Status.FAILED, 3, 3)
    assert sim.stats()["requests_total"] == 3
