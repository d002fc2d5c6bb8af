"""Signed requests between the WordPress bridge and the sidecar.

Notify (POST /v1/notify):
    X-FormRelay-Timestamp: <unix seconds>
    X-FormRelay-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the shared secret>

The dashboard's admin routes (/admin/v1/..., docs/dashboard.md) also sign the
method, the path with its query string exactly as sent, and the acting user:
    X-FormRelay-User: <WordPress login, 1-60 characters>
    X-FormRelay-Signature: sha256=<HMAC of "<timestamp>.<METHOD>.<path_and_query>.<user>.<body>">

A request is accepted once: its signature is remembered for the freshness
window (in memory, or in Redis so that every web process of every host
shares the memory), so a captured request cannot be played again.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from typing import Protocol

MAX_AGE_SECONDS = 300
PREFIX = "sha256="


class BadSignature(Exception):
    """Why a request is refused (no secret, no body in the message)."""


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return PREFIX + mac.hexdigest()


def verify(secret: str, timestamp: str | None, signature: str | None, body: bytes,
           now: float | None = None, max_age: int = MAX_AGE_SECONDS) -> None:
    """Raise BadSignature unless the signature is right and the timestamp fresh."""
    if not timestamp or not signature:
        raise BadSignature("missing signature headers")
    if not timestamp.isdigit():
        raise BadSignature("malformed timestamp")
    if abs((time.time() if now is None else now) - int(timestamp)) > max_age:
        raise BadSignature("stale timestamp")
    expected = sign(secret, timestamp, body).encode()
    if not hmac.compare_digest(expected, signature.strip().encode()):  # bytes: any header
        raise BadSignature("bad signature")


def admin_message(timestamp: int | str, method: str, path_and_query: str, user: str,
                  body: bytes) -> bytes:
    """The signed text of an admin request (UTF-8), body last and raw."""
    head = f"{timestamp}.{method.upper()}.{path_and_query}.{user}."
    return head.encode() + body


def sign_admin(secret: str, timestamp: int | str, method: str, path_and_query: str, user: str,
               body: bytes = b"") -> str:
    message = admin_message(timestamp, method, path_and_query, user, body)
    return PREFIX + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify_admin(secret: str, timestamp: str | None, signature: str | None, method: str,
                 path_and_query: str, user: str | None, body: bytes, now: float | None = None,
                 max_age: int = MAX_AGE_SECONDS) -> None:
    """Raise BadSignature unless the admin request is signed right, for `user`, and fresh."""
    if not timestamp or not signature or not user:
        raise BadSignature("missing signature headers")
    if not timestamp.isdigit():
        raise BadSignature("malformed timestamp")
    if abs((time.time() if now is None else now) - int(timestamp)) > max_age:
        raise BadSignature("stale timestamp")
    expected = sign_admin(secret, timestamp, method, path_and_query, user, body)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        raise BadSignature("bad signature")


class ReplayGuard(Protocol):
    def first_use(self, signature: str, ttl: int = MAX_AGE_SECONDS) -> bool:
        """True the first time a signature is seen within `ttl` seconds."""


class MemoryReplayGuard:
    """One process's memory of recent signatures (one host, embedded queue)."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def first_use(self, signature: str, ttl: int = MAX_AGE_SECONDS) -> bool:
        now = time.monotonic()
        with self._lock:
            if len(self._seen) > 10_000:  # forget the expired now and then
                self._seen = {k: t for k, t in self._seen.items() if t > now}
            if self._seen.get(signature, 0) > now:
                return False
            self._seen[signature] = now + ttl + 1
            return True


class RedisReplayGuard:
    """Shared by every web process on every host: SET NX with an expiry."""

    def __init__(self, url: str, namespace: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url)
        self._namespace = namespace

    def first_use(self, signature: str, ttl: int = MAX_AGE_SECONDS) -> bool:
        key = f"{self._namespace}:notify:{signature[-64:]}"
        return bool(self._redis.set(key, b"1", nx=True, ex=ttl + 1))
