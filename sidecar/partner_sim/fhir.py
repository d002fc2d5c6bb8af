"""The simulator's FHIR R4 mode (knob `profile` = fhir-r4): what the fhir-r4 client needs.

    POST {base}                        transaction Bundle (kind "record"); each entry a
                                       POST with optional ifNoneExist identifier=system|value
    POST {base}/Binary                 raw body, streamed and hashed (kind "document")
    POST {base}/DocumentReference      If-None-Exist honoured; the attachment must point at a
                                       Binary here, with its hash and size (kind "document")
    GET  {base}/metadata               a minimal CapabilityStatement (no auth, as SMART wants)
    GET  {base}/{type}/{id}            a created resource (a Binary without its data)

POSTs go through app._api: the same plan (latency, rates, script, outage), auth,
Idempotency-Key check and log line as the default shape; only the work and the
answer's shape differ. The key is required (the fhir-r4 client always sends one)
but nothing is deduplicated by it here: conditional create is FHIR's way, and the
one under test. Every refusal is an OperationOutcome (the default shape's
{"error": ...} bodies are turned into one). A conditional create that matches answers
200 with the existing resource's location; a new one 201. Resources live in
sidecar.partner_sim.fhir_store; Binary bytes are hashed and dropped. Nothing here
logs: bodies and values never reach a log line.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from werkzeug.wrappers import Request, Response

from sidecar.partner_sim.app import (
    CHUNK,
    MAX_RECORD_BYTES,
    _api,
    _bad_token,
    _Counted,
    _read_limited,
)
from sidecar.partner_sim.fhir_store import BinaryInfo, Created, Criteria, NewEntry
from sidecar.partner_sim.state import Outcome, PartnerSim

FHIR_JSON = "application/fhir+json"
# the IssueType code of a refusal by its status (the default shape's bodies carry none)
ISSUE_CODES = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found",
               405: "not-supported", 409: "conflict", 413: "too-long", 422: "invalid",
               429: "throttled", 503: "transient", 504: "timeout"}
TRANSACTION_TYPES = ("Patient", "QuestionnaireResponse")
QR_STATUSES = ("in-progress", "completed", "amended", "entered-in-error", "stopped")
GENDERS = ("male", "female", "other", "unknown")


class Invalid(ValueError):
    """A refusal: status, IssueType code and diagnostics (which may quote the request,
    as real servers' do)."""

    def __init__(self, diagnostics: str, status: int = 422, code: str = "invalid") -> None:
        super().__init__(diagnostics)
        self.status, self.code = status, code


def operation_outcome(code: str, diagnostics: str) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}]}


def respond(outcome: Outcome) -> Response:
    """The answer as FHIR JSON; a default-shape refusal ({"error": ...}) as an OperationOutcome."""
    body = outcome.body
    if outcome.status >= 400 and isinstance(body, dict) and "resourceType" not in body:
        text = body.get("error")
        code = ISSUE_CODES.get(outcome.status, "exception" if outcome.status >= 500
                               else "processing")
        body = operation_outcome(code, text if isinstance(text, str) else
                                 f"HTTP {outcome.status}")
    return Response(json.dumps(body), outcome.status, headers=list(outcome.headers),
                    content_type=f"{FHIR_JSON}; charset=utf-8")


def _refused(error: Invalid) -> Outcome:
    return Outcome(error.status, operation_outcome(error.code, str(error)), "refused")


def handle(sim: PartnerSim, request: Request, path: str) -> Response:
    base = sim.knobs.base
    if path != base and not path.startswith(base + "/"):
        return respond(_refused(Invalid("not a FHIR endpoint", 404, "not-found")))
    rest = path[len(base):].strip("/")
    parts = rest.split("/") if rest else []
    if request.method in ("GET", "HEAD"):
        return _read(sim, request, parts)
    if request.method != "POST":
        return respond(Outcome(405, operation_outcome("not-supported", "method not allowed"),
                               headers=(("Allow", "GET, POST"),)))
    if not parts:
        return _api(sim, request, "record", lambda body, _: _transaction(sim, body), respond)
    if parts == ["Binary"]:
        return _api(sim, request, "document", lambda body, _: _binary(sim, request, body),
                    respond)
    if parts == ["DocumentReference"]:
        return _api(sim, request, "document",
                    lambda body, _: _document_reference(sim, request, body), respond)
    return respond(_refused(Invalid("this simulator creates only through a transaction,"
                                    " Binary and DocumentReference", 404, "not-supported")))


def _read(sim: PartnerSim, request: Request, parts: list[str]) -> Response:
    if parts in ([], ["metadata"]):
        return respond(Outcome(200, capability_statement()))
    if _bad_token(sim, request):
        return respond(Outcome(401, {"error": "invalid token"}, "auth",
                               (("WWW-Authenticate", 'Bearer realm="partner-sim"'),)))
    found = sim.fhir.read(parts[0], parts[1]) if len(parts) == 2 else None
    if found is None:
        return respond(_refused(Invalid(f"{'/'.join(parts)} is not known", 404, "not-found")))
    return respond(Outcome(200, found))


def capability_statement() -> dict[str, Any]:
    def resource(kind: str, conditional: bool) -> dict[str, Any]:
        return {"type": kind, "interaction": [{"code": "create"}, {"code": "read"}],
                "conditionalCreate": conditional}

    return {
        "resourceType": "CapabilityStatement", "status": "active", "kind": "instance",
        "date": datetime.now(UTC).date().isoformat(), "fhirVersion": "4.0.1",
        "format": ["json"], "software": {"name": "FormRelay partner-sim"},
        "implementation": {"description": "FormRelay's simulated FHIR R4 partner"},
        "rest": [{"mode": "server", "interaction": [{"code": "transaction"}], "resource": [
            resource("Patient", True), resource("QuestionnaireResponse", True),
            resource("Binary", False), resource("DocumentReference", True)]}]}


# criteria and bodies ---------------------------------------------------------


def _unescape_split(value: str) -> list[str]:
    """A token search value split at unescaped `|` (FHIR escapes with a backslash)."""
    parts, current, escaped = [], "", False
    for char in value:
        if escaped:
            current, escaped = current + char, False
        elif char == "\\":
            escaped = True
        elif char == "|":
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


def criteria(query: str | None) -> Criteria | None:
    """`identifier=system|value` as (system, value); None for no criteria."""
    if not query:
        return None
    parsed = parse_qs(query.lstrip("?"), keep_blank_values=True)
    values = parsed.get("identifier", [])
    if set(parsed) != {"identifier"} or len(values) != 1:
        raise Invalid("conditional create supports only identifier=system|value", 400,
                      "not-supported")
    split = _unescape_split(values[0])
    if len(split) != 2 or not split[1]:
        raise Invalid("conditional create needs identifier=system|value", 400,
                      "not-supported")
    return split[0], split[1]


def _json_body(stream: _Counted) -> Any:
    raw = _read_limited(stream, MAX_RECORD_BYTES)
    if raw is None:
        raise Invalid(f"body over {MAX_RECORD_BYTES} bytes", 413, "too-long")
    try:
        return json.loads(raw)
    except ValueError:
        raise Invalid("body is not valid JSON", 400, "structure") from None


def _check(resource: dict[str, Any]) -> None:
    """The few rules a real server would refuse this simulator's resources for."""
    kind = resource["resourceType"]
    if kind == "Patient" and resource.get("gender", "unknown") not in GENDERS:
        raise Invalid(f"Patient.gender: unknown code {resource['gender']!r}")
    if kind == "QuestionnaireResponse":
        if resource.get("status") not in QR_STATUSES:
            raise Invalid("QuestionnaireResponse.status is missing or not a known code")
        if not isinstance(resource.get("subject"), dict):
            raise Invalid("QuestionnaireResponse.subject is required by this simulator")


def _entries(bundle: Any) -> list[NewEntry]:
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle" or \
            bundle.get("type") != "transaction":
        raise Invalid("expected a Bundle of type transaction")
    entries = bundle.get("entry")
    if not isinstance(entries, list) or not entries:
        raise Invalid("the transaction has no entries")
    found: list[NewEntry] = []
    for n, entry in enumerate(entries):
        request = entry.get("request") if isinstance(entry, dict) else None
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(request, dict) or request.get("method") != "POST" or \
                not isinstance(resource, dict):
            raise Invalid(f"Bundle.entry[{n}]: only POST entries with a resource are supported")
        kind = request.get("url")
        if kind not in TRANSACTION_TYPES or resource.get("resourceType") != kind:
            raise Invalid(f"Bundle.entry[{n}]: request.url and resourceType must agree, one of"
                          f" {', '.join(TRANSACTION_TYPES)}")
        _check(resource)
        found.append(NewEntry(str(entry.get("fullUrl") or ""), kind, resource,
                              criteria(request.get("ifNoneExist"))))
    urls = {e.full_url for e in found if e.full_url}
    for entry in found:
        subject = entry.resource.get("subject")
        ref = subject.get("reference") if isinstance(subject, dict) else None
        if isinstance(ref, str) and ref.startswith("urn:") and ref not in urls:
            raise Invalid(f"{entry.resource_type}.subject: {ref} is not a fullUrl of the Bundle")
    return found


def _status_line(created: Created) -> str:
    return "201 Created" if created.status == 201 else "200 OK"


# the three creates --------------------------------------------------------------


def _transaction(sim: PartnerSim, body: _Counted) -> Outcome:
    try:
        entries = _entries(_json_body(body))
    except Invalid as error:
        return _refused(error)
    done = sim.fhir.transaction(entries)
    return Outcome(200, {"resourceType": "Bundle", "type": "transaction-response", "entry": [
        {"resource": c.resource, "response": {"status": _status_line(c), "location": c.location,
                                              "etag": 'W/"1"'}} for c in done]},
        "transaction " + " ".join(f"{c.resource_type}:{c.status}" for c in done))


def _location(request: Request, sim: PartnerSim, created: Created) -> tuple[str, str]:
    return "Location", f"{request.host_url.rstrip('/')}{sim.knobs.base}/{created.location}"


def _binary(sim: PartnerSim, request: Request, body: _Counted) -> Outcome:
    """The raw body, hashed as it streams in; only its size and SHA-1 are kept."""
    digest, size = hashlib.sha1(usedforsecurity=False), 0
    while chunk := body.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    info = BinaryInfo(request.mimetype or "application/octet-stream", size,
                      base64.b64encode(digest.digest()).decode("ascii"))
    created = sim.fhir.add_binary(info)
    return Outcome(201, created.resource, "Binary created", (_location(request, sim, created),))


def _attachment_problem(sim: PartnerSim, resource: dict[str, Any]) -> str | None:
    """Why the DocumentReference cannot be made: its Binary, hash or size, or its subject."""
    content = resource.get("content")
    attachment = content[0].get("attachment") if isinstance(content, list) and content and \
        isinstance(content[0], dict) else None
    if not isinstance(attachment, dict):
        return "DocumentReference.content[0].attachment is required"
    url = str(attachment.get("url", "")).rstrip("/").split("/")
    binary = sim.fhir.binary(url[-1]) if len(url) >= 2 and url[-2] == "Binary" else None
    if binary is None:
        return "DocumentReference attachment.url is not a Binary of this server"
    if "hash" in attachment and attachment["hash"] != binary.sha1:
        return "attachment.hash is not the SHA-1 of the Binary's data"
    if "size" in attachment and attachment["size"] != binary.size:
        return f"attachment.size {attachment['size']} is not the Binary's {binary.size} bytes"
    subject = resource.get("subject")
    ref = str(subject.get("reference", "")) if isinstance(subject, dict) else ""
    if not ref.startswith("Patient/") or sim.fhir.read("Patient", ref[8:]) is None:
        return "DocumentReference.subject is not a Patient of this server"
    return None


def _document_reference(sim: PartnerSim, request: Request, body: _Counted) -> Outcome:
    try:
        resource = _json_body(body)
        if not isinstance(resource, dict) or resource.get("resourceType") != "DocumentReference":
            raise Invalid("expected a DocumentReference")
        if resource.get("status") not in ("current", "superseded", "entered-in-error"):
            raise Invalid("DocumentReference.status is missing or not a known code")
        wanted = criteria(request.headers.get("If-None-Exist"))
    except Invalid as error:
        return _refused(error)
    made = sim.fhir.create("DocumentReference", resource, wanted,
                           lambda: _attachment_problem(sim, resource))
    if isinstance(made, str):
        return _refused(Invalid(made))
    return Outcome(made.status, made.resource, f"DocumentReference {made.status}",
                   (_location(request, sim, made),))
