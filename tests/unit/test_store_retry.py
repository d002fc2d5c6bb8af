"""The store's retry rule (sidecar.store.retry) on a stand-in database: which errors,
how many attempts, and no retry of a call made inside an open transaction."""

from __future__ import annotations

from typing import Any

import mysql.connector
import pytest

from sidecar.errors import TransactionConflict
from sidecar.store import retry

pytestmark = pytest.mark.unit


class FakeDb:
    in_transaction = False


class Calls:
    """A store stand-in whose `work` fails with the given errors, then returns 'done'."""

    def __init__(self, *errors: Exception) -> None:
        self.db, self.errors, self.calls = FakeDb(), list(errors), 0

    @retry.retried
    def work(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def db_error(errno: int) -> Any:
    return mysql.connector.errors.DatabaseError(msg="x", errno=errno)


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    monkeypatch.setattr(retry.time, "sleep", lambda _: None)


def test_deadlocks_and_lock_wait_timeouts_run_the_call_again():
    calls = Calls(db_error(1213), db_error(1205), db_error(1213))
    assert calls.work() == "done" and calls.calls == 4


def test_other_database_errors_are_not_retried():
    calls = Calls(db_error(1062))
    with pytest.raises(mysql.connector.errors.DatabaseError):
        calls.work()
    assert calls.calls == 1


def test_the_call_gives_up_after_its_attempts():
    calls = Calls(*[db_error(1213)] * retry.ATTEMPTS)
    with pytest.raises(TransactionConflict) as raised:
        calls.work()
    assert calls.calls == retry.ATTEMPTS
    assert (raised.value.call, raised.value.errno) == ("work", 1213)
    assert "deadlock (MySQL error 1213)" in str(raised.value)


def test_a_call_inside_an_open_transaction_leaves_the_retry_to_the_outer_call():
    calls = Calls(db_error(1213))
    calls.db.in_transaction = True
    with pytest.raises(mysql.connector.errors.DatabaseError):
        calls.work()
    assert calls.calls == 1


def test_the_waits_grow_and_stay_short(monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr(retry.time, "sleep", waits.append)
    calls = Calls(*[db_error(1213)] * (retry.ATTEMPTS - 1))
    calls.work()
    assert len(waits) == retry.ATTEMPTS - 1
    ceilings = [retry.POLICY.base * retry.POLICY.factor ** i for i in range(len(waits))]
    assert all(0 <= w <= c for w, c in zip(waits, ceilings, strict=True))
