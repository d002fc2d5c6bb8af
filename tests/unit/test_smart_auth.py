"""SmartBackendAuth's pure parts: keys and algorithms, the client assertion, the cache;
and PartnerClient's one retry after a 401 (with the sending stubbed out)."""

from __future__ import annotations

import threading
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa

from sidecar import smart_auth
from sidecar.errors import ConfigError, PartnerConfigError
from sidecar.partner_client import PartnerClient, PartnerSettings
from sidecar.partner_profile import Accepted, RecordRequest
from sidecar.smart_auth import SmartBackendAuth, SmartSettings, cache_seconds
from tests.conftest import wait_until

pytestmark = pytest.mark.unit

TOKEN_URL = "https://auth.example.test/oauth/token"


def pem(key: Any) -> bytes:
    return bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


def settings(**kw: Any) -> SmartSettings:
    values: dict[str, Any] = {"smart_client_id": "client-7", "smart_token_url": TOKEN_URL,
                              "smart_private_key_file": "/etc/formrelay/smart.pem"}
    return SmartSettings(**{**values, **kw})


@pytest.mark.parametrize(("which", "alg"), [("rsa_key", "RS384"), ("ec_key", "ES384")])
def test_the_assertion_is_signed_with_the_keys_algorithm_and_carries_the_spec_claims(
        request, which, alg):
    key = request.getfixturevalue(which)
    auth = SmartBackendAuth(settings(smart_key_id="kid-1"), pem(key))
    assert auth.algorithm == alg
    assertion = auth.assertion(now=1_700_000_000)
    header = jwt.get_unverified_header(assertion)
    assert header == {"alg": alg, "typ": "JWT", "kid": "kid-1"}
    claims = jwt.decode(assertion, key.public_key(), algorithms=[alg], audience=TOKEN_URL,
                        options={"verify_exp": False})
    assert claims["iss"] == claims["sub"] == "client-7"
    assert claims["aud"] == TOKEN_URL
    assert claims["iat"] == 1_700_000_000
    assert 0 < claims["exp"] - claims["iat"] <= 300
    assert len(claims["jti"]) >= 16
    assert jwt.decode(auth.assertion(), key.public_key(), algorithms=[alg],
                      audience=TOKEN_URL)["jti"] != claims["jti"]  # fresh each time


def test_no_kid_header_without_a_key_id(ec_key):
    assertion = SmartBackendAuth(settings(), pem(ec_key)).assertion()
    assert "kid" not in jwt.get_unverified_header(assertion)


@pytest.mark.parametrize("make", [
    lambda: ec.generate_private_key(ec.SECP256R1()),
    lambda: dsa.generate_private_key(2048),
    lambda: rsa.generate_private_key(public_exponent=65537, key_size=1024),  # noqa: S505 (refused: the point)
], ids=["ec-p256", "dsa", "rsa-1024"])
@pytest.mark.filterwarnings("ignore:DSA is deprecated")
def test_other_keys_are_refused_at_construction_naming_the_file_not_the_key(make):
    key_pem = pem(make())
    with pytest.raises(ConfigError) as caught:
        SmartBackendAuth(settings(), key_pem)
    assert "/etc/formrelay/smart.pem" in str(caught.value)
    assert "PRIVATE KEY" not in str(caught.value)


def test_a_file_that_is_not_a_key_is_refused_without_quoting_it(tmp_path):
    path = tmp_path / "smart.pem"
    path.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot-really-a-key-c2VjcmV0\n"
                     b"-----END PRIVATE KEY-----\n")
    with pytest.raises(ConfigError) as caught:
        SmartBackendAuth.from_settings(settings(smart_private_key_file=str(path)))
    assert str(path) in str(caught.value) and "c2VjcmV0" not in str(caught.value)
    with pytest.raises(ConfigError, match="cannot read"):
        SmartBackendAuth.from_settings(settings(smart_private_key_file=str(tmp_path / "none")))


def test_the_cache_margin_is_ten_percent_at_most_sixty_seconds():
    assert cache_seconds(300) == 270  # 10% (30 s) < 60 s
    assert cache_seconds(600) == 540
    assert cache_seconds(3600) == 3540  # 60 s < 10% (360 s)
    assert cache_seconds(10) == 9
    assert cache_seconds(0) == 0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_token_is_reused_until_its_margin_then_fetched_again_and_invalidate_drops_it(
        monkeypatch, ec_key):
    clock = Clock()
    monkeypatch.setattr(smart_auth.time, "monotonic", clock)
    auth = SmartBackendAuth(settings(), pem(ec_key))
    fetched: list[str] = []

    def fetch() -> smart_auth._Token:
        fetched.append(f"tok-{len(fetched) + 1}")
        return smart_auth._Token(fetched[-1], clock.now + cache_seconds(300))

    monkeypatch.setattr(auth, "_fetch", fetch)
    assert auth.headers() == {"Authorization": "Bearer tok-1"}
    clock.now += 269
    assert auth.headers() == {"Authorization": "Bearer tok-1"}
    clock.now += 1  # 270 s: 30 s before expires_in, fetch anew
    assert auth.headers() == {"Authorization": "Bearer tok-2"}
    auth.invalidate()
    assert auth.headers() == {"Authorization": "Bearer tok-3"}
    assert len(fetched) == 3


def test_workers_share_one_fetch(monkeypatch, ec_key):
    auth = SmartBackendAuth(settings(), pem(ec_key))
    calls, release = [], threading.Event()

    def fetch() -> smart_auth._Token:
        calls.append(1)
        assert release.wait(10)
        return smart_auth._Token("shared", float("inf"))

    monkeypatch.setattr(auth, "_fetch", fetch)
    seen: list[dict[str, str]] = []
    threads = [threading.Thread(target=lambda: seen.append(auth.headers())) for _ in range(8)]
    for thread in threads:
        thread.start()
    wait_until(lambda: calls, timeout=10, what="the first fetch")
    release.set()
    for thread in threads:
        thread.join(10)
    assert len(calls) == 1 and seen == [{"Authorization": "Bearer shared"}] * 8


def test_secrets_are_in_no_repr(ec_key):
    key_pem = pem(ec_key)
    auth = SmartBackendAuth(settings(), key_pem)
    auth._token = smart_auth._Token("tok-SECRET-123", 1.0)
    body = key_pem.decode().splitlines()[1]
    for shown in (repr(auth), str(auth), repr(auth._token), repr(auth.settings)):
        assert "tok-SECRET-123" not in shown and body not in shown
    assert "client-7" in repr(auth)


class Rotating:
    """An Auth whose current token another worker may replace (as SmartBackendAuth's)."""

    def __init__(self) -> None:
        self.current, self.invalidated = "T1", 0

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.current}"}

    def invalidate(self) -> None:
        self.invalidated += 1
        self.current = f"T{int(self.current[1:]) + 1}"


def partner_client(auth: Rotating, answers: dict[str, Any]) -> tuple[PartnerClient, list[str]]:
    client = PartnerClient(PartnerSettings("http://partner.invalid"), pool_size=1, auth=auth)
    sent: list[str] = []

    def send(path, key, headers, body, stream, credentials):
        sent.append(credentials["Authorization"])
        answer = answers[credentials["Authorization"]]
        if isinstance(answer, Exception):
            raise answer
        return answer

    client._send = send
    return client, sent


def test_the_partner_client_retries_a_401_once_with_new_credentials():
    refused = PartnerConfigError("HTTP 401 auth", 401)
    auth = Rotating()
    client, sent = partner_client(auth, {"Bearer T1": refused, "Bearer T2": Accepted("P-1", 201)})
    assert client.create_record(RecordRequest({}, "r", 1), "k").id == "P-1"
    assert sent == ["Bearer T1", "Bearer T2"] and auth.invalidated == 1

    auth = Rotating()
    client, sent = partner_client(auth, {"Bearer T1": refused, "Bearer T2": refused})
    with pytest.raises(PartnerConfigError):  # a second 401 stands
        client.create_record(RecordRequest({}, "r", 1), "k")
    assert sent == ["Bearer T1", "Bearer T2"]


def test_a_token_another_worker_already_replaced_is_not_invalidated_again():
    auth = Rotating()

    def refused_meanwhile_replaced() -> PartnerConfigError:
        auth.current = "T2"  # another worker got its 401 first and fetched T2
        return PartnerConfigError("HTTP 401 auth", 401)

    class Answers(dict[str, Any]):
        def __getitem__(self, key: str) -> Any:
            return refused_meanwhile_replaced() if key == "Bearer T1" else Accepted("P-1", 201)

    client, sent = partner_client(auth, Answers())
    assert client.create_record(RecordRequest({}, "r", 1), "k").id == "P-1"
    assert sent == ["Bearer T1", "Bearer T2"] and auth.invalidated == 0
