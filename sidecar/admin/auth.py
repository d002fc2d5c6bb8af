"""The admin routes' signature check (docs/dashboard.md, "Signing"), run before every route.

The plugin signs the FR1-admin message (sidecar.signing: timestamp, nonce,
METHOD, path_and_query, user, body, each length-prefixed) with the shared
secret. The path and query are taken as the client sent them (the server's
REQUEST_URI), the user header and path as raw bytes (UTF-8), so nothing is
normalised between signing and checking. A POST's nonce is accepted once; a
GET changes nothing, so a repeated GET gains an attacker nothing the first did
not, and skipping it saves the dashboard's 5-second refresh an INSERT each.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

from flask import Response, g, jsonify, request

from sidecar.signing import ADMIN, BadSignature, ReplayGuard, verify_admin

MAX_USER_CHARS = 60
MAX_BODY_BYTES = 64 * 1024


def _raw(text: str) -> str:
    """WSGI hands raw bytes over as latin-1 text: their UTF-8 reading (ValueError if none)."""
    return text.encode("latin-1").decode("utf-8")


def path_and_query() -> str:
    environ = request.environ
    uri = environ.get("REQUEST_URI") or environ.get("RAW_URI")
    if uri:
        if "://" in uri.split("?", 1)[0]:  # absolute form: keep from the path on
            uri = "/" + uri.split("://", 1)[1].partition("/")[2]
        return _raw(uri)
    path = quote(_raw(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")), safe="/")
    query = environ.get("QUERY_STRING", "")
    return f"{path}?{query}" if query else path


def acting_user(header: str | None) -> str:
    """The user login from its header: 1-60 characters, no control characters."""
    if not header:
        raise BadSignature("missing signature headers")
    try:
        user = _raw(header)
    except ValueError:
        raise BadSignature("malformed user") from None
    if len(user) > MAX_USER_CHARS or any(unicodedata.category(c)[0] == "C" for c in user):
        raise BadSignature("malformed user")
    return user


def check_signature(secret: str, replay: ReplayGuard) -> tuple[Response, int] | None:
    """A Flask before_request: None to go on (with g.admin_user set), or the 401 answer."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        return jsonify(error="body too large"), 413
    body = request.get_data(cache=True)
    nonce = request.headers.get("X-FormRelay-Nonce")
    try:
        user = acting_user(request.headers.get("X-FormRelay-User"))
        uri = _path_and_query_checked()
        verify_admin(secret, request.headers.get("X-FormRelay-Timestamp"), nonce,
                     request.headers.get("X-FormRelay-Signature"), request.method, uri, user,
                     body)
    except BadSignature as exc:
        return jsonify(error=str(exc)), 401
    assert nonce is not None
    if request.method not in ("GET", "HEAD") and not replay.first_use(ADMIN, nonce):
        return jsonify(error="replayed request"), 401
    g.admin_user = user
    return None


def _path_and_query_checked() -> str:
    try:
        return path_and_query()
    except ValueError:
        raise BadSignature("malformed request path") from None


def user() -> str:
    """The acting WordPress user of this (signed) request."""
    return str(g.admin_user)
