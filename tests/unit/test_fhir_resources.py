"""The fhir-r4 profile's resources (valid FHIR R4, by fhir.resources' R4B models), the
default Patient template, and OperationOutcomes as the engine's errors."""

from __future__ import annotations

import base64
import hashlib
import io
import json

import pytest
import urllib3
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from sidecar.config import DEFAULT_TEMPLATES
from sidecar.errors import Category, PartnerConfigError, PermanentError, RetryableError
from sidecar.fhir import resources
from sidecar.fhir.client import _HashingBody, resource_id
from sidecar.fhir.outcome import error_for, error_from
from sidecar.partner_profile import Answer, DocumentUpload, RecordRequest
from sidecar.partner_sim.fhir import Invalid, criteria
from sidecar.payload import PayloadRenderer
from sidecar.submission import Submission

pytestmark = pytest.mark.unit


def sha1(data: bytes) -> bytes:
    return hashlib.sha1(data, usedforsecurity=False).digest()  # FHIR's Attachment.hash

SYSTEM = resources.DEFAULT_SYSTEM
REFERENCE = "wpforms:12:34"
PAYLOAD = {"name": [{"family": "Doe", "given": ["Jane"]}], "birthDate": "1980-02-01",
           "gender": "female", "telecom": [{"system": "email", "value": "jane@example.com"}]}
ANSWERS = (Answer("1", "Name", "name", "Jane Doe"), Answer("3", "Date of birth", "date-time",
                                                           "1980-02-01"),
           Answer("5", "Reason for visit", "textarea", "Annual check-up\nand a rash"))
RECORD = RecordRequest(PAYLOAD, REFERENCE, 12, ANSWERS)
FILENAME = "Jane_Doe_HIV_result.pdf"


def upload(data: bytes, label: str = "Referral letter") -> DocumentUpload:
    return DocumentUpload(io.BytesIO(data), FILENAME, "application/pdf", len(data), label,
                          f"{REFERENCE}:doc:4:0")


# the record: one transaction --------------------------------------------------------


def test_the_record_is_one_valid_transaction_of_a_patient_and_a_questionnaire_response():
    bundle = resources.record_bundle(RECORD, authored="2026-01-02T03:04:05Z")
    Bundle.model_validate(bundle)
    patient_entry, qr_entry = bundle["entry"]
    Patient.model_validate(patient_entry["resource"])
    qr = QuestionnaireResponse.model_validate(qr_entry["resource"])
    criteria_text = f"identifier={SYSTEM}|{REFERENCE}"
    assert patient_entry["request"] == {"method": "POST", "url": "Patient",
                                        "ifNoneExist": criteria_text}
    assert qr_entry["request"] == {"method": "POST", "url": "QuestionnaireResponse",
                                   "ifNoneExist": criteria_text}
    assert patient_entry["fullUrl"].startswith("urn:uuid:")
    assert qr_entry["resource"]["subject"] == {"reference": patient_entry["fullUrl"]}
    assert qr.status == "completed" and qr_entry["resource"]["authored"] == "2026-01-02T03:04:05Z"
    assert qr_entry["resource"]["identifier"] == {"system": SYSTEM, "value": REFERENCE}
    assert qr_entry["resource"]["item"] == [
        {"linkId": "1", "text": "Name", "answer": [{"valueString": "Jane Doe"}]},
        {"linkId": "3", "text": "Date of birth", "answer": [{"valueString": "1980-02-01"}]},
        {"linkId": "5", "text": "Reason for visit",
         "answer": [{"valueString": "Annual check-up\nand a rash"}]}]


def test_the_bundle_is_the_same_on_every_retry_so_a_replay_sends_the_same_bytes():
    assert json.dumps(resources.record_bundle(RECORD)) == json.dumps(resources.record_bundle(
        RecordRequest(dict(PAYLOAD), REFERENCE, 12, ANSWERS)))
    other = resources.record_bundle(RecordRequest(PAYLOAD, "wpforms:12:35", 12, ANSWERS))
    assert other["entry"][0]["fullUrl"] != resources.record_bundle(RECORD)["entry"][0]["fullUrl"]


def test_the_patient_takes_the_template_elements_and_always_the_job_identifier_once():
    ours = {"system": SYSTEM, "value": REFERENCE}
    mrn = {"system": "urn:oid:1.2.3", "value": "MRN-1"}
    patient = resources.patient({**PAYLOAD, "identifier": [mrn, ours], "id": "x",
                                 "resourceType": "Observation", "meta": {"tag": []}},
                                SYSTEM, REFERENCE)
    Patient.model_validate(patient)
    assert patient["resourceType"] == "Patient" and "id" not in patient and "meta" not in patient
    assert patient["identifier"] == [ours, mrn]
    assert resources.patient({}, "urn:x", "r")["identifier"] == [{"system": "urn:x",
                                                                  "value": "r"}]


def test_no_answers_make_no_item_list_and_still_validate():
    bundle = resources.record_bundle(RecordRequest({}, REFERENCE, 12, (
        Answer("", "Blank", "text", "   "),)))
    Bundle.model_validate(bundle)
    assert "item" not in bundle["entry"][1]["resource"]


def test_an_answer_without_a_field_id_gets_a_link_id_all_the_same():
    qr = resources.questionnaire_response(
        RecordRequest({}, REFERENCE, 12, (Answer("", "", "text", "x"),)), SYSTEM, "urn:uuid:1")
    QuestionnaireResponse.model_validate(qr)
    assert qr["item"] == [{"linkId": "item-1", "answer": [{"valueString": "x"}]}]


def test_if_none_exist_escapes_the_search_separators():
    assert resources.if_none_exist("urn:a", "x|y,z$w\\v") == \
        "identifier=urn:a|x%5C%7Cy%5C%2Cz%5C%24w%5C%5Cv"
    # the simulator (as a server) reads it back
    assert criteria(resources.if_none_exist("urn:a", "x|y,z$w\\v")) == ("urn:a", "x|y,z$w\\v")
    with pytest.raises(Invalid):
        criteria("name=Doe")


# the default Patient template -------------------------------------------------------

JOB = {"reference": REFERENCE, "form_id": 12, "entry_id": 34, "key_generation": 1,
       "source": "wpforms"}
FIELDS = (
    {"id": 1, "name": "Name", "type": "name", "value": "Jane Q Doe", "first": "Jane",
     "middle": "Q", "last": "Doe"},
    {"id": 2, "name": "Email", "type": "email", "value": "jane@example.com"},
    {"id": 3, "name": "Date of Birth", "type": "date-time", "value": "1980-02-01"},
    {"id": 4, "name": "Mobile", "type": "phone", "value": "+1 555 0100"},
    {"id": 5, "name": "Sex", "type": "select", "value": "Female"},
    {"id": 6, "name": "Home address", "type": "address", "value": "1 Main St, Springfield",
     "address1": "1 Main St", "address2": "", "city": "Springfield", "state": "IL",
     "postal": "62701", "country": "US"},
    {"id": 7, "name": "Documents", "type": "file-upload", "value": "https://x/a.pdf"},
)


def render(fields: tuple[dict[str, object], ...]) -> dict[str, object]:
    submission = Submission(12, 34, fields, (), "snapshot", "fhir_patient.json.j2")
    return PayloadRenderer(DEFAULT_TEMPLATES).render(submission, JOB)


def test_the_default_template_maps_name_telecom_birth_date_gender_and_address():
    payload = render(FIELDS)
    assert payload == {
        "resourceType": "Patient",
        "name": [{"use": "official", "text": "Jane Q Doe", "family": "Doe",
                  "given": ["Jane", "Q"]}],
        "telecom": [{"system": "email", "value": "jane@example.com"},
                    {"system": "phone", "value": "+1 555 0100"}],
        "gender": "female", "birthDate": "1980-02-01",
        "address": [{"text": "1 Main St, Springfield", "line": ["1 Main St"],
                     "city": "Springfield", "state": "IL", "postalCode": "62701",
                     "country": "US"}]}
    Patient.model_validate(resources.patient(payload, SYSTEM, REFERENCE))


@pytest.mark.parametrize("fields", [
    (),
    ({"id": 1, "name": "Name", "type": "name", "value": "Jane"},  # simple format: no parts
     {"id": 3, "name": "DOB", "type": "text", "value": "01/02/1980"},  # not ISO: left out
     {"id": 5, "name": "Gender", "type": "select", "value": "prefer not to say"},
     {"id": 6, "name": "Address", "type": "address", "value": ""},
     {"id": 2, "name": "Email", "type": "email", "value": ""}),
])
def test_the_default_template_leaves_out_what_the_form_lacks(fields):
    payload = render(fields)
    assert set(payload) <= {"resourceType", "name"}
    Patient.model_validate(resources.patient(payload, SYSTEM, REFERENCE))


# documents ----------------------------------------------------------------------------


def test_a_document_reference_is_valid_with_the_sha1_as_base64_and_never_the_file_name():
    data = b"%PDF-1.7 " + bytes(range(256)) * 40
    document = upload(data)
    resource = resources.document_reference(document, document.reference, "17", "99", len(data),
                                             sha1(data))
    parsed = DocumentReference.model_validate(resource)
    attachment = resource["content"][0]["attachment"]
    assert attachment["hash"] == base64.b64encode(sha1(data)).decode()
    assert parsed.content[0].attachment.hash == sha1(data)  # base64Binary
    assert (attachment["url"], attachment["size"], attachment["contentType"]) == (
        "Binary/99", len(data), "application/pdf")
    assert resource["subject"] == {"reference": "Patient/17"}
    assert resource["status"] == "current"
    assert resource["identifier"] == [{"system": SYSTEM, "value": document.reference}]
    assert attachment["title"] == "Referral letter"
    for unsafe in (FILENAME, "Jane_Doe", "HIV"):
        assert unsafe not in json.dumps(resource)


def test_a_document_without_a_label_is_titled_document():
    resource = resources.document_reference(upload(b"x", label="  "), "r", "1", "2", 1,
                                            sha1(b"x"))
    assert resource["content"][0]["attachment"]["title"] == "Document"


def test_the_upload_is_hashed_chunk_by_chunk_as_it_goes_out():
    data = bytes(range(256)) * 1000
    body = _HashingBody(io.BytesIO(data))
    while body.read(4096):
        pass
    assert (body.size, body.sha1.digest()) == (len(data), sha1(data))
    assert body.rewind() is False  # BytesIO has no rewind(): a 401 cannot re-send it


@pytest.mark.parametrize("location,kind,expected", [
    ("Patient/123/_history/1", "Patient", "123"),
    ("https://fhir.example.org/r4/Patient/abc-9/_history/2", "Patient", "abc-9"),
    ("http://h/fhir/Binary/7", "Binary", "7"),
    ("DocumentReference/5", "Patient", None),
    ("", "Binary", None),
])
def test_the_id_comes_from_a_location_relative_or_absolute(location, kind, expected):
    assert resource_id(location, kind) == expected


# OperationOutcome -> the engine's errors ----------------------------------------------


def outcome(code: str, diagnostics: str = "Patient.birthDate: '01/02/1980' is not a date",
            severity: str = "error") -> dict[str, object]:
    return {"resourceType": "OperationOutcome", "issue": [
        {"severity": severity, "code": code, "diagnostics": diagnostics,
         "details": {"text": "Jane Doe rejected"}}]}


@pytest.mark.parametrize("status,code,kind,category", [
    (422, "invalid", PermanentError, Category.VALIDATION),
    (400, "structure", PermanentError, Category.VALIDATION),
    (404, "not-found", PermanentError, Category.NOT_FOUND),
    (409, "duplicate", PermanentError, Category.CONFLICT),
    (412, "multiple-matches", PermanentError, Category.CLIENT),
    (500, "exception", RetryableError, Category.SERVER),
    (503, "transient", RetryableError, Category.SERVER),
    (408, "timeout", RetryableError, Category.CLIENT),
    (429, "throttled", RetryableError, Category.RATE_LIMITED),
    (400, "throttled", RetryableError, Category.RATE_LIMITED),  # the code refines a 4xx
    (422, "lock-error", RetryableError, Category.VALIDATION),
    (401, "login", PartnerConfigError, Category.AUTH),
    (403, "forbidden", PartnerConfigError, Category.AUTH),
    (400, "security", PartnerConfigError, Category.AUTH),
    (422, "expired", PartnerConfigError, Category.AUTH),
])
def test_an_operation_outcome_maps_by_status_then_issue_code(status, code, kind, category):
    error = error_from(status, outcome(code))
    assert type(error) is kind and error.status == status and error.category == category
    assert str(error).startswith(f"HTTP {status} ") and f"({code})" in str(error)
    assert error.partner_text == ("Patient.birthDate: '01/02/1980' is not a date;"
                                  " Jane Doe rejected")
    for secret in ("01/02/1980", "Jane", "birthDate"):
        assert secret not in str(error)


def test_warnings_do_not_refine_and_unknown_codes_are_not_shown():
    assert type(error_from(400, outcome("throttled", severity="warning"))) is PermanentError
    error = error_from(422, outcome("Jane Doe's own code"))
    assert str(error) == "HTTP 422 validation" and "Jane" in error.partner_text


def test_a_redirect_is_a_configuration_error_without_partner_text():
    error = error_from(302, None, "moved")
    assert type(error) is PartnerConfigError and error.partner_text == ""


def test_an_answer_read_from_the_wire_keeps_retry_after_and_falls_back_to_plain_text():
    def resp(status: int, body: bytes, **headers: str) -> urllib3.HTTPResponse:
        return urllib3.HTTPResponse(body=io.BytesIO(body), headers=headers, status=status,
                                    preload_content=False)

    oo = json.dumps(outcome("throttled", "slow down, Jane")).encode()
    error = error_for(resp(429, oo, **{"Retry-After": "7",
                                       "Content-Type": "application/fhir+json"}), oo)
    assert isinstance(error, RetryableError) and error.retry_after == 7.0
    assert "Jane" in error.partner_text and "Jane" not in str(error)
    plain = error_for(resp(422, b'{"error": "bad value Jane"}'), b'{"error": "bad value Jane"}')
    assert type(plain) is PermanentError and plain.partner_text == "bad value Jane"
    html = error_for(resp(502, b"<html>Jane</html>", **{"Content-Type": "text/html"}),
                     b"<html>Jane</html>")
    assert type(html) is RetryableError and html.partner_text == ""
    assert error_for(resp(422, b""), None).partner_text == ""  # over the cap: not read
