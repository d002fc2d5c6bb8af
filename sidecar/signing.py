"""Signed requests between the WordPress bridge and the sidecar (format FR1).

Every signed request carries:
    X-FormRelay-Timestamp: <unix seconds>
    X-FormRelay-Nonce:     <32 lower-case hex digits: 128 random bits, new for each request>
    X-FormRelay-Signature: sha256=<hex HMAC-SHA256, keyed with the shared secret, of the message>

The message is a list of fields, each written as `<decimal byte length>:<bytes>\\n`,
the purpose tag first, so no field can spill into the next and a message
signed for one purpose never verifies for the other:
    notify (POST /v1/notify):  FR1-notify, timestamp, nonce, body
    admin  (/admin/v1/...):    FR1-admin, timestamp, nonce, METHOD, path_and_query, user, body
    doctor (plugin route formrelay/v1/doctor, the sidecar asking):
                               FR1-doctor, "request", timestamp, nonce, body
           (its answer, the plugin proving it holds the same secret):
                               FR1-doctor, "answer", the request's timestamp and nonce,
                               the plugin's version

The plugin builds the same message in PHP (FormRelay_Signing::message); the
vectors in tests/fixtures/signing/ hold both sides to it. A nonce is accepted
once: the store remembers it in MySQL (sidecar/store/nonces.py) for longer
than the timestamp window, so every web process of every host refuses a replay,
across restarts. The previous format ("<ts>.<body>", "<ts>.<METHOD>.<path>.<user>.<body>")
is refused: docs/dashboard.md, "Signing", says why.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from typing import Protocol

MAX_AGE_SECONDS = 300
# A nonce is kept past any time its timestamp could still be fresh (up to
# MAX_AGE ahead of and behind the verifier's clock), plus a margin for skew
# between the web hosts' clocks and the database's.
NONCE_TTL_SECONDS = 2 * MAX_AGE_SECONDS + 60
PREFIX = "sha256="
VERSION = "FR1"
NOTIFY = f"{VERSION}-notify"
ADMIN = f"{VERSION}-admin"
DOCTOR = f"{VERSION}-doctor"
DOCTOR_DIRECTIONS = ("request", "answer")  # an answer never verifies as a request
NONCE = re.compile(r"[0-9a-f]{32}")


class BadSignature(Exception):
    """Why a request is refused (no secret, no body in the message)."""


class ReplayGuard(Protocol):
    def first_use(self, purpose: str, nonce: str, ttl: int = NONCE_TTL_SECONDS) -> bool:
        """True the first time (purpose, nonce) is seen within `ttl` seconds."""


def message(purpose: str, fields: list[bytes]) -> bytes:
    """The signed bytes: the purpose tag, then each field, length-prefixed."""
    out = bytearray()
    for field in (purpose.encode(), *fields):
        out += b"%d:" % len(field) + field + b"\n"
    return bytes(out)


def _hmac(secret: str, data: bytes) -> str:
    return PREFIX + hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int | str, nonce: str, body: bytes) -> str:
    """The notify signature."""
    return _hmac(secret, message(NOTIFY, [str(timestamp).encode(), nonce.encode(), body]))


def admin_message(timestamp: int | str, nonce: str, method: str, path_and_query: str,
                  user: str, body: bytes) -> bytes:
    """The signed bytes of an admin request (text fields as UTF-8, the body raw)."""
    return message(ADMIN, [str(timestamp).encode(), nonce.encode(), method.upper().encode(),
                           path_and_query.encode(), user.encode(), body])


def sign_admin(secret: str, timestamp: int | str, nonce: str, method: str,
               path_and_query: str, user: str, body: bytes = b"") -> str:
    return _hmac(secret, admin_message(timestamp, nonce, method, path_and_query, user, body))


def sign_doctor(secret: str, direction: str, timestamp: int | str, nonce: str,
                body: bytes) -> str:
    """The doctor's round trip: `direction` "request" (sidecar) or "answer" (plugin)."""
    if direction not in DOCTOR_DIRECTIONS:
        raise ValueError(f"direction must be one of {DOCTOR_DIRECTIONS}")
    return _hmac(secret, message(DOCTOR, [direction.encode(), str(timestamp).encode(),
                                          nonce.encode(), body]))


def _fresh(timestamp: str | None, nonce: str | None, signature: str | None,
           now: float | None, max_age: int) -> tuple[str, str, str]:
    """The checks both purposes share, before the HMAC."""
    if not timestamp or not signature:
        raise BadSignature("missing signature headers")
    if not nonce:
        # An older bridge signs without a nonce (the previous format): say which side to upgrade.
        raise BadSignature("missing nonce (upgrade the FormRelay Bridge plugin)")
    if not NONCE.fullmatch(nonce):
        raise BadSignature("malformed nonce")
    if not timestamp.isdigit():
        raise BadSignature("malformed timestamp")
    if abs((time.time() if now is None else now) - int(timestamp)) > max_age:
        raise BadSignature("stale timestamp")
    return timestamp, nonce, signature


def _compare(expected: str, signature: str) -> None:
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):  # bytes: any header
        raise BadSignature("bad signature")


def verify(secret: str, timestamp: str | None, nonce: str | None, signature: str | None,
           body: bytes, now: float | None = None, max_age: int = MAX_AGE_SECONDS) -> None:
    """Raise BadSignature unless the notify request is signed right and fresh."""
    ts, nonce, signature = _fresh(timestamp, nonce, signature, now, max_age)
    _compare(sign(secret, ts, nonce, body), signature)


def verify_admin(secret: str, timestamp: str | None, nonce: str | None, signature: str | None,
                 method: str, path_and_query: str, user: str | None, body: bytes,
                 now: float | None = None, max_age: int = MAX_AGE_SECONDS) -> None:
    """Raise BadSignature unless the admin request is signed right, for `user`, and fresh."""
    if not user:
        raise BadSignature("missing signature headers")
    ts, nonce, signature = _fresh(timestamp, nonce, signature, now, max_age)
    _compare(sign_admin(secret, ts, nonce, method, path_and_query, user, body), signature)
