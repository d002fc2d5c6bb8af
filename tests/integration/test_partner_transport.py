"""The partner client's transport over real sockets: TLS trust (refused, and the CA bundle
variables requests honours), the environment's proxy and its bypass, a refused connect,
a redirect, a silent partner, a URL that cannot be parsed, and a refusal's text in the
charset the partner declared."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sidecar.errors import Category, PartnerConfigError, PermanentError, RetryableError
from sidecar.partner_client import PartnerClient, PartnerSettings
from sidecar.partner_profile import RecordRequest
from tests.integration.alert_parts import free_port, self_signed

pytestmark = pytest.mark.sim

RECORD = RecordRequest({"a": 1}, "wpforms:1:1", 1)



class Partner(ThreadingHTTPServer):
    """Answers every POST with `answer` (status, content type, body); keeps each request
    line it got (a proxy gets the absolute URL)."""

    daemon_threads = True

    def __init__(self, answer: tuple[int, str, bytes] = (201, "application/json",
                                                         b'{"id": "p-1"}')) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.answer, self.seen = answer, list[str]()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: Partner

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.seen.append(self.path)
        status, content_type, body = self.server.answer
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if status in (301, 302):
            self.send_header("Location", "http://127.0.0.1:1/elsewhere")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def serving(partner: Partner) -> Iterator[Partner]:
    thread = threading.Thread(target=partner.serve_forever, daemon=True)
    thread.start()
    try:
        yield partner
    finally:
        partner.shutdown()
        partner.server_close()


@pytest.fixture
def partner() -> Iterator[Partner]:
    yield from serving(Partner())


@pytest.fixture
def tls_partner(tmp_path: Path) -> Iterator[tuple[Partner, Path]]:
    cert, key = self_signed(tmp_path)
    server = Partner()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    for running in serving(server):
        yield running, cert


def client(base_url: str, **kw: float) -> PartnerClient:
    return PartnerClient(PartnerSettings(base_url + "/api", token="t0k", **kw))


def test_an_untrusted_certificate_is_a_tls_configuration_error(tls_partner, monkeypatch):
    server, _ = tls_partner
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    url = server.url.replace("http://", "https://")
    with pytest.raises(PartnerConfigError) as caught:
        client(url).create_record(RECORD, "k1")
    assert caught.value.category == Category.TLS and not server.seen


def test_the_ca_bundle_variables_are_trusted_as_requests_trusts_them(tls_partner, monkeypatch):
    server, cert = tls_partner
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    accepted = client(server.url.replace("http://", "https://")).create_record(RECORD, "k2")
    assert (accepted.id, accepted.status) == ("p-1", 201)
    assert server.seen == ["/api/patients"]


def test_the_environments_proxy_is_used_unless_the_host_is_bypassed(partner, monkeypatch):
    """The proxy gets the absolute URL; NO_PROXY for the partner's host goes direct."""
    partner_url = f"http://partner.invalid:{free_port()}"
    for name in ("no_proxy", "NO_PROXY", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", partner.url)
    monkeypatch.setenv("http_proxy", partner.url)
    assert client(partner_url).create_record(RECORD, "k3").id == "p-1"
    assert partner.seen == [f"{partner_url}/api/patients"]
    monkeypatch.setenv("no_proxy", "partner.invalid")
    monkeypatch.setenv("NO_PROXY", "partner.invalid")
    with pytest.raises(RetryableError) as caught:  # straight to a name that does not resolve
        client(partner_url).create_record(RECORD, "k4")
    assert caught.value.category == Category.NETWORK and len(partner.seen) == 1


def test_a_refused_connect_is_retryable():
    with pytest.raises(RetryableError) as caught:
        client(f"http://127.0.0.1:{free_port()}").create_record(RECORD, "k5")
    assert caught.value.category == Category.NETWORK


def test_a_redirect_is_not_followed_and_names_the_url(partner):
    partner.answer = (302, "text/plain", b"")
    with pytest.raises(PartnerConfigError, match="FORMRELAY_PARTNER_URL"):
        client(partner.url).create_record(RECORD, "k6")
    assert partner.seen == ["/api/patients"]


def test_a_silent_partner_times_out():
    """Accepted, never answered: the read timeout ends it."""
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    try:
        port = listener.getsockname()[1]
        with pytest.raises(RetryableError) as caught:
            client(f"http://127.0.0.1:{port}", read_timeout=0.3).create_record(RECORD, "k7")
        assert caught.value.category == Category.TIMEOUT
    finally:
        listener.close()


def test_a_url_that_cannot_be_parsed_is_a_configuration_error():
    with pytest.raises(PartnerConfigError) as caught:
        client("http://127.0.0.1:99999").create_record(RECORD, "k8")
    assert caught.value.category == Category.BAD_URL


def test_a_refusals_text_is_read_in_the_charset_it_declares(partner):
    partner.answer = (422, "text/plain; charset=iso-8859-1", "Prénom manquant".encode("latin-1"))
    with pytest.raises(PermanentError) as caught:
        client(partner.url).create_record(RECORD, "k9")
    assert caught.value.status == 422 and caught.value.partner_text == "Prénom manquant"
    partner.answer = (422, "application/json", json.dumps({"error": "bad date"}).encode())
    with pytest.raises(PermanentError) as caught:
        client(partner.url).create_record(RECORD, "k10")
    assert caught.value.partner_text == "bad date"
