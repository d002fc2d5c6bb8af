"""FhirClient against the simulator's FHIR mode over real HTTP: what arrives (fetched back
and validated against FHIR R4), replays that create nothing, refusals, 401s, memory."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from fhir.resources.R4B.binary import Binary
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from sidecar.errors import Category, PartnerConfigError, PermanentError, RetryableError
from sidecar.fhir.client import FhirClient, FhirSettings
from sidecar.partner_profile import Answer, DocumentUpload, RecordRequest, StaticAuth
from sidecar.partner_sim import RunningSim
from tests.integration.test_partner_sim import formrelay_bin, read_line

pytest_plugins = ["tests.partner_sim_fixture"]
pytestmark = pytest.mark.sim

SYSTEM = "urn:formrelay:reference"
REFERENCE = "wpforms:12:34"
PAYLOAD = {"name": [{"use": "official", "family": "Doe", "given": ["Jane"]}],
           "birthDate": "1980-02-01", "gender": "female",
           "telecom": [{"system": "email", "value": "jane@example.com"}]}
ANSWERS = (Answer("1", "Name", "name", "Jane Doe"),
           Answer("2", "Email", "email", "jane@example.com"),
           Answer("5", "Reason for visit", "textarea", "Annual check-up"))
RECORD = RecordRequest(PAYLOAD, REFERENCE, 12, ANSWERS)
FILENAME = "Jane_Doe_HIV_result.pdf"
TOKEN = "fhir-t0k"


def sha1_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha1(data, usedforsecurity=False).digest()).decode()


class FileBody:
    """A document body read from a file a chunk at a time (never whole), rewindable as the
    engine's checked reader is."""

    def __init__(self, path: Path) -> None:
        self._file, self._size = path.open("rb"), path.stat().st_size

    def read(self, size: int | None = -1) -> bytes:
        return self._file.read(64 * 1024 if size is None or size < 0 else size)

    def __len__(self) -> int:
        return self._size - self._file.tell()

    def rewind(self) -> None:
        self._file.seek(0)

    def close(self) -> None:
        self._file.close()


class OneShotBody(FileBody):
    """As FileBody, but it cannot start over."""

    rewind = None  # type: ignore[assignment]


class RotatingAuth:
    """Bearer credentials that can go stale (the partner then answers 401) until invalidated."""

    def __init__(self, stale: bool = False, good: bool = True) -> None:
        self.stale, self.good, self.invalidated = stale, good, 0

    def headers(self) -> dict[str, str]:
        fresh = self.good and not self.stale
        return {"Authorization": f"Bearer {TOKEN if fresh else 'expired'}"}

    def invalidate(self) -> None:
        self.invalidated += 1
        self.stale = False


@pytest.fixture
def fhir_sim(partner_sim_factory: Any) -> RunningSim:
    sim: RunningSim = partner_sim_factory(profile="fhir-r4", base="/fhir")
    return sim


@pytest.fixture
def client(fhir_sim: RunningSim) -> Iterator[FhirClient]:
    made = FhirClient(FhirSettings(fhir_sim.url), StaticAuth({}))
    yield made
    made.close()


def document(path: Path, label: str = "Referral letter", n: int = 0,
             body: FileBody | None = None) -> DocumentUpload:
    return DocumentUpload(body or FileBody(path), FILENAME, "application/pdf",
                          path.stat().st_size, label, f"{REFERENCE}:doc:4:{n}")


def fetch(sim: RunningSim, what: str) -> dict[str, Any]:
    answer = requests.get(f"{sim.url}/{what}", timeout=5,
                          headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("application/fhir+json")
    found: dict[str, Any] = answer.json()
    return found


@pytest.fixture
def pdfs(tmp_path: Path) -> list[Path]:
    paths = []
    for n, size in enumerate((7000, 300_001)):
        path = tmp_path / f"doc{n}.pdf"
        path.write_bytes(b"%PDF-1.7\n" + os.urandom(size))
        paths.append(path)
    return paths


# delivery ------------------------------------------------------------------------------


def test_a_record_and_two_documents_arrive_as_valid_fhir_resources(fhir_sim, client, pdfs):
    accepted = client.create_record(RECORD, "job-1")
    assert accepted.status == 201
    refs = [client.upload_document(accepted.id, document(p, label, n), f"job-1:doc:{n}")
            for n, (p, label) in enumerate(zip(pdfs, ("Referral letter", ""), strict=True))]
    assert [r.status for r in refs] == [201, 201]
    assert fhir_sim.fhir()["created"] == {"Patient": 1, "QuestionnaireResponse": 1,
                                          "Binary": 2, "DocumentReference": 2}

    patient = fetch(fhir_sim, f"Patient/{accepted.id}")
    Patient.model_validate(patient)
    assert patient["identifier"] == [{"system": SYSTEM, "value": REFERENCE}]
    assert patient["name"] == PAYLOAD["name"] and patient["birthDate"] == "1980-02-01"
    [qr_id] = fhir_sim.fhir()["ids"]["QuestionnaireResponse"]
    qr = fetch(fhir_sim, f"QuestionnaireResponse/{qr_id}")
    QuestionnaireResponse.model_validate(qr)
    assert qr["subject"] == {"reference": f"Patient/{accepted.id}"}  # the urn resolved
    assert [(i["linkId"], i["text"], i["answer"][0]["valueString"]) for i in qr["item"]] == [
        (a.field_id, a.label, a.value) for a in ANSWERS]

    for ref, path, title in zip(refs, pdfs, ("Referral letter", "Document"), strict=True):
        doc_ref = fetch(fhir_sim, f"DocumentReference/{ref.id}")
        DocumentReference.model_validate(doc_ref)
        attachment = doc_ref["content"][0]["attachment"]
        data = path.read_bytes()
        assert (attachment["hash"], attachment["size"], attachment["title"]) == (
            sha1_b64(data), len(data), title)
        assert doc_ref["subject"] == {"reference": f"Patient/{accepted.id}"}
        binary = fetch(fhir_sim, attachment["url"])
        Binary.model_validate(binary)
        assert binary["contentType"] == "application/pdf"
        assert fhir_sim.fhir()["binaries"][binary["id"]] == {
            "size": len(data), "sha1": sha1_b64(data), "content_type": "application/pdf"}
    everything = str(fhir_sim.fhir(bodies=True))
    assert FILENAME not in everything and "HIV" not in everything


def test_the_capability_statement_is_valid_and_probed_without_a_body(fhir_sim, client):
    CapabilityStatement.model_validate(fetch(fhir_sim, "metadata"))
    assert client.probe("GET", "/metadata") == 200
    assert client.probe("GET", "/Patient/404") == 404


# replays ------------------------------------------------------------------------------


def test_a_replayed_record_matches_what_exists_and_creates_nothing(fhir_sim, client):
    first = client.create_record(RECORD, "job-1")
    again = client.create_record(RECORD, "job-1:generation-2")  # another key, same job
    assert (again.id, again.status) == (first.id, 200) and first.status == 201
    counts = fhir_sim.fhir()
    assert counts["created"] == {"Patient": 1, "QuestionnaireResponse": 1}
    assert counts["matched"] == {"Patient": 1, "QuestionnaireResponse": 1}
    other = client.create_record(RecordRequest(PAYLOAD, "wpforms:12:35", 12, ANSWERS), "job-2")
    assert other.status == 201 and other.id != first.id


def test_a_timeout_after_the_partner_accepted_then_a_retry_makes_no_duplicate(fhir_sim):
    impatient = FhirClient(FhirSettings(fhir_sim.url, read_timeout=0.5), StaticAuth({}))
    fhir_sim.script({"kind": "record", "accept_then_timeout": True, "hang_seconds": 30})
    with pytest.raises(RetryableError) as caught:
        impatient.create_record(RECORD, "job-1")
    assert caught.value.category == Category.TIMEOUT
    assert fhir_sim.fhir()["created"] == {"Patient": 1, "QuestionnaireResponse": 1}
    retried = impatient.create_record(RECORD, "job-1")
    assert retried.status == 200 and retried.id == fhir_sim.fhir()["ids"]["Patient"][0]
    assert fhir_sim.fhir()["created"] == {"Patient": 1, "QuestionnaireResponse": 1}
    impatient.close()


def test_a_document_sent_again_matches_its_reference_and_leaves_an_orphan_binary(
        fhir_sim, client, pdfs):
    patient = client.create_record(RECORD, "job-1").id
    first = client.upload_document(patient, document(pdfs[0]), "job-1:doc:0")
    again = client.upload_document(patient, document(pdfs[0]), "job-1:doc:0")
    assert (again.id, again.status) == (first.id, 200)
    created = fhir_sim.fhir()["created"]
    assert (created["DocumentReference"], created["Binary"]) == (1, 2)  # documented orphan


# refusals -----------------------------------------------------------------------------


def test_an_operation_outcome_422_is_permanent_with_the_diagnostics_only_on_partner_text(
        fhir_sim, client):
    fhir_sim.script({"kind": "record", "status": 422, "body": {
        "resourceType": "OperationOutcome", "issue": [{
            "severity": "error", "code": "invalid", "expression": ["Patient.birthDate"],
            "diagnostics": "Jane Doe: birthDate 01/02/1980 is not a valid date"}]}})
    with pytest.raises(PermanentError) as caught:
        client.create_record(RECORD, "job-1")
    error = caught.value
    assert (error.status, error.category) == (422, Category.VALIDATION)
    assert str(error) == "HTTP 422 validation (invalid)"
    assert error.partner_text == "Jane Doe: birthDate 01/02/1980 is not a valid date"
    assert fhir_sim.fhir()["created"] == {}


def test_a_refusal_that_quotes_values_is_an_operation_outcome_too(fhir_sim, client):
    fhir_sim.script({"kind": "record", "echo": True})  # quotes every value it got
    with pytest.raises(PermanentError) as caught:
        client.create_record(RECORD, "job-1")
    assert "jane@example.com" in caught.value.partner_text
    assert "Jane" not in str(caught.value) and "example" not in str(caught.value)


def test_the_chaos_knobs_apply_and_answer_operation_outcomes(fhir_sim, client, pdfs):
    fhir_sim.script({"kind": "record", "status": 429, "retry_after": 7},
                    {"kind": "document", "status": 503})
    with pytest.raises(RetryableError) as limited:
        client.create_record(RECORD, "job-1")
    assert (limited.value.category, limited.value.retry_after) == (Category.RATE_LIMITED, 7.0)
    assert str(limited.value) == "HTTP 429 rate_limited (throttled)"
    patient = client.create_record(RECORD, "job-1").id
    with pytest.raises(RetryableError) as down:
        client.upload_document(patient, document(pdfs[0]), "job-1:doc:0")
    assert str(down.value) == "HTTP 503 server (transient)"
    fhir_sim.configure(error_rate=1.0)
    with pytest.raises(RetryableError):
        client.create_record(RECORD, "job-1")
    assert fhir_sim.stats()["forced"] == {"script": 2, "random": 1}


def test_a_document_whose_hash_does_not_match_its_binary_is_refused(fhir_sim, client, pdfs):
    patient = client.create_record(RECORD, "job-1").id
    binary = requests.post(f"{fhir_sim.url}/Binary", data=b"abc", timeout=5, headers={
        "Content-Type": "application/pdf", "Idempotency-Key": "b"})
    assert binary.status_code == 201
    bad = {"resourceType": "DocumentReference", "status": "current",
           "subject": {"reference": f"Patient/{patient}"},
           "content": [{"attachment": {"url": f"Binary/{binary.json()['id']}",
                                       "hash": sha1_b64(b"abd"), "size": 3}}]}
    answer = requests.post(f"{fhir_sim.url}/DocumentReference", json=bad, timeout=5,
                           headers={"Idempotency-Key": "d"})
    assert answer.status_code == 422
    assert answer.json()["issue"][0]["code"] == "invalid"
    assert fhir_sim.fhir()["created"].get("DocumentReference") is None


# auth ---------------------------------------------------------------------------------


def test_a_401_invalidates_the_credentials_and_the_request_goes_once_more(
        partner_sim_factory, pdfs):
    sim = partner_sim_factory(profile="fhir-r4", base="/fhir", token=TOKEN)
    auth = RotatingAuth(stale=True)
    client = FhirClient(FhirSettings(sim.url), auth)
    accepted = client.create_record(RECORD, "job-1")
    assert accepted.status == 201 and auth.invalidated == 1
    auth.stale = True  # expires again, now while a document streams out
    ref = client.upload_document(accepted.id, document(pdfs[1]), "job-1:doc:0")
    assert ref.status == 201 and auth.invalidated == 2
    attachment = fetch(sim, f"DocumentReference/{ref.id}")["content"][0]["attachment"]
    assert attachment["hash"] == sha1_b64(pdfs[1].read_bytes())  # the re-sent whole, not more
    assert sim.stats()["requests_by_status"] == {"401": 2, "200": 1, "201": 2}
    client.close()


def test_a_second_401_is_a_configuration_error(partner_sim_factory, pdfs):
    sim = partner_sim_factory(profile="fhir-r4", base="/fhir", token=TOKEN)
    auth = RotatingAuth(good=False)
    client = FhirClient(FhirSettings(sim.url), auth)
    with pytest.raises(PartnerConfigError) as caught:
        client.create_record(RECORD, "job-1")
    assert (caught.value.status, caught.value.category, auth.invalidated) == (
        401, Category.AUTH, 1)
    assert "expired" not in str(caught.value) and TOKEN not in str(caught.value)
    # a stream that cannot start over: fresh credentials, and the engine's next attempt
    one_shot = RotatingAuth(stale=True)
    good = FhirClient(FhirSettings(sim.url), RotatingAuth())
    patient = good.create_record(RECORD, "job-1").id
    with pytest.raises(RetryableError) as spent:
        FhirClient(FhirSettings(sim.url), one_shot).upload_document(
            patient, document(pdfs[0], body=OneShotBody(pdfs[0])), "job-1:doc:0")
    assert (spent.value.category, one_shot.invalidated) == (Category.AUTH, 1)
    assert sim.fhir()["created"].get("DocumentReference") is None


# memory -------------------------------------------------------------------------------


def _status_kib(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    assert match, field
    return int(match.group(1))


def test_a_100_mib_document_streams_out_with_flat_memory(fhir_sim, client, tmp_path, pdfs):
    patient = client.create_record(RECORD, "job-1").id
    client.upload_document(patient, document(pdfs[1]), "warm-up")  # first-use allocations
    big = tmp_path / "big.pdf"
    with big.open("wb") as out:  # sparse: no 100 MiB is ever written or held
        out.write(b"%PDF-1.7\n")
        out.truncate(100 * 1024 * 1024)
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM, the peak RSS
    before = _status_kib("VmRSS")
    ref = client.upload_document(patient, document(big, n=1), "job-1:doc:1")
    growth_mib = (_status_kib("VmHWM") - before) / 1024
    assert ref.status == 201
    attachment = fetch(fhir_sim, f"DocumentReference/{ref.id}")["content"][0]["attachment"]
    digest = hashlib.sha1(usedforsecurity=False)
    with big.open("rb") as data:
        while chunk := data.read(1024 * 1024):
            digest.update(chunk)
    assert attachment["size"] == 100 * 1024 * 1024
    assert attachment["hash"] == base64.b64encode(digest.digest()).decode()
    print(f"peak RSS growth for a 100 MiB document: {growth_mib:.1f} MiB")
    assert growth_mib < 20, f"peak RSS grew {growth_mib:.1f} MiB for a 100 MiB document"


# the command --------------------------------------------------------------------------


def test_the_command_serves_the_fhir_profile_and_logs_no_values():
    proc = subprocess.Popen(
        [formrelay_bin(), "partner-sim", "--listen", "127.0.0.1:0", "--profile", "fhir-r4",
         "--base", "/fhir"], env={"PATH": os.environ["PATH"]}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        match = re.match(r"partner-sim serving (http://127\.0\.0\.1:\d+/fhir) ",
                         read_line(proc, 20))
        assert match
        client = FhirClient(FhirSettings(match.group(1)), StaticAuth({}))
        assert client.create_record(RECORD, "job-1").status == 201
        assert client.create_record(RECORD, "job-1").status == 200
        client.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        out, err = proc.communicate(timeout=10)
    assert re.search(r"POST record 200 \d+ms key=[0-9a-f]{8} transaction Patient:201"
                     r" QuestionnaireResponse:201", out), out
    assert "Jane" not in out + err and "example" not in out + err and "Traceback" not in err
