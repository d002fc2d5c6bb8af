"""The FHIR R4 resources the fhir-r4 profile sends, as plain dicts: no HTTP, no I/O.

A record is ONE `transaction` Bundle: a Patient and a QuestionnaireResponse, each
a conditional create on its identifier (`ifNoneExist: identifier=<system>|<ref>`).
The server applies a transaction atomically, and the conditions make a replay (a
timeout after the partner accepted) match what exists instead of creating twice.
The Bundle is built deterministically from the job (its urn:uuid comes from the
reference), so each retry sends the same bytes.

A document is a Binary (the raw bytes, see client.py) and then a DocumentReference
pointing at it. Its title is the field's label or "Document", never the file name:
file names are PHI (and this profile sends no name at all).
"""

from __future__ import annotations

import base64
import uuid
from typing import Any
from urllib.parse import quote

from sidecar.partner_profile import Answer, DocumentUpload, RecordRequest

DEFAULT_SYSTEM = "urn:formrelay:reference"
FHIR_JSON = "application/fhir+json"
DEFAULT_TITLE = "Document"
# uuid5 namespace for the Bundle's fullUrls: a stable urn per (system, reference)
_URN_NAMESPACE = uuid.UUID("8f3c4b8e-1f0a-5a53-9d0e-6b1f3a0c2d41")


def _escape(value: str) -> str:
    """A token search value: FHIR escapes `\\ | , $` with a backslash, then URL-encodes."""
    for char in "\\|,$":
        value = value.replace(char, "\\" + char)
    return quote(value, safe=":/")


def if_none_exist(system: str, value: str) -> str:
    """The search that makes a create conditional: `identifier=<system>|<value>`."""
    return f"identifier={_escape(system)}|{_escape(value)}"


def identifier(system: str, value: str) -> dict[str, str]:
    return {"system": system, "value": value}


def patient_urn(system: str, reference: str) -> str:
    """The Patient's fullUrl in the Bundle: the same on every retry of the job."""
    return f"urn:uuid:{uuid.uuid5(_URN_NAMESPACE, f'{system}|{reference}|Patient')}"


def patient(payload: dict[str, Any], system: str, reference: str) -> dict[str, Any]:
    """The template's Patient elements plus the job's identifier (always, and only once).

    A template's own `id`, `meta` or `resourceType` are dropped: the server assigns
    ids, and the type is not the template's to choose.
    """
    resource: dict[str, Any] = {"resourceType": "Patient"}
    resource.update({k: v for k, v in payload.items()
                     if k not in ("resourceType", "id", "meta")})
    ours = identifier(system, reference)
    given = resource.get("identifier")
    others = [i for i in given if i != ours] if isinstance(given, list) else []
    resource["identifier"] = [ours, *others]
    return resource


def _item(answer: Answer, n: int) -> dict[str, Any]:
    item: dict[str, Any] = {"linkId": answer.field_id or f"item-{n}"}
    if answer.label:
        item["text"] = answer.label
    item["answer"] = [{"valueString": answer.value}]
    return item


def questionnaire_response(record: RecordRequest, system: str, subject: str,
                           authored: str | None = None) -> dict[str, Any]:
    """Every answer as an item (linkId = the field's id, text = its label)."""
    resource: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "identifier": identifier(system, record.reference),
        "status": "completed",
        "subject": {"reference": subject},
    }
    if authored:
        resource["authored"] = authored
    items = [_item(answer, n) for n, answer in enumerate(record.answers, 1)
             if answer.value.strip()]
    if items:  # R4: an empty list is not allowed, a missing one is
        resource["item"] = items
    return resource


def record_bundle(record: RecordRequest, system: str = DEFAULT_SYSTEM,
                  authored: str | None = None) -> dict[str, Any]:
    """The transaction: Patient, then the QuestionnaireResponse whose subject is it."""
    urn = patient_urn(system, record.reference)
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": urn,
             "resource": patient(record.payload, system, record.reference),
             "request": {"method": "POST", "url": "Patient",
                         "ifNoneExist": if_none_exist(system, record.reference)}},
            {"resource": questionnaire_response(record, system, urn, authored),
             "request": {"method": "POST", "url": "QuestionnaireResponse",
                         "ifNoneExist": if_none_exist(system, record.reference)}},
        ],
    }


def sha1_hash(digest: bytes) -> str:
    """Attachment.hash: FHIR defines it as the base64 of the SHA-1 of the data."""
    return base64.b64encode(digest).decode("ascii")


def document_reference(document: DocumentUpload, reference: str, patient_id: str,
                       binary_id: str, size: int, sha1_digest: bytes,
                       system: str = DEFAULT_SYSTEM) -> dict[str, Any]:
    """The DocumentReference for an uploaded Binary; `reference` is the document's own."""
    return {
        "resourceType": "DocumentReference",
        "identifier": [identifier(system, reference)],
        "status": "current",
        "subject": {"reference": f"Patient/{patient_id}"},
        "content": [{"attachment": {
            "contentType": document.content_type or "application/octet-stream",
            "url": f"Binary/{binary_id}",
            "size": size,
            "hash": sha1_hash(sha1_digest),
            "title": document.label.strip() or DEFAULT_TITLE,  # never document.filename
        }}],
    }
