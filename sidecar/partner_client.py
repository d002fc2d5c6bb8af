"""The only module that talks HTTP to the partner.

One urllib3 pool manager with a connection pool sized for the worker threads
(urllib3 directly, not requests on top of it: half the CPU per request, and a
job makes three).
Every request carries an `Idempotency-Key`, so a retry after a timeout (the
partner may have accepted the first try) cannot create a second record.
Each outcome that is not a success raises one of (sidecar.errors):

    RetryableError      connection errors, timeouts, 5xx, 408, 425, 429 (with
                        the partner's Retry-After, seconds or HTTP date), and a
                        2xx without the id (the partner answered, but not usefully)
    PermanentError      any other 4xx: "HTTP 422 validation"
    PartnerConfigError  401/403, a redirect, a bad URL or a TLS failure

Each request has a total deadline (`deadline`, FORMRELAY_PARTNER_DEADLINE_SECONDS),
not only per-read timeouts: it is checked while the body streams out and while
the answer streams in, so a partner that trickles a byte a second ends as a
timeout. The answer is read up to MAX_RESPONSE_BYTES (1 MiB), never whole: a
longer 2xx is a retryable bad_response; a longer refusal keeps its status and
loses only the partner's text. Exceptions the upload body raises (a file that
changed since its check: sidecar.file_checks.FileChanged) pass through
untouched; raising them mid-body aborts the request, so the partner never gets
a whole body.

str(error) is the status code and category (sidecar.errors.Category) only.
The partner's own message (its JSON error/message/detail/title, else the
start of a non-HTML body, at most MAX_PARTNER_TEXT characters) is on
`error.partner_text`, unmasked: this module does not know the job's values,
so the engine masks it (sidecar.failures) before anything keeps it. Request
bodies are never in an error.
"""

from __future__ import annotations

import email.message
import email.utils
import json
import os
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote
from urllib.request import getproxies, proxy_bypass

import certifi
import urllib3
from requests_toolbelt import MultipartEncoder  # streams the file instead of building the body
from urllib3 import exceptions as u3

from sidecar import __version__, metrics
from sidecar.errors import Category, PartnerConfigError, PermanentError, RetryableError
from sidecar.errors import category_for_status as category_of
from sidecar.partner_profile import Accepted, Auth, DocumentUpload, RecordRequest, token_headers
from sidecar.partners import PartnerConfig

__all__ = ["Accepted", "PartnerClient", "PartnerSettings"]

RETRYABLE_STATUS = frozenset({408, 425, 429})
CONFIG_STATUS = frozenset({401, 403})
MAX_PARTNER_TEXT = 4000  # more than any masker limit, so the masker's cut is the one that counts
MAX_RESPONSE_BYTES = 1024 * 1024  # ids and error messages: far less than this
RESPONSE_CHUNK = 64 * 1024


@dataclass(frozen=True)
class PartnerSettings:
    base_url: str
    token: str = ""
    auth: str = "bearer"  # bearer | none | header:<Name>
    record_path: str = "/patients"
    document_path: str = "/patients/{id}/documents"
    id_field: str = "id"  # dotted for nested ids: "data.id"
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    deadline: float = 120.0  # the whole request: connect, body out, answer in

    @classmethod
    def from_partner(cls, partner: PartnerConfig) -> PartnerSettings:
        return cls(partner.url, partner.token, partner.auth, partner.record_path,
                   partner.document_path, partner.id_field, partner.connect_timeout,
                   partner.read_timeout, partner.deadline)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date; None if unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class _DeadlinePassed(Exception):
    """The request's total deadline passed (raised inside the body stream or the answer)."""


class _DeadlineBody:
    """The request body, refusing to give a chunk once the deadline has passed: raising
    here aborts the body, and the partner gets a truncated request."""

    def __init__(self, body: Any, deadline: float) -> None:
        self._body, self._deadline = body, deadline

    def read(self, size: int = -1) -> bytes:
        if time.monotonic() > self._deadline:
            raise _DeadlinePassed()
        chunk: bytes = self._body.read(size)
        return chunk


def _read_capped(resp: urllib3.BaseHTTPResponse, deadline: float) -> bytes | None:
    """The answer's body, or None when it is over MAX_RESPONSE_BYTES (not read further)."""
    declared = resp.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
        return None
    body = bytearray()
    for chunk in resp.stream(RESPONSE_CHUNK):
        body += chunk
        if len(body) > MAX_RESPONSE_BYTES:
            return None
        if time.monotonic() > deadline:
            raise _DeadlinePassed()
    return bytes(body)


def post_capped(pool: urllib3.PoolManager, url: str, headers: dict[str, str], body: Any,
                timeout: urllib3.Timeout, seconds: float, stream: bool = False,
                who: str = "the partner") -> tuple[urllib3.BaseHTTPResponse, bytes | None]:
    """POST within a total deadline of `seconds` (a streamed body checked chunk by chunk):
    the answer and its body (None when over MAX_RESPONSE_BYTES), the connection back in
    the pool. Past the deadline a RetryableError (timeout); no answer at all, the error
    _transport_error makes of it. Every partner client and the SMART token fetch send
    through here."""
    deadline = time.monotonic() + seconds
    try:
        resp = pool.urlopen("POST", url, headers=headers,
                            body=_DeadlineBody(body, deadline) if stream else body,
                            redirect=False, preload_content=False, timeout=timeout)
        try:
            return resp, _read_capped(resp, deadline)
        finally:
            resp.release_conn()
    except _DeadlinePassed:
        raise RetryableError(f"{who} took longer than the {seconds:g} s deadline",
                             category=Category.TIMEOUT) from None
    except (u3.HTTPError, ValueError) as exc:
        raise _transport_error(exc) from None


def probe_status(pool: urllib3.PoolManager, method: str, url: str, headers: dict[str, str],
                 timeout: urllib3.Timeout) -> int:
    """A probe's status code, the body never read (no partner text reaches the doctor) and
    no redirect followed; no answer at all raises as a delivery request would."""
    try:
        resp = pool.urlopen(method, url, headers=headers, redirect=False,
                            preload_content=False, timeout=timeout)
    except (u3.HTTPError, ValueError) as exc:  # ValueError: a URL urllib3 cannot parse
        raise _transport_error(exc) from None
    resp.drain_conn()
    resp.release_conn()
    return resp.status


def refreshed(auth: Auth, used: dict[str, str]) -> dict[str, str] | None:
    """After a 401 to the credentials `used`: the headers to send once more, or None when
    there is nothing to refresh (a fixed token: the 401 stands). A token another worker
    has already replaced is not invalidated again."""
    fresh = auth.headers()
    if fresh == used:
        auth.invalidate()
        fresh = auth.headers()
    return None if fresh == used else fresh


def _pool(base_url: str, size: int) -> urllib3.PoolManager:
    """Connections to the partner: through the environment's proxy for its scheme (read
    once, as are the CA bundle variables requests honours), never retried or redirected
    by urllib3 (the engine retries; a redirect is a configuration error)."""
    ca = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or \
        certifi.where()
    options: dict[str, Any] = {"num_pools": 2, "maxsize": max(1, size), "retries": False,
                               "ca_certs": ca}
    try:
        url = urllib3.util.parse_url(base_url)
    except u3.LocationParseError:  # refused at the first request, as a bad URL
        return urllib3.PoolManager(**options)
    proxy = getproxies().get((url.scheme or "").lower())
    if proxy and url.host and not proxy_bypass(url.host):
        return urllib3.ProxyManager(proxy, **options)
    return urllib3.PoolManager(**options)


def find_id(body: Any, dotted: str) -> str | None:
    for key in dotted.split("."):
        if not isinstance(body, dict) or key not in body:
            return None
        body = body[key]
    return str(body) if isinstance(body, str | int) and str(body) else None


class PartnerClient:
    """`auth`, when given (sidecar.smart_auth.SmartBackendAuth), supplies the credentials
    per request instead of settings.token; after a 401 it is invalidated and the request
    sent once more with fresh ones (a streamed upload cannot be: RetryableError instead)."""

    def __init__(self, settings: PartnerSettings, pool_size: int = 16,
                 auth: Auth | None = None) -> None:
        self.settings = settings
        self.auth = auth
        self.pool = _pool(settings.base_url, pool_size)
        self.headers = {"User-Agent": f"FormRelay/{__version__}",
                        **token_headers(settings.token, settings.auth)}
        self.timeout = urllib3.Timeout(connect=settings.connect_timeout,
                                       read=min(settings.read_timeout, settings.deadline))

    def close(self) -> None:
        self.pool.clear()

    def create_record(self, record: RecordRequest, idempotency_key: str) -> Accepted:
        """POST the rendered payload as JSON to the record path."""
        with metrics.partner_request("record"):
            return self._post(self.settings.record_path, idempotency_key,
                              {"Content-Type": "application/json"},
                              json.dumps(record.payload).encode())

    def upload_document(self, record_id: str, document: DocumentUpload,
                        idempotency_key: str) -> Accepted:
        """Upload one file as multipart part `file`, streamed from its body as it is sent.

        The body is the checked descriptor's reader (sidecar.file_checks.VerifiedReader),
        never a path opened here: what goes out is what was checked.
        """
        url_path = self.settings.document_path.replace("{id}", quote(record_id, safe=""))
        encoder = MultipartEncoder(fields={"file": (document.filename, document.body,
                                                    document.content_type)})
        with metrics.partner_request("document"):
            return self._post(url_path, idempotency_key,
                              {"Content-Type": encoder.content_type,
                               "Content-Length": str(encoder.len)}, encoder, stream=True)

    def probe(self, method: str, path: str) -> int:
        """`formrelay doctor`'s request (FORMRELAY_PARTNER_PROBE): the status code only.

        The body is never read (no partner text reaches the doctor); no redirect is
        followed. Failures to get any answer raise as `_post`'s do (network, timeout,
        TLS, bad URL), so the doctor names them the same way delivery would.
        """
        return probe_status(self.pool, method, self.settings.base_url + path,
                            {**self.headers, **(self.auth.headers() if self.auth else {})},
                            self.timeout)

    def _post(self, path: str, key: str, headers: dict[str, str], body: Any,
              stream: bool = False) -> Accepted:
        """POST `body` (bytes, or with `stream` a reader sent a chunk at a time)."""
        if self.auth is None:
            return self._send(path, key, headers, body, stream, {})
        used = self.auth.headers()
        try:
            return self._send(path, key, headers, body, stream, used)
        except PartnerConfigError as exc:
            if exc.status != 401:
                raise
            fresh = refreshed(self.auth, used)
            if fresh is None:  # nothing to refresh (a fixed token): the 401 stands
                raise
            if stream:  # the body is spent; the engine's next attempt goes with `fresh`
                raise RetryableError("HTTP 401 auth: the access token was refused; the next"
                                     " attempt has a new one", 401,
                                     category=Category.AUTH) from None
        return self._send(path, key, headers, body, stream, fresh)  # a second 401 stands

    def _send(self, path: str, key: str, headers: dict[str, str], body: Any, stream: bool,
              auth: dict[str, str]) -> Accepted:
        return self._outcome(*post_capped(
            self.pool, self.settings.base_url + path,
            {**self.headers, **auth, "Idempotency-Key": key, **headers}, body, self.timeout,
            self.settings.deadline, stream))

    def _outcome(self, resp: urllib3.BaseHTTPResponse, body: bytes | None) -> Accepted:
        """`body` is None when the answer was over MAX_RESPONSE_BYTES."""
        status = resp.status
        if 200 <= status < 300:
            if body is None:
                raise RetryableError(f"HTTP {status} bad_response: the answer is over"
                                     f" {MAX_RESPONSE_BYTES // 1024} KiB", status,
                                     category=Category.BAD_RESPONSE)
            try:
                found = find_id(json.loads(body), self.settings.id_field)
            except ValueError:
                found = None
            if found is None:
                raise RetryableError(
                    f"HTTP {status} bad_response: without {self.settings.id_field!r} in the"
                    " response",
                    status)
            return Accepted(found, status)
        category = category_of(status)
        reason = f"HTTP {status} {category}"
        text = _partner_message(resp, body)[:MAX_PARTNER_TEXT]
        if status in CONFIG_STATUS:
            hint = "FORMRELAY_PARTNER_TOKEN" if self.auth is None else "the partner's auth settings"
            raise PartnerConfigError(f"{reason} (check {hint})", status, partner_text=text)
        if 300 <= status < 400:
            raise PartnerConfigError(f"{reason}: check FORMRELAY_PARTNER_URL", status)
        if status >= 500 or status in RETRYABLE_STATUS:
            raise RetryableError(reason, status, parse_retry_after(resp.headers.get("Retry-After")),
                                 partner_text=text)
        raise PermanentError(reason, status, partner_text=text)


def _transport_error(exc: Exception) -> PartnerConfigError | RetryableError:
    """A request that got no usable answer, as the error delivery acts on."""
    if isinstance(exc, u3.SSLError) or (isinstance(exc, u3.ProxyError)
                                        and isinstance(exc.original_error, u3.SSLError)):
        return PartnerConfigError("TLS failure talking to the partner", category=Category.TLS)
    if isinstance(exc, ValueError | u3.LocationValueError):  # (LocationParseError is one)
        return PartnerConfigError("the partner URL is not valid", category=Category.BAD_URL)
    # Before timeouts: urllib3's NewConnectionError (refused, no such name) is a
    # ConnectTimeoutError too, for backwards compatibility.
    if isinstance(exc, u3.NewConnectionError | u3.ProxyError | u3.NameResolutionError) or (
            isinstance(exc, u3.ProtocolError) and not isinstance(exc, u3.IncompleteRead)):
        return RetryableError("could not connect to the partner", category=Category.NETWORK)
    if isinstance(exc, u3.TimeoutError):  # connecting, or reading the answer
        return RetryableError("timed out waiting for the partner", category=Category.TIMEOUT)
    # a chunked or compressed answer cut off
    return RetryableError("the partner's answer was cut off", category=Category.NETWORK)


def _charset(content_type: str) -> str | None:
    message = email.message.Message()
    message["Content-Type"] = content_type
    charset = message.get_content_charset()
    return str(charset) if charset else None


def _partner_message(resp: urllib3.BaseHTTPResponse, body: bytes | None) -> str:
    """The partner's own explanation: a JSON error/message/detail, else the start of the text.
    None of an answer over the cap (it was not read)."""
    if not body:
        return ""
    try:
        parsed = json.loads(body)
    except ValueError:
        content_type = resp.headers.get("Content-Type", "")
        return "" if "html" in content_type else _decode(body[:MAX_PARTNER_TEXT * 4],
                                                           _charset(content_type))
    if isinstance(parsed, dict):
        for key in ("error", "message", "detail", "title"):
            if isinstance(parsed.get(key), str):
                return str(parsed[key])
    return ""


def _decode(raw: bytes, encoding: str | None) -> str:
    try:
        return raw.decode(encoding or "utf-8", "replace")[:MAX_PARTNER_TEXT]
    except LookupError:  # a charset Python does not know
        return raw.decode("utf-8", "replace")[:MAX_PARTNER_TEXT]
