"""Failure categories and the reason a failed partner call leaves behind."""

from __future__ import annotations

import pytest

from sidecar.errors import (
    Category,
    PartnerConfigError,
    PermanentError,
    RetryableError,
    category_for_status,
)
from sidecar.failures import WITHHELD, masker_for, reason
from sidecar.redact import MASK, Masker
from sidecar.submission import FileRef, Submission

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("status, category", [
    (400, "validation"), (422, "validation"), (401, "auth"), (403, "auth"),
    (404, "not_found"), (410, "not_found"), (409, "conflict"), (413, "too_large"),
    (429, "rate_limited"), (408, "client"), (425, "client"), (418, "client"),
    (500, "server"), (503, "server"), (599, "server"), (301, "redirect"), (200, "bad_response"),
])
def test_each_status_has_one_category(status, category):
    assert category_for_status(status) == category
    assert PermanentError(f"HTTP {status}", status).category == category


def test_categories_fit_the_column_and_errors_without_status_are_network():
    assert all(len(c.value) <= 20 for c in Category)  # error_category is VARCHAR(20)
    assert RetryableError("could not connect").category == Category.NETWORK
    assert RetryableError("timed out", category=Category.TIMEOUT).category == "timeout"


def test_the_partner_text_is_never_in_the_message_and_is_masked_in_the_reason():
    exc = PermanentError("HTTP 422 validation", 422,
                         partner_text="file Jane_Doe.pdf: Jane Doe is not insured")
    assert str(exc) == "HTTP 422 validation" and "Jane" not in repr(exc.args)
    text = reason(exc, lambda: Masker(["Jane Doe", "Jane_Doe.pdf"]))
    assert text == f"HTTP 422 validation: file {MASK} is not insured"  # adjacent: one mask


def test_no_partner_text_reads_no_values_and_unreadable_values_withhold_it():
    def boom() -> Masker:
        raise AssertionError("the masker was built without a text to mask")

    assert reason(PermanentError("HTTP 404 not_found", 404, partner_text="  "), boom) == (
        "HTTP 404 not_found")
    withheld = reason(PartnerConfigError("HTTP 401 auth", 401, partner_text="Jane Doe"),
                      lambda: None)
    assert "Jane" not in withheld and WITHHELD in withheld


def test_the_job_masker_holds_every_value_and_file_name():
    sub = Submission(12, 3, ({"id": 1, "type": "text", "name": "Diagnosis",
                              "value": "Type 2 diabetes"},), (FileRef("4", 0, "Scan_Result.pdf"),),
                     "snapshot")
    masker = masker_for(sub, ["Other_Upload.png"])
    assert masker is not None and masker_for(None) is None
    masked = masker.mask("diabetes; Scan_Result.pdf; other upload")
    assert "diabetes" not in masked and "Scan" not in masked and "upload" not in masked


def test_a_file_fields_url_masks_its_file_name_not_the_sites_words():
    sub = Submission(12, 3, ({"id": 4, "type": "file-upload", "name": "Documents",
                              "value": "https://clinic.example/wp-content/uploads/wpforms/"
                                       "12-abc/Scan_Result-9f2c.pdf"},), (), "snapshot")
    masker = masker_for(sub)
    assert masker is not None
    masked = masker.mask("uploads over 10MB are refused as content; got Scan_Result-9f2c.pdf")
    assert masked == f"uploads over 10MB are refused as content; got {MASK}"
