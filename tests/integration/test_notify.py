"""POST /v1/notify over real HTTP: signed, fresh, once, well-formed, small; else nothing rings.

"Once" is per nonce, in MySQL: shared by every `formrelay web` process and kept
across restarts (issue 11, item 4).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from waitress.server import create_server

from sidecar.doorbell import Recorded
from sidecar.signing import sign, sign_admin
from sidecar.states import Event, EventKind
from sidecar.store import DbSettings, NewJob, Store
from sidecar.web import create_app
from tests.conftest import TEST_DB_HOST, TEST_DB_PASSWORD, TEST_DB_USER, wait_until
from tests.integration.test_cli import formrelay_bin, free_port

pytestmark = pytest.mark.db

SECRET = "notify-test-secret-0123456789"


class Server:
    @property
    def rings(self) -> list[tuple[int, int]]:
        """(job id, priority) of each job rung, in order."""
        return [(i, p) for step, i, p, _ in self.doorbell.rings if step == "record"]

    def __init__(self, store: Store) -> None:
        self.doorbell = Recorded()
        app = create_app(store, SECRET, self.doorbell)
        self.server = create_server(app, host="127.0.0.1", port=0, threads=4)
        self.url = f"http://127.0.0.1:{self.server.effective_port}"
        self.closing = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        wait_until(lambda: self._up(), 10, "the sidecar's HTTP server")

    def _run(self) -> None:
        try:
            self.server.run()
        except OSError:
            if not self.closing.is_set():  # closing the socket wakes select() with EBADF
                raise

    def close(self) -> None:
        self.closing.set()
        self.server.close()

    def _up(self) -> bool:
        try:
            return requests.get(self.url + "/readyz", timeout=1).ok
        except requests.RequestException:
            return False

    def notify(self, body: bytes, timestamp: int | None = None, signature: str | None = None,
               secret: str = SECRET, headers: dict | None = None,
               nonce: str | None = None) -> requests.Response:
        return post_notify(self.url, body, timestamp, signature, secret, headers, nonce)


def post_notify(url: str, body: bytes, timestamp: int | None = None,
                signature: str | None = None, secret: str = SECRET,
                headers: dict | None = None, nonce: str | None = None) -> requests.Response:
    """A notify signed as the plugin signs it (a fresh nonce unless one is given)."""
    ts = int(time.time()) if timestamp is None else timestamp
    nonce = secrets.token_hex(16) if nonce is None else nonce
    sent = {"Content-Type": "application/json", "X-FormRelay-Timestamp": str(ts),
            "X-FormRelay-Nonce": nonce,
            "X-FormRelay-Signature": signature or sign(secret, ts, nonce, body)}
    return requests.post(url + "/v1/notify", data=body, headers={**sent, **(headers or {})},
                         timeout=10)


@pytest.fixture
def server(store) -> Iterator[Server]:
    running = Server(store)
    yield running
    running.close()


@pytest.fixture
def job(store):
    created, _ = store.enqueue(NewJob("wpforms:12:1", 12, 1, "{}", priority=3))
    return created


def body(job_id) -> bytes:
    return json.dumps({"job_id": job_id}).encode()


def test_a_signed_notify_rings_the_job(server, job):
    resp = server.notify(body(job.id))
    assert resp.status_code == 202
    assert resp.json() == {"job_id": job.id, "status": "pending"}
    assert server.rings == [(job.id, 3)]


@pytest.mark.parametrize("case", ["missing", "bad", "other-secret", "stale", "future",
                                  "malformed-time", "no-nonce", "malformed-nonce",
                                  "other-nonce"])
def test_unsigned_or_stale_requests_are_refused(server, job, case):
    now = int(time.time())
    kwargs = {
        "missing": {"headers": {"X-FormRelay-Signature": ""}},
        "bad": {"signature": "sha256=" + "0" * 64},
        "other-secret": {"secret": "someone-else-secret-123"},
        "stale": {"timestamp": now - 301},
        "future": {"timestamp": now + 360},  # past the 300 s window even a minute on
        "malformed-time": {"headers": {"X-FormRelay-Timestamp": "soon"}},
        "no-nonce": {"headers": {"X-FormRelay-Nonce": ""}},
        "malformed-nonce": {"headers": {"X-FormRelay-Nonce": "0" * 31 + "G"}},
        "other-nonce": {"headers": {"X-FormRelay-Nonce": "0" * 32}},  # not the one signed
    }[case]
    resp = server.notify(body(job.id), **kwargs)
    assert resp.status_code == 401
    assert server.rings == []


def test_a_replayed_request_is_refused(server, job):
    ts, nonce = int(time.time()), secrets.token_hex(16)
    assert server.notify(body(job.id), timestamp=ts, nonce=nonce).status_code == 202
    again = server.notify(body(job.id), timestamp=ts, nonce=nonce)
    assert again.status_code == 401 and again.json()["error"] == "replayed request"
    assert server.rings == [(job.id, 3)]


def test_two_notifies_of_one_job_in_one_second_both_ring(server, job):
    ts = int(time.time())
    assert server.notify(body(job.id), timestamp=ts).status_code == 202
    assert server.notify(body(job.id), timestamp=ts).status_code == 202  # another nonce
    assert server.rings == [(job.id, 3), (job.id, 3)]


def test_a_message_shaped_like_an_admin_request_is_refused_as_unsigned(server, job):
    """The previous format signed "<ts>.<body>" for notify and "<ts>.<METHOD>.<path>.<user>.
    <body>" for admin: an admin signature passed the notify check (then 400). Now 401."""
    ts = int(time.time())
    shaped = b"POST./admin/v1/resume.alice.{}"
    old = hmac.new(SECRET.encode(), f"{ts}.".encode() + shaped, hashlib.sha256).hexdigest()
    resp = server.notify(shaped, timestamp=ts, signature="sha256=" + old)
    assert resp.status_code == 401 and resp.json() == {"error": "bad signature"}
    nonce = secrets.token_hex(16)
    admin = sign_admin(SECRET, ts, nonce, "POST", "/v1/notify", "alice", body(job.id))
    resp = server.notify(body(job.id), timestamp=ts, nonce=nonce, signature=admin)
    assert resp.status_code == 401 and resp.json() == {"error": "bad signature"}
    assert server.rings == []


def test_a_notify_in_the_previous_format_is_refused(server, job):
    ts = int(time.time())
    old = hmac.new(SECRET.encode(), f"{ts}.".encode() + body(job.id), hashlib.sha256)
    resp = requests.post(server.url + "/v1/notify", data=body(job.id), timeout=10, headers={
        "X-FormRelay-Timestamp": str(ts), "X-FormRelay-Signature": "sha256=" + old.hexdigest()})
    assert resp.status_code == 401 and "upgrade the FormRelay Bridge" in resp.json()["error"]
    assert server.rings == []


@pytest.mark.parametrize("payload", [b"", b"garbage", b"[1]", b'{"job_id": "7"}',
                                     b'{"job_id": true}', b'{"job_id": -1}',
                                     b'{"job_id": 1, "extra": 2}', b'{"job": 1}'])
def test_a_signed_but_malformed_body_is_refused(server, job, payload):
    assert server.notify(payload).status_code == 400
    assert server.rings == []


def test_an_oversized_body_is_refused_before_anything_else(server, job):
    big = json.dumps({"job_id": job.id, "pad": "x" * 5000}).encode()
    assert server.notify(big).status_code == 413
    assert server.rings == []


def test_an_unknown_job_is_404_and_a_finished_one_is_not_rung(server, store, job):
    assert server.notify(body(10**9)).status_code == 404
    store.transition_job(job.id, Event(EventKind.CANCEL))
    resp = server.notify(body(job.id))
    assert resp.status_code == 202 and resp.json()["status"] == "cancelled"
    assert server.rings == []


# ---- real `formrelay web` processes on one database -------------------------------------

class Web:
    """One `formrelay web` process on the test database (its own port and data dir)."""

    def __init__(self, settings: DbSettings, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.listen = f"127.0.0.1:{free_port()}"
        self.url = f"http://{self.listen}"
        env = {"PATH": os.environ["PATH"], "WORDPRESS_DB_HOST": TEST_DB_HOST,
               "WORDPRESS_DB_USER": TEST_DB_USER, "WORDPRESS_DB_PASSWORD": TEST_DB_PASSWORD,
               "WORDPRESS_DB_NAME": settings.database, "FORMRELAY_SHARED_SECRET": SECRET,
               "FORMRELAY_PARTNER_URL": "http://127.0.0.1:9/api",
               "FORMRELAY_UPLOADS_DIR": str(data_dir), "FORMRELAY_DATA_DIR": str(data_dir),
               "FORMRELAY_LISTEN": self.listen}
        self.proc = subprocess.Popen([formrelay_bin(), "web"], env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        wait_until(self._up, 60, f"formrelay web on {self.listen}")

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError("formrelay web exited: " + self.stop()[-2000:])
        try:
            return requests.get(self.url + "/readyz", timeout=1).ok
        except requests.RequestException:
            return False

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.stdout.read() if self.proc.stdout else ""


@pytest.fixture
def webs(migrated_db, tmp_path) -> Iterator[list[Web]]:
    started: list[Web] = []
    yield started
    for web in started:
        web.stop()


def admin_post(url: str, path: str, nonce: str, ts: int) -> requests.Response:
    headers = {"X-FormRelay-Timestamp": str(ts), "X-FormRelay-Nonce": nonce,
               "X-FormRelay-User": "alice", "Content-Type": "application/json",
               "X-FormRelay-Signature": sign_admin(SECRET, ts, nonce, "POST", path, "alice",
                                                   b"{}")}
    return requests.post(url + path, data=b"{}", headers=headers, timeout=10)


@pytest.mark.slow
def test_one_signed_request_is_accepted_once_by_two_web_processes_and_after_a_restart(
        store, job, webs, migrated_db, tmp_path):
    first = Web(migrated_db, tmp_path / "a")
    webs.append(first)
    second = Web(migrated_db, tmp_path / "b")
    webs.append(second)
    ts, nonce = int(time.time()), secrets.token_hex(16)
    assert post_notify(first.url, body(job.id), ts, nonce=nonce).status_code == 202
    replayed = post_notify(second.url, body(job.id), ts, nonce=nonce)
    assert replayed.status_code == 401 and replayed.json()["error"] == "replayed request"

    admin_nonce = secrets.token_hex(16)
    store.transition_job(job.id, Event(EventKind.CANCEL))
    assert admin_post(second.url, f"/admin/v1/jobs/{job.id}/retry", admin_nonce,
                      ts).status_code == 200
    store.transition_job(job.id, Event(EventKind.CANCEL))
    again = admin_post(first.url, f"/admin/v1/jobs/{job.id}/retry", admin_nonce, ts)
    assert again.status_code == 401 and again.json()["error"] == "replayed request"
    assert str(store.get_job(job.id).status) == "cancelled"  # type: ignore[union-attr]

    output = first.stop()
    assert SECRET not in output
    restarted = Web(migrated_db, tmp_path / "a")
    webs.append(restarted)
    after = post_notify(restarted.url, body(job.id), ts, nonce=nonce)
    assert after.status_code == 401 and after.json()["error"] == "replayed request"
    assert admin_post(restarted.url, f"/admin/v1/jobs/{job.id}/retry", admin_nonce,
                      ts).status_code == 401
    assert str(store.get_job(job.id).status) == "cancelled"  # type: ignore[union-attr]


def test_expired_nonces_are_purged_and_live_ones_kept(store):
    old, live = secrets.token_hex(16), secrets.token_hex(16)
    assert store.first_use("FR1-notify", old, ttl=-5)  # already expired
    assert store.first_use("FR1-notify", live)
    store.purge_nonces()  # (an insert may have purged it already: 1 in PURGE_EVERY does)
    assert store.first_use("FR1-notify", old)  # gone: its window has ended long ago
    assert not store.first_use("FR1-notify", live)
    assert store.first_use("FR1-admin", live)  # one purpose's nonce is not the other's
