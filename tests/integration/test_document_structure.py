"""A structurally broken document is rejected through real delivery (MariaDB, simulator)."""

from __future__ import annotations

import json

import pytest

from devstack.samples import write_html_as_pdf, write_jpeg, write_pdf
from sidecar.states import Status
from tests.integration.delivery import snapshot, text_fields

pytestmark = [pytest.mark.db, pytest.mark.sim]

REASON = "PDF is truncated (no cross-reference table)"


def test_a_truncated_pdf_and_a_polyglot_are_rejected_and_never_reach_the_partner(
        delivery, sim, uploads, caplog):
    folder = uploads / "wpforms" / "12-abc"
    good = write_jpeg(folder / "scan.jpg", 4096)
    whole = write_pdf(folder / "whole.pdf", 6000).read_bytes()
    cut = folder / "Referral.pdf"
    cut.write_bytes(whole[:4000])  # a broken upload: the xref and trailer are gone
    login = write_html_as_pdf(folder / "login.html", 3000).read_bytes()
    glued = folder / "letter.pdf"
    glued.write_bytes(whole + login)  # a whole PDF with a web page behind it
    job_id = delivery.enqueue(
        "wpforms:12:40", snapshot(12, 40, text_fields(), uploads, [good, cut, glued]), 40)
    with caplog.at_level("DEBUG"):
        delivery.drain()

    job = delivery.store.get_job(job_id)
    docs = delivery.store.documents(job_id)
    assert job.status == Status.FAILED
    assert [d.status for d in docs] == [Status.UPLOADED, Status.REJECTED, Status.REJECTED]
    assert [d.attempts for d in docs] == [1, 1, 1]  # a rejection is final: no retry
    assert docs[1].last_error == REASON
    assert docs[2].last_error.startswith("PDF has ")
    assert docs[2].last_error.endswith("of data after its end marker (%%EOF)")
    assert f"document 2 rejected: {REASON}" in job.last_error  # 1-based, in job order

    rejected_rows = [r for r in delivery.store.job_log(job_id) if r["event"] == "document.rejected"]
    assert len(rejected_rows) == 2
    assert any(REASON in r["message"] for r in rejected_rows)

    (record,) = sim.records(bodies=True)
    assert [d["name"] for d in record["documents"]] == ["scan.jpg"]
    assert sim.stats()["documents_created"] == 1

    text = caplog.text + json.dumps([r["message"] for r in delivery.store.job_log(job_id)])
    for content in ("Referral.pdf", "letter.pdf", "Log In", "FormRelay sample", "<html"):
        assert content not in text
