"""Deadlocks and lock wait timeouts: the one place a store call is tried again.

InnoDB resolves a deadlock (1213) by rolling back one of the transactions,
and a lock wait timeout (1205) ends a statement that waited too long; either
way `Database.transaction` rolls the whole transaction back, so running the
call again from its start is safe. A context manager cannot re-run its body,
so the retry wraps the store method: `@retried` re-runs the whole call after
a short full-jitter pause (sidecar.backoff), up to ATTEMPTS times, logs each
retry (call name and error number only: no values), and then raises
TransactionConflict.

A method marked `@retried` must be safe to run again from its start: one
transaction, or transactions before the last that are idempotent. Inside an
open transaction (a store method calling another) a call is not retried on
its own: the deadlock rolled back the caller's work too, so only the
outermost call may start again.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

import mysql.connector

from sidecar.backoff import RetryPolicy
from sidecar.errors import TransactionConflict

log = logging.getLogger("formrelay.store")

DEADLOCK, LOCK_WAIT_TIMEOUT = 1213, 1205
RETRY_ERRNOS = frozenset({DEADLOCK, LOCK_WAIT_TIMEOUT})
ATTEMPTS = 6
# Waits of at most 0.05, 0.1, 0.2, 0.4, 0.8 s (full jitter): a deadlock's other party
# commits in milliseconds; a spread of waits keeps the same pair from colliding again.
POLICY = RetryPolicy(base=0.05, factor=2.0, max_backoff=2.0, jitter=True)

F = TypeVar("F", bound=Callable[..., Any])


def retryable(exc: BaseException) -> int | None:
    """The error number if `exc` is a deadlock or a lock wait timeout, else None."""
    if isinstance(exc, mysql.connector.errors.DatabaseError) and exc.errno in RETRY_ERRNOS:
        return int(exc.errno)
    return None


def retried(method: F) -> F:
    """Re-run a store method (self.db is its Database) on a deadlock or lock wait timeout."""
    name = method.__name__

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self.db.in_transaction:  # the outermost call starts again, not this one
            return method(self, *args, **kwargs)
        attempt = 1
        while True:
            try:
                return method(self, *args, **kwargs)
            except mysql.connector.errors.DatabaseError as exc:
                errno = retryable(exc)
                if errno is None:
                    raise
                if attempt >= ATTEMPTS:
                    log.error("store %s: MySQL error %d on each of %d attempts; giving up",
                              name, errno, attempt)
                    raise TransactionConflict(name, errno, attempt) from exc
                delay = POLICY.delay(attempt)
                log.warning("store %s: MySQL error %d (attempt %d of %d); retrying in %.3f s",
                            name, errno, attempt, ATTEMPTS, delay)
                time.sleep(delay)  # a backoff between attempts, not a synchronisation
                attempt += 1

    return cast(F, wrapper)
