"""`formrelay doctor` against the real plugin in WordPress: active, and the shared secret
proven by a signed FR1-doctor round trip (tests/fixtures/signing/doctor_*.json)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.wordpress.conftest import DB_HOST, DB_PASSWORD, DB_PORT, DB_USER, SHARED_SECRET
from tests.wordpress.test_schema_agreement import formrelay_cli

pytestmark = [pytest.mark.wordpress, pytest.mark.db]


def doctor(wp, tmp_path: Path, secret: str) -> dict[str, str]:
    env = {"PATH": os.environ["PATH"], "WORDPRESS_DB_HOST": f"{DB_HOST}:{DB_PORT}",
           "WORDPRESS_DB_USER": DB_USER, "WORDPRESS_DB_PASSWORD": DB_PASSWORD,
           "WORDPRESS_DB_NAME": wp.db_name, "WORDPRESS_TABLE_PREFIX": wp.table_prefix,
           "FORMRELAY_SHARED_SECRET": secret, "FORMRELAY_UPLOADS_DIR": str(tmp_path),
           "FORMRELAY_PARTNER_URL": "http://127.0.0.1:9/api"}
    proc = subprocess.run([str(formrelay_cli()), "doctor"], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert secret not in proc.stdout + proc.stderr
    return {line.split(":")[0][5:]: line for line in proc.stdout.splitlines()}


def test_the_same_secret_passes_the_round_trip(wordpress, tmp_path):
    checks = doctor(wordpress, tmp_path, SHARED_SECRET)
    assert checks["plugin"].startswith("OK   plugin: FormRelay Bridge is active")
    assert checks["shared secret"].startswith("OK   shared secret: the plugin (0.1.0) at")
    assert wordpress.url in checks["shared secret"]


def test_another_secret_is_a_fail_naming_the_mismatch(wordpress, tmp_path):
    checks = doctor(wordpress, tmp_path, "another-secret-of-enough-length")
    assert checks["shared secret"].startswith("FAIL shared secret: the plugin refused this"
                                              " signature: its shared secret differs")


def test_the_route_refuses_unsigned_and_stale_requests(wordpress):
    url = wordpress.url + "/?rest_route=/formrelay/v1/doctor"
    unsigned = requests.post(url, timeout=30)
    assert unsigned.status_code == 401 and unsigned.json()["code"] == "formrelay_stale"
    stale = requests.post(url, timeout=30, headers={
        "X-FormRelay-Timestamp": "1000", "X-FormRelay-Nonce": "0" * 32,
        "X-FormRelay-Signature": "sha256=" + "0" * 64})
    assert stale.status_code == 401 and stale.json()["code"] == "formrelay_stale"
    forged = requests.post(url, timeout=30, headers={
        "X-FormRelay-Timestamp": str(int(time.time())), "X-FormRelay-Nonce": "0" * 32,
        "X-FormRelay-Signature": "sha256=" + "0" * 64})
    assert forged.status_code == 401 and forged.json()["code"] == "formrelay_bad_signature"
    assert "signature" not in forged.json().get("data", {})
