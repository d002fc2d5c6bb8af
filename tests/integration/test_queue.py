"""The queue backends: embedded SQLite by default, Redis when configured; both by priority,
both signed: a message not signed with the shared secret's queue key is never unpickled."""

from __future__ import annotations

import logging
import os
import pickle
import secrets
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import redis
from huey.consumer import Worker

from sidecar import config
from sidecar.queue import build_huey, describe
from sidecar.queue_signing import SignedRedisQueue, SignedSqliteQueue
from tests.conftest import QUEUE_SECRET

BASE = {"WORDPRESS_DB_USER": "u", "WORDPRESS_DB_NAME": "d",
        "FORMRELAY_SHARED_SECRET": QUEUE_SECRET}
REDIS = "redis://127.0.0.1:6379/0"


def deliveries_in_order(huey) -> list[str]:
    @huey.task()
    def deliver(label: str) -> str:
        return label

    for label, priority in [("low", 1), ("high", 9), ("mid", 5), ("high-2", 9)]:
        huey.enqueue(deliver.s(label, priority=priority))
    order = []
    while (task := huey.dequeue()) is not None:
        order.append(task.args[0])
    return order


class Touch:
    """Unpickling this runs os.system: what an attacker with write access to the queue sends."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def forged_messages(marker: Path) -> list[bytes]:
    """A bare pickle, and one with a made-up signature in the signed format."""
    bare = pickle.dumps(Touch(marker))
    return [bare, bare + b":" + b"0" * 64]


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def queue(request, tmp_path) -> Iterator:
    env = BASE | {"FORMRELAY_DATA_DIR": str(tmp_path / "data")}
    if request.param == "redis":
        env["FORMRELAY_REDIS_URL"] = REDIS
    huey = build_huey(config.load("migrate", env), name=f"formrelay-test-{secrets.token_hex(4)}")
    try:
        yield huey
    finally:
        huey.storage.flush_all()


@pytest.mark.unit
def test_without_redis_the_queue_is_sqlite_under_the_data_dir(tmp_path):
    cfg = config.load("migrate", BASE | {"FORMRELAY_DATA_DIR": str(tmp_path / "data")})
    huey = build_huey(cfg)
    assert isinstance(huey, SignedSqliteQueue)
    assert describe(huey) == f"sqlite ({tmp_path / 'data' / 'queue.sqlite3'}), signed"
    assert deliveries_in_order(huey) == ["high", "high-2", "mid", "low"]


@pytest.mark.redis
def test_with_redis_the_queue_is_priority_redis():
    cfg = config.load("migrate", BASE | {"FORMRELAY_REDIS_URL": REDIS})
    huey = build_huey(cfg, name=f"formrelay-test-{secrets.token_hex(4)}")
    try:
        assert isinstance(huey, SignedRedisQueue)
        assert describe(huey) == "redis redis://127.0.0.1:6379/0 (no password), signed"
        assert deliveries_in_order(huey) == ["high", "high-2", "mid", "low"]
    finally:
        huey.storage.flush_all()


@pytest.mark.unit
def test_describe_never_shows_redis_credentials():
    for url in ("redis://:hunter2-pw@redis:6379/0", "rediss://fr-user:hunter2-pw@redis:6380/1"):
        cfg = config.load("migrate", BASE | {"FORMRELAY_REDIS_URL": url})
        shown = describe(build_huey(cfg))  # builds a client; connects only on first use
        assert "hunter2" not in shown and "fr-user" not in shown, shown
        assert "@" not in shown and "(with password)" in shown


@pytest.mark.unit
def test_the_queue_needs_the_shared_secret(tmp_path):
    cfg = config.load("migrate", {"WORDPRESS_DB_USER": "u", "WORDPRESS_DB_NAME": "d",
                                  "FORMRELAY_DATA_DIR": str(tmp_path)})
    with pytest.raises(config.ConfigError, match=r"FORMRELAY_SHARED_SECRET .*signs the queue"):
        build_huey(cfg)


def test_a_forged_message_is_refused_unread_and_logged_and_real_tasks_still_run(
        queue, tmp_path, caplog):
    ran: list[int] = []

    @queue.task(name="formrelay.deliver_record")
    def deliver_record(job_id: int) -> None:
        ran.append(job_id)

    marker = tmp_path / "forged-pickle-ran"
    for forged in forged_messages(marker):  # written straight into the queue's storage,
        queue.storage.enqueue(forged, 100)  # ahead of the real task (higher priority)
    deliver_record(7, priority=1)

    worker = Worker(queue, threading.Event(), 0.1, 0.1, 1)  # Huey's consumer loop
    caplog.set_level(logging.INFO)
    worker.loop()

    assert ran == [7]  # the real task ran in the same loop: no back-off, no crash
    assert not marker.exists()
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused) == 2 and all("without a valid signature" in m for m in refused)
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.CRITICAL]
    assert str(marker) not in caplog.text  # the message's bytes are not logged
    assert queue.dequeue() is None  # the forged messages are gone, not retried


def test_a_forged_scheduled_message_is_refused(queue, tmp_path, caplog):
    marker = tmp_path / "forged-scheduled-ran"
    for forged in forged_messages(marker):
        queue.storage.add_to_schedule(forged, datetime(2000, 1, 1))
    caplog.set_level(logging.INFO)
    assert queue.read_schedule(datetime.now() + timedelta(days=1)) == []
    assert not marker.exists()
    assert caplog.text.count("refused a scheduled message without a valid signature") == 2


def test_a_message_signed_with_another_secret_is_refused(queue, tmp_path, caplog):
    other = build_huey(config.load("migrate", BASE | {
        "FORMRELAY_SHARED_SECRET": "another-secret-0123456789",
        "FORMRELAY_DATA_DIR": str(tmp_path / "other")}))

    @other.task(name="formrelay.deliver_record")
    def deliver_record(job_id: int) -> None:
        raise AssertionError("must not run")

    queue.storage.enqueue(other.serialize_task(deliver_record.s(1)), 1)
    caplog.set_level(logging.INFO)
    assert queue.dequeue() is None
    assert "refused a queued message" in caplog.text


@pytest.mark.redis
def test_redis_with_a_password_url(tmp_path):
    """A Redis that requires a password, reached with redis://:password@ and user:password@."""
    admin = redis.Redis.from_url(REDIS)
    user, password = f"fr-test-{secrets.token_hex(3)}", secrets.token_hex(12)
    admin.acl_setuser(user, enabled=True, passwords=[f"+{password}"], keys=["*"],
                      commands=["+@all"])
    try:
        cfg = config.load("migrate", BASE | {
            "FORMRELAY_REDIS_URL": f"redis://{user}:{password}@127.0.0.1:6379/0"})
        huey = build_huey(cfg, name=f"formrelay-test-{secrets.token_hex(4)}")
        try:
            assert deliveries_in_order(huey) == ["high", "high-2", "mid", "low"]
            assert password not in describe(huey) and user not in describe(huey)
        finally:
            huey.storage.flush_all()
        wrong = config.load("migrate", BASE | {
            "FORMRELAY_REDIS_URL": f"redis://{user}:not-{password}@127.0.0.1:6379/0"})
        with pytest.raises(redis.AuthenticationError):
            deliveries_in_order(build_huey(wrong, name="formrelay-test-denied"))
    finally:
        admin.acl_deluser(user)


STOP_DURING_FORK = """
import os, signal, sys
from sidecar import config
from sidecar.queue import build_huey, create_consumer

signal.signal(signal.SIGTERM, signal.default_int_handler)  # as cli.main sets it
cfg = config.load("migrate", {"WORDPRESS_DB_USER": "u", "WORDPRESS_DB_NAME": "d",
                              "FORMRELAY_SHARED_SECRET": "s" * 32,
                              "FORMRELAY_DATA_DIR": sys.argv[1],
                              "FORMRELAY_WORKER_TYPE": "process", "FORMRELAY_WORKERS": "1",
                              "FORMRELAY_SHUTDOWN_SECONDS": "5"})
consumer = create_consumer(build_huey(cfg), cfg)
parent, sent = os.getpid(), []

def stop_request_mid_fork():  # what systemd's stop does when it lands while Huey forks
    if os.getpid() == parent and not sent:
        sent.append(1)
        os.kill(parent, signal.SIGTERM)

os.register_at_fork(after_in_parent=stop_request_mid_fork)
consumer.run()
print("stopped")
"""


def test_a_stop_request_that_lands_while_huey_forks_its_workers_still_stops_it(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", STOP_DURING_FORK, str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "stopped" in proc.stdout, proc.stderr[-2000:]
