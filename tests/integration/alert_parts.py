"""Real receivers for the alert tests: an SMTP server (aiosmtpd) with STARTTLS, implicit
TLS and AUTH on a self-signed certificate, and an HTTP receiver that can fail or hang."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from sidecar.store import Store
from tests.conftest import PREFIX

SMTP_USER, SMTP_PASSWORD = "alerts", "s3cret-smtp-password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (openssl CLI), valid for a day."""
    cert, key = directory / "smtp.crt", directory / "smtp.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def client_context(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


@dataclass
class Inbox:
    """aiosmtpd's handler: keeps each message with its envelope and whether TLS was on."""

    messages: list[tuple[Envelope, Message, bool]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.lock:
            tls = session.ssl is not None or (  # STARTTLS, or implicit TLS
                server.transport is not None
                and server.transport.get_extra_info("sslcontext") is not None)
            content = envelope.content if isinstance(envelope.content, bytes) else b""
            self.messages.append((envelope, message_from_bytes(content), tls))
        return "250 OK"

    def all(self) -> list[Message]:
        with self.lock:
            return [m for _, m, _ in self.messages]


def authenticate(server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                 data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        SMTP_USER.encode(), SMTP_PASSWORD.encode())
    return AuthResult(success=ok)


class SmtpServer:
    """`mode`: none (plain), starttls (STARTTLS + AUTH required) or tls (implicit + AUTH)."""

    def __init__(self, mode: str, cert: tuple[Path, Path] | None = None) -> None:
        self.inbox, self.port, self.mode = Inbox(), free_port(), mode
        kwargs: dict[str, Any] = {}
        tls = None
        if cert is not None:
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(str(cert[0]), str(cert[1]))
        if mode == "starttls":
            kwargs.update(tls_context=tls, require_starttls=True, auth_required=True,
                          auth_require_tls=True, authenticator=authenticate)
        elif mode == "tls":
            kwargs.update(ssl_context=tls, auth_required=True, auth_require_tls=False,
                          authenticator=authenticate)
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port,
                                     **kwargs)

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """An HTTP receiver in a thread: records every POST; answers 500 to the first
    `fail_first`, and holds requests while `hang` is set (until released or stopped)."""

    def __init__(self, fail_first: int = 0, hang: bool = False) -> None:
        self.received: list[Received] = []
        self.fail_first, self.lock = fail_first, threading.Lock()
        self.arrived = 0  # requests read, answered or not (a hanging one included)
        self.release = threading.Event()
        if not hang:
            self.release.set()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer.lock:
                    outer.arrived += 1
                outer.release.wait(60)
                with outer.lock:
                    outer.received.append(Received(self.path, dict(self.headers), body))
                    failing = len(outer.received) <= outer.fail_first
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"no" if failing else b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def bodies(self) -> list[Any]:
        with self.lock:
            return [r.json() for r in self.received]


def clean_incidents(store: Store) -> Store:
    """No incident, message or worker row from an earlier test (the alerts go with them)."""
    with store.db.transaction() as cur:
        cur.execute(f"DELETE FROM {PREFIX}formrelay_incidents")
        cur.execute(f"DELETE FROM {PREFIX}formrelay_workers")
    return store
