"""SMART Backend Services auth: an access token fetched with a signed JWT, cached, shared.

SMART App Launch "Backend Services" (client credentials grant with a private key
JWT client assertion): the sidecar signs a short-lived assertion (iss = sub =
client id, aud = the token URL, exp <= 5 minutes, a fresh jti) with its private
key, RS384 for an RSA key, ES384 for an EC P-384 key, and POSTs it to the token
endpoint; the partner checks it against the public key set (JWKS) registered for
the client and answers an access token, sent as `Authorization: Bearer` until
shortly before it expires (or the partner answers 401: `invalidate()`).

Errors, as sidecar.errors' PartnerErrors (a token request is part of the partner
request that needed it):

    PartnerConfigError  the token endpoint refused us (400/401/403: invalid_client,
                        invalid_grant, invalid_scope...; only the OAuth `error` code is
                        in the message, never error_description), a redirect, 404, TLS
    RetryableError      5xx, 408/425/429, network, timeout, or a 2xx without a token

The private key and the tokens are never in a log line, an error or a repr.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jwt
import urllib3
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from sidecar import __version__
from sidecar.errors import Category, ConfigError, PartnerConfigError, RetryableError
from sidecar.partner_client import (
    RETRYABLE_STATUS,
    _pool,
    parse_retry_after,
    post_capped,
)
from sidecar.partners import PartnerConfig

__all__ = ["DEFAULT_SCOPES", "SmartBackendAuth", "SmartSettings", "cache_seconds"]

DEFAULT_SCOPES = ("system/Patient.write system/QuestionnaireResponse.write"
                  " system/Binary.write system/DocumentReference.write")
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_SECONDS = 240  # the spec allows 300: a partner clock a little ahead still accepts it
MAX_MARGIN = 60.0
MIN_RSA_BITS = 2048
DEFAULT_EXPIRES_IN = 300  # `expires_in` is only RECOMMENDED in RFC 6749; assume short
# An OAuth error code is a short token (RFC 6749 5.2); anything else is not shown.
_ERROR_CODE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_HINTS = {
    "invalid_client": "check smart_client_id, smart_key_id and the JWKS the partner holds",
    "invalid_grant": "the assertion was refused: check the clock and smart_token_url",
    "invalid_scope": "check smart_scopes against what the partner granted the client",
    "unauthorized_client": "the partner has not allowed this client the grant",
}


@dataclass(frozen=True)
class SmartSettings:
    smart_client_id: str
    smart_token_url: str
    smart_private_key_file: str  # a path to an unencrypted PEM (PKCS#8 or traditional)
    smart_key_id: str = ""  # the JWK's `kid`: sent in the assertion's header when set
    smart_scopes: str = DEFAULT_SCOPES
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    deadline: float = 60.0  # the whole token request

    @classmethod
    def from_partner(cls, partner: PartnerConfig) -> SmartSettings:
        """A partner's SMART keys, its timeouts, its deadline capped at 60 s."""
        return cls(partner.smart_client_id, partner.smart_token_url,
                   partner.smart_private_key_file, partner.smart_key_id,
                   partner.smart_scopes or DEFAULT_SCOPES, partner.connect_timeout,
                   partner.read_timeout, min(partner.deadline, 60.0))


def cache_seconds(expires_in: float) -> float:
    """How long to use a token granted for `expires_in` s: less a margin of 10%, at most
    60 s, so a request never leaves with a token about to expire on its way."""
    return max(0.0, expires_in - min(MAX_MARGIN, expires_in * 0.1))


def signing_algorithm(key: Any, source: str) -> str:
    """RS384 for RSA (>= 2048 bits), ES384 for EC P-384; ConfigError names `source` only."""
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise ConfigError([f"smart_private_key_file {source}: an RSA key of"
                               f" {key.key_size} bits; at least {MIN_RSA_BITS}"])
        return "RS384"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if not isinstance(key.curve, ec.SECP384R1):
            raise ConfigError([f"smart_private_key_file {source}: an EC key on {key.curve.name};"
                               " SMART Backend Services signs with P-384 (ES384)"])
        return "ES384"
    raise ConfigError([f"smart_private_key_file {source}: not an RSA or EC P-384 key"])


def load_private_key(pem: bytes, source: str) -> Any:
    """The key in `pem`; the ConfigError names `source`, never the content or the parser's
    message (which could quote it)."""
    try:
        return serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ConfigError([f"smart_private_key_file {source}: not an unencrypted PEM"
                           " private key"]) from None


@dataclass(frozen=True)
class _Token:
    value: str = field(repr=False)
    until: float  # time.monotonic()


class SmartBackendAuth:
    """`sidecar.partner_profile.Auth` by SMART Backend Services; one per partner, shared
    by the workers (a lock: one token request at a time, the others wait and reuse it)."""

    def __init__(self, settings: SmartSettings, private_key_pem: bytes,
                 pool: urllib3.PoolManager | None = None) -> None:
        source = settings.smart_private_key_file or "(given PEM)"
        if not settings.smart_client_id or not settings.smart_token_url:
            raise ConfigError(["smart_client_id and smart_token_url are required"])
        self.settings = settings
        self._key = load_private_key(private_key_pem, source)
        self.algorithm = signing_algorithm(self._key, source)
        self._pool = pool or _pool(settings.smart_token_url, 2)
        self._timeout = urllib3.Timeout(connect=settings.connect_timeout,
                                        read=min(settings.read_timeout, settings.deadline))
        self._lock = threading.Lock()
        self._token: _Token | None = None

    @classmethod
    def from_settings(cls, settings: SmartSettings) -> SmartBackendAuth:
        """Read the key from `smart_private_key_file` (read once: a new key needs a restart)."""
        path = settings.smart_private_key_file
        try:
            with open(path, "rb") as handle:
                pem = handle.read()
        except OSError as exc:
            raise ConfigError([f"smart_private_key_file {path}: cannot read it"
                               f" ({exc.strerror or type(exc).__name__})"]) from None
        return cls(settings, pem)

    def __repr__(self) -> str:
        return (f"SmartBackendAuth(client_id={self.settings.smart_client_id!r},"
                f" token_url={self.settings.smart_token_url!r}, alg={self.algorithm})")

    def headers(self) -> dict[str, str]:
        with self._lock:
            token = self._token
            if token is None or time.monotonic() >= token.until:
                token = self._token = self._fetch()
            return {"Authorization": f"Bearer {token.value}"}

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def close(self) -> None:
        self._pool.clear()

    def assertion(self, now: float | None = None) -> str:
        """A signed client assertion, good for ASSERTION_SECONDS (at most 5 minutes)."""
        issued = int(time.time() if now is None else now)
        claims = {"iss": self.settings.smart_client_id, "sub": self.settings.smart_client_id,
                  "aud": self.settings.smart_token_url, "iat": issued,
                  "exp": issued + ASSERTION_SECONDS, "jti": secrets.token_urlsafe(24)}
        header = {"typ": "JWT"}
        if self.settings.smart_key_id:
            header["kid"] = self.settings.smart_key_id
        return jwt.encode(claims, self._key, algorithm=self.algorithm, headers=header)

    def _fetch(self) -> _Token:
        form = urlencode({"grant_type": "client_credentials",
                          "client_assertion_type": ASSERTION_TYPE,
                          "client_assertion": self.assertion(),
                          "scope": self.settings.smart_scopes})
        try:
            answer = post_capped(
                self._pool, self.settings.smart_token_url,
                {"Content-Type": "application/x-www-form-urlencoded",
                 "Accept": "application/json", "User-Agent": f"FormRelay/{__version__}"},
                form.encode(), self._timeout, self.settings.deadline,
                who="the SMART token endpoint")
        except (RetryableError, PartnerConfigError) as exc:  # no answer: say whose request
            raise type(exc)(f"SMART token request: {exc}", category=exc.category) from None
        return self._outcome(*answer)

    def _outcome(self, resp: urllib3.BaseHTTPResponse, body: bytes | None) -> _Token:
        status = resp.status
        parsed = _json_object(body)
        if 200 <= status < 300:
            token = parsed.get("access_token")
            kind = parsed.get("token_type", "bearer")
            if not isinstance(token, str) or not token or not isinstance(kind, str) \
                    or kind.lower() != "bearer":
                raise RetryableError(f"HTTP {status} bad_response: the token endpoint answered"
                                     " without a bearer access_token", status,
                                     category=Category.BAD_RESPONSE)
            expires = parsed.get("expires_in", DEFAULT_EXPIRES_IN)
            if isinstance(expires, bool) or not isinstance(expires, int | float) \
                    or expires <= 0:
                expires = DEFAULT_EXPIRES_IN
            return _Token(token, time.monotonic() + cache_seconds(float(expires)))
        if status >= 500 or status in RETRYABLE_STATUS:
            raise RetryableError(f"SMART token request: HTTP {status}", status,
                                 parse_retry_after(resp.headers.get("Retry-After")))
        if 300 <= status < 400:
            raise PartnerConfigError(f"SMART token request: HTTP {status} redirect: check"
                                     " smart_token_url", status)
        if status in (404, 405, 410):
            raise PartnerConfigError(f"SMART token request: HTTP {status}: no token endpoint"
                                     " there; check smart_token_url", status)
        code = parsed.get("error")
        code = code if isinstance(code, str) and _ERROR_CODE.fullmatch(code) else "unknown"
        hint = _HINTS.get(code, "check the smart_* settings")
        raise PartnerConfigError(f"SMART token request refused: HTTP {status} {code} ({hint})",
                                 status, category=Category.AUTH)


def _json_object(body: bytes | None) -> dict[str, Any]:
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
