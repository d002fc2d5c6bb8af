"""SMART Backend Services against the simulator over real HTTP: keys made here, the JWKS
from their public halves, SmartBackendAuth fetching, caching and refreshing its token."""

from __future__ import annotations

import io
import logging
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from sidecar.errors import Category, PartnerConfigError, RetryableError
from sidecar.partner_client import PartnerClient, PartnerSettings
from sidecar.partner_profile import DocumentUpload, RecordRequest
from sidecar.smart_auth import SmartBackendAuth, SmartSettings

pytest_plugins = ["tests.partner_sim_fixture"]
pytestmark = pytest.mark.sim

CLIENT_ID = "formrelay-test"


def pem(key: Any) -> bytes:
    return bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))


def jwk(key: Any, kid: str) -> dict[str, Any]:
    algorithm = RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else ECAlgorithm
    public: dict[str, Any] = algorithm.to_jwk(key.public_key(), as_dict=True)
    return {**public, "kid": kid, "alg": "RS384" if algorithm is RSAAlgorithm else "ES384"}


@pytest.fixture(scope="module")
def keys() -> dict[str, Any]:
    return {"rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "ec": ec.generate_private_key(ec.SECP384R1()),
            "stranger": ec.generate_private_key(ec.SECP384R1())}  # in no JWKS


@pytest.fixture
def sim(partner_sim_factory, keys):
    return partner_sim_factory(client_id=CLIENT_ID, jwks={"keys": [
        jwk(keys["rsa"], "rsa-1"), jwk(keys["ec"], "ec-1")]})


def auth_for(sim, key: Any, tmp_path, kid: str = "", name: str = "smart.pem",
             **kw: Any) -> SmartBackendAuth:
    path = tmp_path / name
    path.write_bytes(pem(key))
    return SmartBackendAuth.from_settings(SmartSettings(
        CLIENT_ID, f"{sim.url}/token", str(path), kid, connect_timeout=2, read_timeout=5,
        deadline=10, **kw))


def record(n: int) -> RecordRequest:
    return RecordRequest({"first_name": "Jane", "n": n}, f"wpforms:1:{n}", 1)


@pytest.mark.parametrize(("which", "kid"), [("rsa", "rsa-1"), ("ec", "ec-1"), ("ec", "")])
def test_one_token_serves_many_requests(sim, keys, tmp_path, which, kid):
    auth = auth_for(sim, keys[which], tmp_path, kid)
    client = PartnerClient(PartnerSettings(sim.url), pool_size=2, auth=auth)
    ids = [client.create_record(record(n), f"key-{n}").id for n in range(5)]
    assert ids == [f"P-{n:06d}" for n in range(1, 6)]
    assert sim.tokens()["issued"] == 1 and sim.tokens()["refused"] == 0
    client.close()
    auth.close()


def test_without_a_live_token_the_api_answers_401_invalid_token(sim):
    response = requests.post(f"{sim.url}/patients", json={"a": 1},
                             headers={"Idempotency-Key": "k", "Authorization": "Bearer made-up"},
                             timeout=5)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert requests.get(sim.url, timeout=5).status_code == 401


def test_after_the_tokens_expire_a_401_then_invalidate_and_one_retry_succeeds(
        sim, keys, tmp_path):
    auth = auth_for(sim, keys["rsa"], tmp_path, "rsa-1")
    url = f"{sim.url}/patients"

    def post(n: int) -> requests.Response:
        return requests.post(url, json={"n": n}, timeout=5,
                             headers={"Idempotency-Key": f"k{n}", **auth.headers()})

    assert post(1).status_code == 201
    assert sim.expire_tokens() == 1
    refused = post(2)
    assert refused.status_code == 401  # the cached token is dead: the partner client's cue
    auth.invalidate()
    assert post(2).status_code == 201
    assert sim.tokens()["issued"] == 2 and sim.tokens()["expired_by_control"] == 1


def test_the_partner_client_refreshes_on_401_and_retries_once(sim, keys, tmp_path):
    auth = auth_for(sim, keys["ec"], tmp_path, "ec-1")
    client = PartnerClient(PartnerSettings(sim.url), pool_size=2, auth=auth)
    assert client.create_record(record(1), "key-1").id == "P-000001"
    sim.expire_tokens()
    assert client.create_record(record(2), "key-2").id == "P-000002"
    assert sim.tokens()["issued"] == 2
    assert sim.stats()["requests_by_status"] == {"200": 2, "201": 2, "401": 1}

    # an upload's body is spent by the refused attempt: retryable, the next one goes through
    sim.expire_tokens()
    data = b"%PDF-1.4 scan"
    upload = DocumentUpload(io.BytesIO(data), "scan.pdf", "application/pdf", len(data))
    with pytest.raises(RetryableError) as caught:
        client.upload_document("P-000001", upload, "doc-1")
    assert caught.value.status == 401 and caught.value.category is Category.AUTH
    upload = DocumentUpload(io.BytesIO(data), "scan.pdf", "application/pdf", len(data))
    assert client.upload_document("P-000001", upload, "doc-1").id == "D-000001"
    assert sim.tokens()["issued"] == 3
    client.close()


def test_a_second_401_is_a_configuration_error(sim, keys, tmp_path):
    auth = auth_for(sim, keys["ec"], tmp_path, "ec-1")
    client = PartnerClient(PartnerSettings(sim.url), pool_size=2, auth=auth)
    sim.script({"kind": "record", "status": 401}, {"kind": "record", "status": 401})
    with pytest.raises(PartnerConfigError) as caught:
        client.create_record(record(1), "key-1")
    assert caught.value.status == 401 and sim.tokens()["issued"] == 2
    client.close()


def test_a_key_not_in_the_jwks_is_invalid_client_and_no_secret_is_shown(
        sim, keys, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    good = auth_for(sim, keys["ec"], tmp_path, "ec-1", name="good.pem")
    token = good.headers()["Authorization"].removeprefix("Bearer ")
    stranger = auth_for(sim, keys["stranger"], tmp_path, "ec-1")
    client = PartnerClient(PartnerSettings(sim.url), pool_size=1, auth=stranger)
    with pytest.raises(PartnerConfigError) as caught:
        client.create_record(record(1), "key-1")
    message = str(caught.value)
    assert "invalid_client" in message and caught.value.category is Category.AUTH
    assert "no key of the JWKS" not in message  # error_description stays out
    key_body = "".join(pem(keys["stranger"]).decode().splitlines()[1:-1])
    logged = caplog.text + message + repr(caught.value) + caught.value.partner_text
    for secret in (key_body[:40], key_body[-40:], token):
        assert secret not in logged
    assert "eyJ" not in logged  # no JWT (assertion) either
    assert "token 200" in caplog.text and "refused=invalid_client" in caplog.text  # it logs
    assert sim.tokens()["refused_by_error"] == {"invalid_client": 1}
    assert sim.stats()["records_created"] == 0


def test_scopes_the_partner_does_not_grant_are_invalid_scope(sim, keys, tmp_path):
    auth = auth_for(sim, keys["rsa"], tmp_path, "rsa-1", smart_scopes="patient/*.read")
    with pytest.raises(PartnerConfigError, match="invalid_scope"):
        auth.headers()


@pytest.mark.parametrize("fault", [{"status": 503}, {"status": 429, "retry_after": 7}])
def test_a_token_endpoint_that_is_down_is_retryable(sim, keys, tmp_path, fault):
    auth = auth_for(sim, keys["rsa"], tmp_path, "rsa-1")
    sim.script({"kind": "token", **fault})
    with pytest.raises(RetryableError) as caught:
        auth.headers()
    assert caught.value.status == fault["status"]
    assert caught.value.retry_after == fault.get("retry_after")
    assert auth.headers()["Authorization"].startswith("Bearer ")  # the next try gets one


def test_an_unreachable_token_endpoint_is_retryable(keys, tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    path = tmp_path / "k.pem"
    path.write_bytes(pem(keys["ec"]))
    auth = SmartBackendAuth.from_settings(SmartSettings(
        CLIENT_ID, f"http://127.0.0.1:{port}/token", str(path), connect_timeout=2))
    with pytest.raises(RetryableError) as caught:
        auth.headers()
    assert caught.value.category is Category.NETWORK


def test_an_answer_without_access_token_is_a_retryable_bad_response(sim, keys, tmp_path):
    auth = auth_for(sim, keys["rsa"], tmp_path, "rsa-1")
    sim.script({"kind": "token", "status": 200, "body": {"token_type": "bearer"}})
    with pytest.raises(RetryableError) as caught:
        auth.headers()
    assert caught.value.category is Category.BAD_RESPONSE


def test_the_simulator_checks_aud_jti_and_the_client_id(sim, keys, tmp_path):
    token_url = f"{sim.url}/token"

    def ask(assertion: str) -> requests.Response:
        return requests.post(token_url, timeout=5, data={
            "grant_type": "client_credentials", "scope": "system/Patient.write",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion})

    auth = auth_for(sim, keys["rsa"], tmp_path, "rsa-1")
    assertion = auth.assertion()
    first = ask(assertion)
    assert first.status_code == 200 and first.headers["Cache-Control"] == "no-store"
    assert set(first.json()) == {"access_token", "token_type", "expires_in", "scope"}
    assert first.json()["expires_in"] == 300
    assert ask(assertion).json()["error"] == "invalid_client"  # jti reused
    elsewhere = auth_for(sim, keys["rsa"], tmp_path, "rsa-1").settings
    other_aud = SmartBackendAuth(
        SmartSettings(CLIENT_ID, "https://elsewhere.test/token", elsewhere.smart_private_key_file,
                      "rsa-1"), pem(keys["rsa"]))
    assert ask(other_aud.assertion()).json()["error"] == "invalid_client"
    other_client = SmartBackendAuth(
        SmartSettings("someone-else", token_url, "k.pem", "rsa-1"), pem(keys["rsa"]))
    assert ask(other_client.assertion()).json()["error"] == "invalid_client"
    now = jwt.decode(assertion, options={"verify_signature": False})["iat"]
    too_long = jwt.encode({"iss": CLIENT_ID, "sub": CLIENT_ID, "aud": token_url, "iat": now,
                           "exp": now + 3600, "jti": "long"}, keys["rsa"], algorithm="RS384")
    assert ask(too_long).json()["error"] == "invalid_client"
    rs256 = jwt.encode({"iss": CLIENT_ID, "sub": CLIENT_ID, "aud": token_url, "iat": now,
                        "exp": now + 60, "jti": "alg"}, keys["rsa"], algorithm="RS256")
    assert ask(rs256).json()["error"] == "invalid_client"
    assert sim.tokens()["issued"] == 1 and sim.tokens()["refused"] == 5


def test_the_static_token_still_works_and_without_jwks_there_is_no_token_endpoint(
        partner_sim_factory):
    plain = partner_sim_factory(token="t0k")
    assert requests.post(f"{plain.url}/token", timeout=5).status_code == 404
    client = PartnerClient(PartnerSettings(plain.url, token="t0k"), pool_size=1)
    assert client.create_record(record(1), "key-1").id == "P-000001"
    client.close()


def test_a_bad_jwks_knob_is_refused(partner_sim_factory, keys):
    private = {**jwk(keys["ec"], "x"), "d": "c2VjcmV0"}
    with pytest.raises(ValueError, match="not an RSA or EC public JWK"):
        partner_sim_factory(jwks={"keys": [private]})
    with pytest.raises(ValueError, match="JWK Set"):
        partner_sim_factory(jwks={"keys": []})
