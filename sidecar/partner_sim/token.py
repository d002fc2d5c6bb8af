"""The simulator's SMART Backend Services token endpoint: `POST {base}/token`.

On when the `jwks` knob holds a JSON Web Key Set (`--jwks FILE`, or a dict for
tests). A client credentials request with a JWT client assertion gets an opaque
access token when the assertion is signed (RS384 or ES384) by a key of the set,
iss == sub == the `client_id` knob, aud == the URL it was posted to, exp in the
future and at most 5 minutes ahead, and its jti not seen before; else an OAuth
error (400 invalid_request, invalid_client, invalid_scope, unsupported_grant_type).
With the JWKS on, every API request needs `Authorization: Bearer <a live token>`.

Tokens live `token_seconds` (default 300); `POST /_sim/tokens/expire` ends them
all now, `GET /_sim/tokens` counts requests (issued / refused, by error).
Assertions, tokens and keys are never logged nor kept (tokens by their hash).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

import jwt
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from sidecar.partner_sim.state import Outcome  # (state imports this module lazily)

ALGORITHMS = ("RS384", "ES384")
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_SECONDS = 300
LEEWAY = 5  # seconds of clock difference allowed on exp (same host in tests)


def parse_jwks(name: str, value: Any) -> dict[str, Any] | None:
    """The `jwks` knob: None (off) or a JWK Set whose keys all load as RSA or EC public keys."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or not isinstance(value.get("keys"), list) \
            or not value["keys"]:
        raise ValueError(f"{name} must be a JWK Set: an object with a non-empty \"keys\" list")
    for n, jwk in enumerate(value["keys"], 1):
        try:
            _public_key(jwk)
        except (ValueError, TypeError, KeyError, jwt.PyJWKError, jwt.InvalidKeyError):
            raise ValueError(f"{name}: key {n} is not an RSA or EC public JWK") from None
    copy: dict[str, Any] = json.loads(json.dumps(value))  # a private copy, plain JSON
    return copy


def _public_key(jwk: Any) -> Any:
    if not isinstance(jwk, Mapping):
        raise ValueError("not an object")
    if "d" in jwk:  # a private key in a set meant to be published: refuse it
        raise ValueError("private")
    kty = jwk.get("kty")
    if kty == "RSA":
        return RSAAlgorithm.from_jwk(dict(jwk))
    if kty == "EC":
        return ECAlgorithm.from_jwk(dict(jwk))
    raise ValueError("kty")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenIssuer:
    """Issued tokens (by hash, with their expiry), seen jtis and counters; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[str, float] = {}  # sha256(token) -> time.monotonic() expiry
        self._jtis: dict[str, float] = {}  # jti -> its exp (time.time()), kept until then
        self._issued = 0
        self._refused: Counter[str] = Counter()
        self._expired_by_control = 0
        # the parsed set and the knob value it came from (held: `is` stays meaningful)
        self._keys: tuple[dict[str, Any] | None, list[tuple[str, str, Any]]] = (None, [])

    def stats(self) -> dict[str, Any]:
        with self._lock:
            now = time.monotonic()
            return {"issued": self._issued, "refused": sum(self._refused.values()),
                    "refused_by_error": dict(self._refused),
                    "live": sum(1 for until in self._live.values() if until > now),
                    "expired_by_control": self._expired_by_control}

    def expire_all(self) -> dict[str, int]:
        """End every issued token now (the next API request with one gets 401)."""
        with self._lock:
            now = time.monotonic()
            ended = sum(1 for until in self._live.values() if until > now)
            self._live.clear()
            self._expired_by_control += ended
            return {"expired": ended}

    def is_live(self, authorization: str) -> bool:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        with self._lock:
            until = self._live.get(_hash(token.strip()))
            return until is not None and until > time.monotonic()

    def _keys_for(self, jwks: dict[str, Any]) -> list[tuple[str, str, Any]]:
        """(kid, kty, key) of the set, parsed once per knob value."""
        with self._lock:
            if self._keys[0] is not jwks:
                self._keys = (jwks, [(str(k.get("kid", "")), k["kty"], _public_key(k))
                                         for k in jwks["keys"]])
            return self._keys[1]

    def refuse(self, error: str, why: str, status: int = 400) -> Outcome:
        with self._lock:
            self._refused[error] += 1
        return Outcome(status, {"error": error, "error_description": why}, f"refused={error}",
                       (("Cache-Control", "no-store"),))

    def grant(self, form: Mapping[str, str], content_type: str, token_url: str,
              jwks: dict[str, Any], client_id: str, token_seconds: int) -> Outcome:
        """Check a token request; an access token or an OAuth error."""
        if content_type != "application/x-www-form-urlencoded":
            return self.refuse("invalid_request", "the body must be a form")
        if form.get("grant_type") != "client_credentials":
            return self.refuse("unsupported_grant_type", "grant_type must be client_credentials")
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            return self.refuse("invalid_request", "client_assertion_type must be jwt-bearer")
        assertion = form.get("client_assertion", "")
        if not assertion:
            return self.refuse("invalid_request", "client_assertion is required")
        problem = self._check_assertion(assertion, token_url, jwks, client_id)
        if problem:
            return self.refuse("invalid_client", problem)
        scope = " ".join(form.get("scope", "").split())
        if not scope or not all(s.startswith("system/") for s in scope.split()):
            return self.refuse("invalid_scope", "scope must be system/ scopes")
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._issued += 1
            self._live[_hash(token)] = time.monotonic() + token_seconds
        return Outcome(200, {"access_token": token, "token_type": "bearer",
                             "expires_in": token_seconds, "scope": scope}, "issued",
                       (("Cache-Control", "no-store"), ("Pragma", "no-cache")))

    def _check_assertion(self, assertion: str, token_url: str, jwks: dict[str, Any],
                         client_id: str) -> str:
        """"" when the assertion is good; else why not (no claim values: they are the client's)."""
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            return "client_assertion is not a JWT"
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            return "alg must be RS384 or ES384"
        kty = "RSA" if alg == "RS384" else "EC"
        kid = header.get("kid")
        keys = [key for key_id, key_kty, key in self._keys_for(jwks)
                if key_kty == kty and (kid is None or key_id == kid)]
        claims: dict[str, Any] | None = None
        for key in keys:
            try:
                claims = jwt.decode(assertion, key, algorithms=[alg], audience=token_url,
                                    issuer=client_id, leeway=LEEWAY,
                                    options={"require": ["iss", "sub", "aud", "exp", "jti"]})
                break
            except jwt.InvalidSignatureError:
                continue  # another key of the set may have signed it
            except jwt.PyJWTError as exc:
                return f"assertion refused: {type(exc).__name__}"
        if claims is None:
            return "no key of the JWKS verifies the assertion"
        if claims["sub"] != claims["iss"]:
            return "sub must equal iss"
        exp, now = claims["exp"], time.time()
        if not isinstance(exp, int | float) or exp > now + MAX_ASSERTION_SECONDS + LEEWAY:
            return "exp is more than 5 minutes ahead"
        jti = claims["jti"]
        with self._lock:
            self._jtis = {j: until for j, until in self._jtis.items() if until > now - LEEWAY}
            if not isinstance(jti, str) or not jti or jti in self._jtis:
                return "jti reused"
            self._jtis[jti] = float(exp)
        return ""


def live_or_static(issuer: TokenIssuer, authorization: str, static: str) -> bool:
    """With a JWKS: a live issued token, or the static token knob when that is set too."""
    if static and hmac.compare_digest(authorization.encode(), f"Bearer {static}".encode()):
        return True
    return issuer.is_live(authorization)
