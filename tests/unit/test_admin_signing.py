"""Signatures of the bridge's requests (sidecar.signing, format FR1, docs/dashboard.md).

The vectors in tests/fixtures/signing/ are shared with the plugin's PHP test
(tests/wordpress/test_signing_vectors.py).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest

from sidecar import signing
from sidecar.signing import BadSignature, sign, sign_admin, verify, verify_admin

pytestmark = pytest.mark.unit
SECRET = "s3cret-with-\"quotes\"-and-\\"
NOW = 1_800_000_000
NONCE = "0123456789abcdef0123456789abcdef"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "signing"
VECTORS = sorted(FIXTURES.glob("*.json"))


def signed(case: dict[str, Any]) -> tuple[bytes, str]:
    """(message, signature) the sidecar makes of a vector's fields."""
    f, secret = case["fields"], case["secret"]
    if case["purpose"] == signing.NOTIFY:
        return (signing.message(signing.NOTIFY, [f["timestamp"].encode(), f["nonce"].encode(),
                                                 f["body"].encode()]),
                sign(secret, f["timestamp"], f["nonce"], f["body"].encode()))
    if case["purpose"] == signing.DOCTOR:
        return (signing.message(signing.DOCTOR, [f[k].encode() for k in
                                                 ("direction", "timestamp", "nonce", "body")]),
                signing.sign_doctor(secret, f["direction"], f["timestamp"], f["nonce"],
                                    f["body"].encode()))
    return (signing.admin_message(f["timestamp"], f["nonce"], f["method"], f["path_and_query"],
                                  f["user"], f["body"].encode()),
            sign_admin(secret, f["timestamp"], f["nonce"], f["method"], f["path_and_query"],
                       f["user"], f["body"].encode()))


@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_the_shared_vectors(path: Path):
    case = json.loads(path.read_text(encoding="utf-8"))
    message, signature = signed(case)
    assert message == case["message"].encode()
    assert signature == case["signature"]
    mac = hmac.new(case["secret"].encode(), case["message"].encode(), hashlib.sha256)
    assert signature == "sha256=" + mac.hexdigest()


def test_the_message_is_the_tag_then_length_prefixed_fields():
    got = sign_admin(SECRET, NOW, NONCE, "post", "/admin/v1/jobs/7/retry", "alice", b"{}")
    text = (b"9:FR1-admin\n10:1800000000\n32:" + NONCE.encode() + b"\n4:POST\n"
            b"22:/admin/v1/jobs/7/retry\n5:alice\n2:{}\n")
    assert got == "sha256=" + hmac.new(SECRET.encode(), text, hashlib.sha256).hexdigest()


def test_a_dot_moved_between_query_and_user_is_another_signature():
    """The attack on the previous format: signed for `?search=a` by `x.y`, sent for
    `?search=a.x` by `y`."""
    sig = sign_admin(SECRET, NOW, NONCE, "GET", "/admin/v1/jobs?search=a", "x.y")
    verify_admin(SECRET, str(NOW), NONCE, sig, "GET", "/admin/v1/jobs?search=a", "x.y", b"",
                 now=NOW)
    with pytest.raises(BadSignature, match="bad signature"):
        verify_admin(SECRET, str(NOW), NONCE, sig, "GET", "/admin/v1/jobs?search=a.x", "y", b"",
                     now=NOW)


def test_a_signature_for_one_purpose_fails_the_other():
    admin = sign_admin(SECRET, NOW, NONCE, "POST", "/v1/notify", "u", b'{"job_id":1}')
    with pytest.raises(BadSignature, match="bad signature"):
        verify(SECRET, str(NOW), NONCE, admin, b'{"job_id":1}', now=NOW)
    notify = sign(SECRET, NOW, NONCE, b"")
    with pytest.raises(BadSignature, match="bad signature"):
        verify_admin(SECRET, str(NOW), NONCE, notify, "GET", "", "u", b"", now=NOW)


def test_the_previous_format_is_refused():
    old_notify = "sha256=" + hmac.new(SECRET.encode(), f"{NOW}.".encode() + b'{"job_id":1}',
                                      hashlib.sha256).hexdigest()
    with pytest.raises(BadSignature, match="missing nonce"):  # an old bridge sends no nonce
        verify(SECRET, str(NOW), None, old_notify, b'{"job_id":1}', now=NOW)
    with pytest.raises(BadSignature, match="bad signature"):
        verify(SECRET, str(NOW), NONCE, old_notify, b'{"job_id":1}', now=NOW)


def test_a_right_signature_verifies():
    sig = sign_admin(SECRET, NOW, NONCE, "GET", "/admin/v1/jobs?status=failed", "alice")
    verify_admin(SECRET, str(NOW), NONCE, sig, "GET", "/admin/v1/jobs?status=failed", "alice",
                 b"", now=NOW + 299)
    verify_admin(SECRET, str(NOW), NONCE, " " + sig + " ", "GET", "/admin/v1/jobs?status=failed",
                 "alice", b"", now=NOW - 299)


@pytest.mark.parametrize("change,message", [
    ({"timestamp": None}, "missing"), ({"signature": None}, "missing"),
    ({"user": ""}, "missing"), ({"nonce": None}, "missing nonce"),
    ({"nonce": NONCE.upper()}, "malformed nonce"), ({"nonce": NONCE[:-1]}, "malformed nonce"),
    ({"nonce": NONCE + "0"}, "malformed nonce"), ({"nonce": "g" * 32}, "malformed nonce"),
    ({"nonce": NONCE[::-1]}, "bad signature"),
    ({"timestamp": "12e3"}, "malformed timestamp"),
    ({"now": NOW + 301}, "stale"), ({"now": NOW - 301}, "stale"),
    ({"method": "POST"}, "bad signature"), ({"path": "/admin/v1/jobs?status=completed"},
                                            "bad signature"),
    ({"user": "mallory"}, "bad signature"), ({"body": b"x"}, "bad signature"),
    ({"secret": "other-secret-0123456"}, "bad signature"),
    ({"signature": "sha256=" + "0" * 64}, "bad signature"),
    ({"signature": "sha256=\u00e9\u00e9"}, "bad signature"),
])
def test_anything_changed_is_refused(change, message):
    args = {"secret": SECRET, "timestamp": str(NOW), "nonce": NONCE,
            "signature": sign_admin(SECRET, NOW, NONCE, "GET", "/admin/v1/jobs?status=failed",
                                    "alice"),
            "method": "GET", "path": "/admin/v1/jobs?status=failed", "user": "alice",
            "body": b"", "now": NOW}
    args.update(change)
    with pytest.raises(BadSignature, match=message):
        verify_admin(args["secret"], args["timestamp"], args["nonce"], args["signature"],
                     args["method"], args["path"], args["user"], args["body"], now=args["now"])


def test_a_non_ascii_signature_is_refused_not_an_error():
    with pytest.raises(BadSignature):
        verify(SECRET, str(NOW), NONCE, "sha256=\u00e9t\u00e9", b"{}", now=NOW)
    with pytest.raises(BadSignature):
        verify_admin(SECRET, str(NOW), NONCE, "sha256=\u00e9", "GET", "/admin/v1/stats", "alice",
                     b"", now=NOW)
