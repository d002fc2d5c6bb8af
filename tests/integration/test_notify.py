"""POST /v1/notify over real HTTP: signed, fresh, once, well-formed, small; else nothing rings."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator

import pytest
import requests
from waitress.server import create_server

from sidecar.signing import MemoryReplayGuard, RedisReplayGuard, sign
from sidecar.states import Event, EventKind
from sidecar.store import NewJob, Store
from sidecar.web import create_app
from tests.conftest import wait_until

pytestmark = pytest.mark.db

SECRET = "notify-test-secret-0123456789"


class Server:
    def __init__(self, store: Store, replay) -> None:
        self.rings: list[tuple[int, int]] = []
        app = create_app(store, SECRET, lambda job, prio: self.rings.append((job, prio)), replay)
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
            return requests.get(self.url + "/healthz", timeout=1).ok
        except requests.RequestException:
            return False

    def notify(self, body: bytes, timestamp: int | None = None, signature: str | None = None,
               secret: str = SECRET, headers: dict | None = None) -> requests.Response:
        ts = int(time.time()) if timestamp is None else timestamp
        sent = {"Content-Type": "application/json", "X-FormRelay-Timestamp": str(ts),
                "X-FormRelay-Signature": signature or sign(secret, ts, body)}
        return requests.post(self.url + "/v1/notify", data=body,
                             headers={**sent, **(headers or {})}, timeout=5)


@pytest.fixture
def server(store) -> Iterator[Server]:
    running = Server(store, MemoryReplayGuard())
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
                                  "malformed-time"])
def test_unsigned_or_stale_requests_are_refused(server, job, case):
    now = int(time.time())
    kwargs = {
        "missing": {"headers": {"X-FormRelay-Signature": ""}},
        "bad": {"signature": "sha256=" + "0" * 64},
        "other-secret": {"secret": "someone-else-secret-123"},
        "stale": {"timestamp": now - 301},
        "future": {"timestamp": now + 301},
        "malformed-time": {"headers": {"X-FormRelay-Timestamp": "soon"}},
    }[case]
    resp = server.notify(body(job.id), **kwargs)
    assert resp.status_code == 401
    assert server.rings == []


def test_a_replayed_request_is_refused(server, job):
    ts = int(time.time())
    assert server.notify(body(job.id), timestamp=ts).status_code == 202
    again = server.notify(body(job.id), timestamp=ts)
    assert again.status_code == 401 and again.json()["error"] == "replayed request"
    assert server.rings == [(job.id, 3)]


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


@pytest.mark.redis
def test_with_redis_a_replay_is_refused_by_any_web_process(store, job):
    namespace = f"formrelay-test-{secrets.token_hex(4)}"
    first = Server(store, RedisReplayGuard("redis://127.0.0.1:6379/0", namespace))
    second = Server(store, RedisReplayGuard("redis://127.0.0.1:6379/0", namespace))
    try:
        ts = int(time.time())
        assert first.notify(body(job.id), timestamp=ts).status_code == 202
        assert second.notify(body(job.id), timestamp=ts).status_code == 401
        assert first.rings == [(job.id, 3)] and second.rings == []
    finally:
        first.close()
        second.close()
