"""The simulator's WSGI app: the partner API under the base path, control under /_sim/.

One log line per API request (method, path kind, status, duration, a hash
prefix of the Idempotency-Key): never bodies, field values or file bytes.
With the `profile` knob at fhir-r4 the API is a FHIR server instead
(sidecar.partner_sim.fhir), through the same `_api` (plan, faults, auth, log).
Uploads are parsed as a stream and hashed chunk by chunk; nothing keeps them.
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import IO, TYPE_CHECKING, Any

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData
from werkzeug.wrappers import Request, Response

from sidecar.partner_sim.echo import document_echo, record_echo
from sidecar.partner_sim.knobs import TOKEN_KIND, Forced, Knobs
from sidecar.partner_sim.state import Outcome, PartnerSim, Plan, Upload
from sidecar.partner_sim.token import live_or_static

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

log = logging.getLogger("formrelay.partner_sim")

CHUNK = 64 * 1024
MAX_RECORD_BYTES = 10 * 1024 * 1024
MAX_FIELD_BYTES = 64 * 1024
REASONS = {401: "invalid token", 403: "forbidden", 429: "rate limited", 500: "internal error",
           503: "service unavailable", 504: "gateway timeout"}


def _json(status: int, body: Any, headers: Iterable[tuple[str, str]] = ()) -> Response:
    return Response(json.dumps(body), status, headers=list(headers),
                    mimetype="application/json")


def _respond(outcome: Outcome) -> Response:
    return _json(outcome.status, outcome.body, outcome.headers)


def create_app(sim: PartnerSim) -> WSGIApplication:
    @Request.application
    def app(request: Request) -> Response:
        path = request.path
        if path == "/_sim" or path.startswith("/_sim/"):
            return _control(sim, request, path[len("/_sim/"):])
        if path == sim.knobs.base + "/token" and sim.knobs.jwks is not None:
            if request.method != "POST":
                return _json(405, {"error": "method not allowed"}, [("Allow", "POST")])
            return _token(sim, request)
        if sim.knobs.profile == "fhir-r4":
            from sidecar.partner_sim.fhir import handle  # imports this module: not at the top

            return handle(sim, request, path)
        kind, patient_id = _route(sim.knobs.base, path)
        root = path in (sim.knobs.base, sim.knobs.base + "/")
        if (kind is not None or root) and request.method != "POST" and _bad_token(sim, request):
            return _json(401, {"error": "invalid token"},  # as a real API: auth before routing
                         [("WWW-Authenticate", _CHALLENGE)] if sim.knobs.jwks is not None else [])
        if root and request.method in ("GET", "HEAD", "OPTIONS"):
            return _json(200, {"api": "partner-sim"})  # what `formrelay doctor` probes
        if kind is None:
            return _json(404, {"error": "not found"})
        if request.method != "POST":
            return _json(405, {"error": "method not allowed"}, [("Allow", "POST")])
        if kind == "record":
            return _api(sim, request, kind, lambda body, key: _record(sim, request, body, key))
        return _api(sim, request, kind,
                    lambda body, key: _document(sim, request, body, patient_id, key))

    return app


_CHALLENGE = 'Bearer realm="partner-sim", error="invalid_token"'


def _bad_token(sim: PartnerSim, request: Request, knobs: Knobs | None = None) -> bool:
    """With a JWKS: not a live token the simulator issued (nor the static token, if set)."""
    knobs = knobs or sim.knobs
    authorization = request.headers.get("Authorization", "")
    if knobs.jwks is not None:
        return not live_or_static(sim.tokens, authorization, knobs.token)
    token = knobs.token
    return bool(token) and not hmac.compare_digest(authorization.encode(),
                                                   f"Bearer {token}".encode())


def _route(base: str, path: str) -> tuple[str | None, str]:
    if not path.startswith(base + "/"):
        return None, ""
    parts = path[len(base) + 1:].split("/")
    if parts == ["patients"]:
        return "record", ""
    if len(parts) == 3 and parts[0] == "patients" and parts[1] and parts[2] == "documents":
        return "document", parts[1]
    return None, ""


# the partner API -----------------------------------------------------------------


class _Counted:
    """The request body stream, counting what is read (chunked bodies have no length)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream, self.count = stream, 0

    def read(self, size: int) -> bytes:
        data = self.stream.read(size)
        self.count += len(data)
        return data


Work = Callable[["_Counted", str], Outcome]  # the request's own handling: (body, key)


def _api(sim: PartnerSim, request: Request, kind: str, work: Work,
         respond: Callable[[Outcome], Response] = _respond) -> Response:
    """One API request: the plan (latency, faults), auth, the key, then `work`; logged."""
    started = time.monotonic()
    key = request.headers.get("Idempotency-Key", "")
    body = _Counted(request.stream)
    plan = sim.begin(kind)
    outcome = Outcome(500, {"error": "internal error"}, "crashed")
    try:
        outcome = _handle(sim, request, body, kind, key, plan, work)
        return respond(outcome)
    finally:
        sim.finish(outcome.status, max(request.content_length or 0, body.count))
        key_hash = hashlib.sha256(key.encode()).hexdigest()[:8] if key else "-"
        log.info("%s %s %d %.0fms key=%s%s", request.method, kind, outcome.status,
                 (time.monotonic() - started) * 1000, key_hash,
                 f" {outcome.note}" if outcome.note else "")


def _handle(sim: PartnerSim, request: Request, body: _Counted, kind: str, key: str, plan: Plan,
            work: Work) -> Outcome:
    if plan.delay > 0:
        sim.stopping.wait(plan.delay)
    forced, knobs = plan.forced, plan.knobs
    if forced is not None and forced.echo:
        return Outcome(forced.status or 422, {"error": _echo(request, body, kind)},
                       f"forced={forced.label} echo")
    if forced is not None and not forced.accept_then_timeout:
        note = f"forced={forced.label}"
        if forced.timeout:
            ended = _hang(sim, request, forced, knobs.hang_seconds)
            note += f" hang={ended}"
        return _forced(forced, knobs.retry_after, knobs.retry_after_date, note)
    if _bad_token(sim, request, knobs):
        return Outcome(401, {"error": "invalid token"}, "auth", (("WWW-Authenticate", _CHALLENGE
                       if knobs.jwks is not None else 'Bearer realm="partner-sim"'),))
    if knobs.forbidden:
        return Outcome(403, {"error": "forbidden"}, "forbidden")
    if not key:
        return Outcome(400, {"error": "Idempotency-Key header is required"})
    outcome = work(body, key)
    if forced is not None:  # accept_then_timeout: the work is done, the answer is late
        ended = _hang(sim, request, forced, knobs.hang_seconds)
        outcome = Outcome(outcome.status, outcome.body,
                          f"{outcome.note} forced={forced.label} hang={ended}".strip(),
                          outcome.headers)
    return outcome


def _token(sim: PartnerSim, request: Request) -> Response:
    """The SMART token endpoint (token.py): faults as the API's, then the OAuth checks.
    Its log line has the status and the OAuth error code only."""
    started = time.monotonic()
    plan = sim.begin(TOKEN_KIND)
    outcome = Outcome(500, {"error": "server_error"}, "crashed")
    try:
        if plan.delay > 0:
            sim.stopping.wait(plan.delay)
        forced, knobs = plan.forced, plan.knobs
        if forced is not None:
            note = f"forced={forced.label}"
            if forced.timeout or forced.accept_then_timeout:
                note += f" hang={_hang(sim, request, forced, knobs.hang_seconds)}"
            outcome = _forced(forced, knobs.retry_after, knobs.retry_after_date, note)
        elif knobs.jwks is not None:  # (reset or reconfigured since the request arrived)
            outcome = sim.tokens.grant(request.form, request.mimetype, request.base_url,
                                       knobs.jwks, knobs.client_id, knobs.token_seconds)
        else:
            outcome = Outcome(404, {"error": "not found"})
        return _respond(outcome)
    finally:
        sim.finish(outcome.status, request.content_length or 0)
        log.info("%s token %d %.0fms%s", request.method, outcome.status,
                 (time.monotonic() - started) * 1000, f" {outcome.note}" if outcome.note else "")


def _hang(sim: PartnerSim, request: Request, forced: Forced, default: float) -> str:
    """Sleep like a stuck partner; end early when the client leaves or the simulator stops."""
    gone: Callable[[], bool] | None = request.environ.get("waitress.client_disconnected")
    deadline = time.monotonic() + (default if forced.hang_seconds is None
                                   else forced.hang_seconds)
    while (left := deadline - time.monotonic()) > 0:
        if sim.stopping.wait(min(0.05, left)):
            return "stopped"
        if gone is not None and gone():
            return "client-gone"
    return "elapsed"


def _forced(forced: Forced, retry_after: int, retry_after_date: bool, note: str) -> Outcome:
    status = forced.status or 504
    if forced.has_body:
        body = forced.body
    elif status < 300:
        body = {}  # a 2xx without an id
    else:
        body = {"error": REASONS.get(status, f"forced {status}")}
    headers: list[tuple[str, str]] = []
    seconds = forced.retry_after if forced.retry_after is not None else (
        retry_after if status == 429 else None)
    if seconds is not None:
        as_date = forced.retry_after_date or retry_after_date
        headers.append(("Retry-After", email.utils.formatdate(time.time() + seconds, usegmt=True)
                        if as_date else str(seconds)))
    if status == 401:
        headers.append(("WWW-Authenticate", 'Bearer realm="partner-sim"'))
    return Outcome(status, body, note, tuple(headers))


def _first_text(value: Any) -> tuple[str, str] | None:
    """The first (field, string value) pair in a JSON object, depth first."""
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for name, item in items:
        if isinstance(item, str) and item:
            return str(name), item
        if isinstance(item, dict | list) and (found := _first_text(item)):
            return found
    return None


def _read_limited(stream: _Counted, limit: int) -> bytes | None:
    chunks, size = [], 0
    while chunk := stream.read(CHUNK):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _record(sim: PartnerSim, request: Request, stream: _Counted, key: str) -> Outcome:
    raw = _read_limited(stream, MAX_RECORD_BYTES)
    if raw is None:
        return Outcome(413, {"error": f"record body over {MAX_RECORD_BYTES} bytes"})
    try:
        body = json.loads(raw)
    except ValueError:  # includes UnicodeDecodeError
        return Outcome(400, {"error": "body is not valid JSON"})
    if not isinstance(body, dict):
        return Outcome(400, {"error": "body must be a JSON object"})
    if body.get("reject") is True:  # echoes a submitted value, as real partners do
        name, value = _first_text(body) or ("reject", "true")
        return Outcome(422, {"error": f"field {name} {value} is invalid"}, "rejected")
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    fingerprint = hashlib.sha256(canonical.encode()).hexdigest()
    return sim.create_record(key, fingerprint, body, request.mimetype)


def _document(sim: PartnerSim, request: Request, stream: _Counted, patient_id: str,
              key: str) -> Outcome:
    if not sim.has_record(patient_id):
        return Outcome(404, {"error": f"patient {patient_id} not found"})
    boundary = request.mimetype_params.get("boundary", "")
    if request.mimetype != "multipart/form-data" or not boundary:
        return Outcome(400, {"error": "expected multipart/form-data with a boundary"})
    try:
        upload = _stream_upload(stream, boundary.encode("latin-1"))
    except RequestEntityTooLarge:
        return Outcome(413, {"error": "multipart part headers or parts over the limit"})
    except ValueError as exc:
        return Outcome(400, {"error": f"malformed multipart body: {exc}"})
    if upload is None:
        return Outcome(400, {"error": "multipart part 'file' is required"})
    fingerprint = hashlib.sha256(f"{patient_id}\n{upload.sha256}".encode()).hexdigest()
    return sim.create_document(patient_id, key, fingerprint, upload)


def _echo(request: Request, stream: _Counted, kind: str) -> str:
    if kind == "record":
        return record_echo(_read_limited(stream, MAX_RECORD_BYTES) or b"")
    boundary = request.mimetype_params.get("boundary", "")
    try:
        upload = _stream_upload(stream, boundary.encode("latin-1")) if boundary else None
    except (RequestEntityTooLarge, ValueError):
        upload = None
    return document_echo(upload.filename if upload else "(no file)")


def _stream_upload(stream: _Counted, boundary: bytes) -> Upload | None:
    """Hash the first part named `file` as it streams in; keep small text fields."""
    decoder = MultipartDecoder(boundary, max_form_memory_size=4 * CHUNK, max_parts=100)
    digest, size = hashlib.sha256(), 0
    found: File | None = None
    fields: dict[str, str] = {}
    target: str | None = None  # "file" while inside the upload, a name inside a text field
    field_data = bytearray()
    while True:
        chunk = stream.read(CHUNK)
        decoder.receive_data(chunk or None)
        while not isinstance(event := decoder.next_event(), NeedData | Epilogue):
            if isinstance(event, File) and event.name == "file" and found is None:
                found, target = event, "file"
            elif isinstance(event, Field):
                target = event.name
                field_data.clear()
            elif isinstance(event, File):
                target = None  # a second file: ignored
            elif isinstance(event, Data):
                if target == "file":
                    digest.update(event.data)
                    size += len(event.data)
                elif target is not None:
                    if len(field_data) < MAX_FIELD_BYTES:
                        field_data += event.data
                    if not event.more_data:
                        fields[target] = field_data[:MAX_FIELD_BYTES].decode("utf-8", "replace")
                if not event.more_data:
                    target = None
        if isinstance(event, Epilogue) or not chunk:
            break
    if found is None:
        return None
    return Upload(found.filename, found.headers.get("Content-Type", "application/octet-stream"),
                  size, digest.hexdigest(), fields)


# control ------------------------------------------------------------------------


def _control(sim: PartnerSim, request: Request, what: str) -> Response:
    routes: dict[tuple[str, str], Callable[[], Any]] = {
        ("GET", "health"): lambda: {"status": "ok"},
        ("GET", "stats"): sim.stats,
        ("GET", "records"): lambda: sim.records(request.args.get("bodies") in ("1", "true")),
        ("GET", "fhir"): lambda: sim.fhir.public(request.args.get("bodies") in ("1", "true")),
        ("GET", "config"): sim.config,
        ("POST", "config"): lambda: sim.configure(_payload(request, dict)),
        ("GET", "script"): lambda: {"pending": sim.script()},
        ("POST", "script"): lambda: {"pending": sim.add_script(_payload(request, object))},
        ("POST", "reset"): lambda: _reset(sim),
        ("GET", "tokens"): sim.tokens.stats,  # SMART token requests: issued, refused, live
        ("POST", "tokens/expire"): sim.tokens.expire_all,
    }
    handler = routes.get((request.method, what))
    if handler is None:
        allowed = [method for method, name in routes if name == what]
        if allowed:
            return _json(405, {"error": "method not allowed"}, [("Allow", ", ".join(allowed))])
        return _json(404, {"error": f"no control endpoint /_sim/{what}"})
    try:
        return _json(200, handler())
    except ValueError as exc:
        return _json(400, {"error": str(exc)})


def _reset(sim: PartnerSim) -> dict[str, str]:
    sim.reset()
    return {"status": "reset"}


def _payload(request: Request, expected: type) -> Any:
    try:
        payload = json.loads(request.get_data(cache=False) or b"{}")
    except ValueError:
        raise ValueError("body is not valid JSON") from None
    if not isinstance(payload, expected):
        raise ValueError("body must be a JSON object")
    return payload

