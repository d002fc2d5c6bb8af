"""Deadlocks and lock wait timeouts on real MariaDB: the store runs the whole call again.

A second connection, driven step by step by the test, makes the conflict: no
sleeps, each step waits for the server to show the store's transaction waiting.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sidecar.errors import TransactionConflict
from sidecar.states import Event, EventKind, Status
from sidecar.store import Database, DbSettings, Store
from sidecar.store import retry as store_retry
from tests.conftest import PREFIX, wait_until
from tests.integration.test_store import docs, new_job

pytestmark = pytest.mark.db

K = EventKind


class Records(logging.Handler):
    """The store's log records, from every thread."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self) -> list[str]:
        return [r.getMessage() for r in self.records]


@pytest.fixture
def store_log() -> Iterator[Records]:
    handler = Records()
    logger = logging.getLogger("formrelay.store")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


@pytest.fixture
def other(db: Database) -> Iterator[Any]:
    """A second connection (another request, another worker), in a transaction of its own."""
    conn = db.connect()
    yield conn
    conn.rollback()
    conn.close()


def run_in_thread(settings: DbSettings, call: Callable[[Store], Any],
                  lock_wait_seconds: int | None = None) -> tuple[threading.Thread, dict[str, Any]]:
    """`call` on a store with its own connection, in a thread: {'result'} or {'error'}."""
    out: dict[str, Any] = {}

    def run() -> None:
        own = Store(Database(settings), PREFIX)
        try:
            if lock_wait_seconds is not None:
                cur = own.db.connection().cursor()
                cur.execute(f"SET SESSION innodb_lock_wait_timeout = {lock_wait_seconds}")
                cur.close()
            out["result"] = call(own)
        except Exception as exc:
            out["error"] = exc
        finally:
            own.db.close()

    thread = threading.Thread(target=run, name="store-call")
    thread.start()
    return thread, out


# InnoDB refreshes its innodb_trx view only after 0.1 s without a read: poll slower.
LOCK_POLL_SECONDS = 0.25


def lock_waits(db: Database) -> int:
    """Transactions the server shows waiting for a row lock."""
    with db.transaction() as cur:
        cur.execute("SELECT COUNT(*) AS n FROM information_schema.innodb_trx"
                    " WHERE trx_state = 'LOCK WAIT'")
        return int(cur.fetchone()["n"])


def pending_document(store: Store) -> tuple[int, int]:
    """A job in its documents phase with one pending document: (job id, document id)."""
    job, _ = store.enqueue(new_job())
    assert store.claim_job(job.id, "w1", 60)
    store.transition_job(job.id, Event(K.RECORD_SENT, has_documents=True), owner="w1",
                         partner_id="rec-1", documents=docs(1))
    return job.id, store.documents(job.id)[0].id


def test_a_forced_deadlock_is_retried_and_the_call_succeeds(store, migrated_db, other,
                                                           store_log):
    job_id, doc_id = pending_document(store)
    cur = other.cursor()
    # Weight: InnoDB rolls back the lighter of two deadlocked transactions, so the
    # other connection writes rows first and the store's transaction is the victim.
    cur.executemany(f"INSERT INTO {PREFIX}formrelay_log (level, event, message, created_at)"
                    " VALUES ('info', 'test.weight', '', UTC_TIMESTAMP(3))",
                    [()] * 50)
    cur.execute(f"SELECT id FROM {PREFIX}formrelay_documents WHERE id = %s FOR UPDATE",
                (doc_id,))
    cur.fetchall()
    # The store locks the job row, then waits for the document row...
    thread, out = run_in_thread(migrated_db, lambda s: s.transition_document(
        doc_id, Event(K.CANCEL), job_id=job_id))
    wait_until(lambda: lock_waits(store.db) >= 1 or out, 30, "the store waiting for the document",
               interval=LOCK_POLL_SECONDS)
    assert not out, out
    # ...which the other connection holds while asking for the job row: a deadlock.
    cur.execute(f"SELECT id FROM {PREFIX}formrelay_jobs WHERE id = %s FOR UPDATE", (job_id,))
    cur.fetchall()
    wait_until(lambda: any("error 1213" in line for line in store_log.lines()), 30,
               "the store's retry")
    other.rollback()  # the other transaction ends; the store's next attempt goes through
    thread.join(timeout=60)
    assert not thread.is_alive() and "error" not in out, out
    assert out["result"].status == Status.CANCELLED
    assert store.get_document(doc_id).status == Status.CANCELLED
    retries = [r for r in store_log.records if r.levelno == logging.WARNING]
    assert retries and retries[0].getMessage().startswith(
        "store transition_document: MySQL error 1213 (attempt 1 of")


def cancel_a_locked_job(store: Store, settings: DbSettings, other: Any
                       ) -> tuple[int, threading.Thread, dict[str, Any]]:
    """A job whose row `other` holds, and a store cancelling it in a thread with a 1 s lock
    wait: (job id, the thread, its outcome)."""
    job, _ = store.enqueue(new_job())
    cur = other.cursor()
    cur.execute(f"SELECT id FROM {PREFIX}formrelay_jobs WHERE id = %s FOR UPDATE", (job.id,))
    cur.fetchall()
    thread, out = run_in_thread(settings, lambda s: s.transition_job(job.id, Event(K.CANCEL)),
                                lock_wait_seconds=1)
    return job.id, thread, out


def test_a_lock_wait_timeout_is_retried(store, migrated_db, other, store_log):
    job_id, thread, out = cancel_a_locked_job(store, migrated_db, other)
    wait_until(lambda: any("error 1205" in line for line in store_log.lines()), 60,
               "the store's lock wait timeout and retry")
    other.rollback()
    thread.join(timeout=60)
    assert not thread.is_alive() and "error" not in out, out
    assert out["result"].status == Status.CANCELLED
    assert store.get_job(job_id).status == Status.CANCELLED


def test_the_store_gives_up_after_its_attempts_with_a_clear_error(store, migrated_db, other,
                                                                 store_log, monkeypatch):
    monkeypatch.setattr(store_retry, "ATTEMPTS", 2)
    job_id, thread, out = cancel_a_locked_job(store, migrated_db, other)
    thread.join(timeout=60)
    assert not thread.is_alive()
    error = out["error"]
    assert isinstance(error, TransactionConflict) and (error.errno, error.attempts) == (1205, 2)
    assert str(error) == ("transition_job: lock wait timeout (MySQL error 1205) on each of 2"
                          " attempts; gave up")
    assert [r.levelname for r in store_log.records] == ["WARNING", "ERROR"]
    other.rollback()
    assert store.get_job(job_id).status == Status.PENDING  # each attempt rolled back
