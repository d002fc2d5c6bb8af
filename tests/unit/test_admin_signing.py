"""Signatures of the dashboard's admin requests (sidecar.signing, docs/dashboard.md)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from sidecar.signing import BadSignature, sign, sign_admin, verify_admin

pytestmark = pytest.mark.unit
SECRET = "s3cret-with-\"quotes\"-and-\\"
NOW = 1_800_000_000


def test_the_signed_text_is_timestamp_method_path_user_body():
    got = sign_admin(SECRET, NOW, "post", "/admin/v1/jobs/7/retry", "alice", b"{}")
    text = f"{NOW}.POST./admin/v1/jobs/7/retry.alice.{{}}".encode()
    assert got == "sha256=" + hmac.new(SECRET.encode(), text, hashlib.sha256).hexdigest()
    assert got != sign(SECRET, NOW, b"{}")  # the notify signature is unchanged and different


def test_a_right_signature_verifies():
    sig = sign_admin(SECRET, NOW, "GET", "/admin/v1/jobs?status=failed", "alice")
    verify_admin(SECRET, str(NOW), sig, "GET", "/admin/v1/jobs?status=failed", "alice", b"",
                 now=NOW + 299)
    verify_admin(SECRET, str(NOW), " " + sig + " ", "GET", "/admin/v1/jobs?status=failed",
                 "alice", b"", now=NOW - 299)


@pytest.mark.parametrize("change,message", [
    ({"timestamp": None}, "missing"), ({"signature": None}, "missing"),
    ({"user": ""}, "missing"), ({"timestamp": "12e3"}, "malformed timestamp"),
    ({"now": NOW + 301}, "stale"), ({"now": NOW - 301}, "stale"),
    ({"method": "POST"}, "bad signature"), ({"path": "/admin/v1/jobs?status=completed"},
                                            "bad signature"),
    ({"user": "mallory"}, "bad signature"), ({"body": b"x"}, "bad signature"),
    ({"secret": "other-secret-0123456"}, "bad signature"),
    ({"signature": "sha256=" + "0" * 64}, "bad signature"),
    ({"signature": "sha256=\u00e9\u00e9"}, "bad signature"),
])
def test_anything_changed_is_refused(change, message):
    args = {"secret": SECRET, "timestamp": str(NOW),
            "signature": sign_admin(SECRET, NOW, "GET", "/admin/v1/jobs?status=failed", "alice"),
            "method": "GET", "path": "/admin/v1/jobs?status=failed", "user": "alice",
            "body": b"", "now": NOW}
    args.update(change)
    with pytest.raises(BadSignature, match=message):
        verify_admin(args["secret"], args["timestamp"], args["signature"], args["method"],
                     args["path"], args["user"], args["body"], now=args["now"])


def test_a_non_ascii_signature_is_refused_not_an_error():
    from sidecar.signing import verify

    with pytest.raises(BadSignature):
        verify(SECRET, str(NOW), "sha256=\u00e9t\u00e9", b"{}", now=NOW)
    with pytest.raises(BadSignature):
        verify_admin(SECRET, str(NOW), "sha256=\u00e9", "GET", "/admin/v1/stats", "alice", b"",
                     now=NOW)
