"""FhirClient: the fhir-r4 profile's sidecar.partner_profile.Partner (docs/fhir.md).

    create_record    POST {base}            one transaction Bundle: Patient + QuestionnaireResponse
    upload_document  POST {base}/Binary     the file as the raw body, streamed and SHA-1 hashed
                     POST {base}/DocumentReference   pointing at it, with If-None-Exist
    probe            e.g. GET /metadata (status only)

Transport as sidecar.partner_client (whose helpers this reuses): one urllib3 pool,
no urllib3 retries or redirects, a total deadline per request, answers read up to
MAX_RESPONSE_BYTES. Every request carries the Auth's headers; on a 401 the Auth is
invalidated and that request sent once more with fresh ones (a second 401 is a
PartnerConfigError). Errors name status, category and FHIR issue codes only: no
value, file name or partner text (that is on `partner_text`, for the engine to mask).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Protocol

import urllib3

from sidecar import __version__, metrics
from sidecar.errors import Category, RetryableError
from sidecar.fhir import resources
from sidecar.fhir.outcome import error_for, error_from
from sidecar.partner_client import (
    MAX_RESPONSE_BYTES,
    _pool,
    post_capped,
    probe_status,
    refreshed,
)
from sidecar.partner_profile import Accepted, Auth, DocumentUpload, RecordRequest, UploadBody

FHIR_HEADERS = {"Content-Type": resources.FHIR_JSON, "Accept": resources.FHIR_JSON}
_ENTRY_STATUS = re.compile(r"\s*(\d{3})\b")


@dataclass(frozen=True)
class FhirSettings:
    base_url: str  # the FHIR base, e.g. https://fhir.example.org/r4 (no trailing slash)
    identifier_system: str = resources.DEFAULT_SYSTEM
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    deadline: float = 120.0  # each request: connect, body out, answer in


class _Rewindable(Protocol):
    def rewind(self) -> None: ...


@dataclass
class _Answer:
    resp: urllib3.BaseHTTPResponse
    body: bytes | None  # None: over MAX_RESPONSE_BYTES, not read

    @property
    def status(self) -> int:
        return self.resp.status

    def json(self) -> Any:
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None


class _HashingBody:
    """The document's reader, SHA-1 hashed and counted a chunk at a time as it goes out
    (the DocumentReference needs both; the file is never held whole)."""

    def __init__(self, body: UploadBody) -> None:
        self._body, self.sha1, self.size = body, hashlib.sha1(usedforsecurity=False), 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._body.read(size)
        self.sha1.update(chunk)
        self.size += len(chunk)
        return chunk

    def rewind(self) -> bool:
        """Start over (a 401 retry) if the reader can; False if it cannot."""
        rewind = getattr(self._body, "rewind", None)
        if not callable(rewind):
            return False
        rewind()
        self.sha1, self.size = hashlib.sha1(usedforsecurity=False), 0
        return True


def resource_id(location: str, resource_type: str) -> str | None:
    """The id in a Location ("Patient/123/_history/1", absolute or not)."""
    parts = location.split("?")[0].rstrip("/").split("/")
    for n in range(len(parts) - 2, -1, -1):
        if parts[n] == resource_type and parts[n + 1]:
            return parts[n + 1]
    return None


def _id_of(answer: _Answer, resource_type: str) -> str | None:
    found = resource_id(answer.resp.headers.get("Location", "")
                        or answer.resp.headers.get("Content-Location", ""), resource_type)
    body = answer.json()
    if found is None and isinstance(body, dict) and body.get("resourceType") == resource_type:
        value = body.get("id")
        found = value if isinstance(value, str) and value else None
    return found


class FhirClient:
    def __init__(self, settings: FhirSettings, auth: Auth, pool_size: int = 16) -> None:
        self.settings, self.auth = settings, auth
        self.base = settings.base_url.rstrip("/")
        self.pool = _pool(settings.base_url, pool_size)
        self.headers = {"User-Agent": f"FormRelay/{__version__}"}
        self.timeout = urllib3.Timeout(connect=settings.connect_timeout,
                                       read=min(settings.read_timeout, settings.deadline))

    def close(self) -> None:
        self.pool.clear()

    def create_record(self, record: RecordRequest, idempotency_key: str) -> Accepted:
        """The transaction; Accepted(the Patient's id, its entry's status: 201 or 200)."""
        bundle = resources.record_bundle(record, self.settings.identifier_system)
        with metrics.partner_request("record"):
            answer = self._send("", idempotency_key, FHIR_HEADERS, json.dumps(bundle).encode())
        return _transaction_outcome(answer)

    def upload_document(self, record_id: str, document: DocumentUpload,
                        idempotency_key: str) -> Accepted:
        """Binary (streamed), then DocumentReference; Accepted(the DocumentReference's id)."""
        body = _HashingBody(document.body)
        with metrics.partner_request("document"):
            binary = self._send("/Binary", f"{idempotency_key}:binary", {
                "Content-Type": document.content_type or "application/octet-stream",
                "Content-Length": str(document.size), "Accept": resources.FHIR_JSON}, body)
            binary_id = self._created(binary, "Binary")
            reference = document.reference or idempotency_key
            system = self.settings.identifier_system
            resource = resources.document_reference(document, reference, record_id, binary_id,
                                                    body.size, body.sha1.digest(), system)
            answer = self._send(
                "/DocumentReference", f"{idempotency_key}:document-reference",
                {**FHIR_HEADERS, "If-None-Exist": resources.if_none_exist(system, reference)},
                json.dumps(resource).encode())
        return Accepted(self._created(answer, "DocumentReference"), answer.status)

    def probe(self, method: str, path: str) -> int:
        """`formrelay doctor`'s request: the status only, the body never read."""
        return probe_status(self.pool, method, self.base + path,
                            {**self.headers, **self.auth.headers(), "Accept": resources.FHIR_JSON},
                            self.timeout)

    # transport ---------------------------------------------------------------

    def _send(self, path: str, key: str, headers: dict[str, str],
              body: bytes | _HashingBody) -> _Answer:
        """POST; on a 401, send once more with fresh credentials, if there are any."""
        used = self.auth.headers()
        answer = self._post(path, key, headers, body, used)
        if answer.status != 401 or (fresh := refreshed(self.auth, used)) is None:
            return answer  # a 401 with nothing to refresh: PartnerConfigError, as any 401
        if isinstance(body, _HashingBody) and not body.rewind():
            # The stream is spent: the engine's next attempt (a fresh reader) gets the
            # fresh credentials.
            raise RetryableError("HTTP 401 auth: credentials refreshed; the document's"
                                 " stream cannot be re-sent in this attempt", 401,
                                 category=Category.AUTH)
        return self._post(path, key, headers, body, fresh)

    def _post(self, path: str, key: str, headers: dict[str, str],
              body: bytes | _HashingBody, auth: dict[str, str]) -> _Answer:
        resp, read = post_capped(
            self.pool, self.base + path,
            {**self.headers, **auth, "Idempotency-Key": key, **headers}, body,
            self.timeout, self.settings.deadline, stream=not isinstance(body, bytes))
        return _Answer(resp, read)

    @staticmethod
    def _created(answer: _Answer, resource_type: str) -> str:
        """The id of what a create made (or matched), else the error it answered."""
        if not 200 <= answer.status < 300:  # a second 401 too: PartnerConfigError
            raise error_for(answer.resp, answer.body)
        found = _id_of(answer, resource_type)
        if found is None:
            raise _bad_response(answer.status, f"without the {resource_type}'s id")
        return found


def _bad_response(status: int, what: str) -> RetryableError:
    return RetryableError(f"HTTP {status} bad_response: {what}", status,
                          category=Category.BAD_RESPONSE)


def _transaction_outcome(answer: _Answer) -> Accepted:
    """The Patient's id from the transaction-response Bundle (its first entry)."""
    if not 200 <= answer.status < 300:
        raise error_for(answer.resp, answer.body)
    if answer.body is None:
        raise _bad_response(answer.status, f"the answer is over {MAX_RESPONSE_BYTES // 1024} KiB")
    bundle = answer.json()
    entries = bundle.get("entry") if isinstance(bundle, dict) else None
    if not isinstance(entries, list) or len(entries) < 2:
        raise _bad_response(answer.status, "not a transaction-response with both entries")
    statuses: list[int] = []
    for entry in entries[:2]:
        response = entry.get("response") if isinstance(entry, dict) else None
        if not isinstance(response, dict) or not (
                match := _ENTRY_STATUS.match(str(response.get("status", "")))):
            raise _bad_response(answer.status, "an entry without its response status")
        status = int(match.group(1))
        if not 200 <= status < 300:  # a server that answers a failed transaction with 200
            raise error_from(status, response.get("outcome"))
        statuses.append(status)
    response = entries[0]["response"]
    resource = entries[0].get("resource")
    found = resource_id(str(response.get("location", "")), "Patient")
    if found is None and isinstance(resource, dict) and isinstance(resource.get("id"), str):
        found = resource["id"] or None
    if found is None:
        raise _bad_response(answer.status, "without the Patient's id")
    return Accepted(found, statuses[0])
