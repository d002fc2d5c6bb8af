"""Connections to the WordPress database: one per thread, UTC, READ COMMITTED.

READ COMMITTED keeps claim scans from holding gap locks on rows they only
looked at; UTC on the session makes every DATETIME comparison clock-agnostic
of the host (all times are written with UTC_TIMESTAMP on the server).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import mysql.connector
from mysql.connector.abstracts import MySQLConnectionAbstract

from sidecar.config import Config

# mysql-connector's C extension (libmysqlclient) when it loads here: a round trip through
# the pure-Python protocol costs several times the CPU. Where it cannot load (e.g. a
# release built against a newer OpenSSL than the system's), the pure driver, said once.
C_EXTENSION: bool = bool(getattr(mysql.connector, "HAVE_CEXT", False))


def driver() -> str:
    """Which MySQL driver this process uses (the worker and web say it as they start)."""
    kind = "C extension" if C_EXTENSION else "pure Python (the C extension did not load)"
    return f"mysql-connector {mysql.connector.__version__}, {kind}"


# Errors after which the connection is thrown away and made anew.
CONNECTION_ERRORS = (mysql.connector.errors.OperationalError, mysql.connector.errors.InterfaceError)

IDLE_PING_SECONDS = 30.0


@dataclass(frozen=True)
class DbSettings:
    host: str
    user: str
    password: str
    database: str
    port: int = 3306
    unix_socket: str | None = None
    connect_timeout: int = 10

    @classmethod
    def from_config(cls, config: Config) -> DbSettings:
        return cls.parse(config.db_host, config.db_user, config.db_password, config.db_name)

    @classmethod
    def parse(cls, host: str, user: str, password: str, database: str) -> DbSettings:
        """Read a WORDPRESS_DB_HOST value: `host`, `host:port` or `host:/path/to.sock`."""
        name, _, rest = host.partition(":")
        if rest.startswith("/"):
            return cls(name or "localhost", user, password, database, unix_socket=rest)
        return cls(name or "127.0.0.1", user, password, database, port=int(rest or 3306))


# Every open connection of this process. A forked child (Huey's process workers) starts
# with copies of them all, on sockets it shares with the parent, and must never close one:
# COM_QUIT or a socket shutdown would end the parent's session (e.g. the web thread's).
# The child drops other threads' thread-locals as it starts, so the parent holds them all
# strongly across the fork; the child keeps them, unused, until it exits (os._exit).
_OPEN: weakref.WeakSet[Any] = weakref.WeakSet()
_FORKING: list[Any] = []
_INHERITED: list[Any] = []


def _before_fork() -> None:
    _FORKING[:] = list(_OPEN)


def _after_fork_in_parent() -> None:
    _FORKING.clear()


def _after_fork_in_child() -> None:
    _INHERITED.extend(_FORKING)
    _FORKING.clear()
    _OPEN.clear()


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                    after_in_child=_after_fork_in_child)


class Database:
    """Hands each thread its own connection and wraps work in transactions."""

    def __init__(self, settings: DbSettings) -> None:
        self.settings = settings
        self._local = threading.local()

    def connect(self, database: bool = True) -> MySQLConnectionAbstract:
        s = self.settings
        kwargs: dict[str, Any] = {
            "user": s.user,
            "password": s.password,
            "autocommit": False,
            "time_zone": "+00:00",
            "charset": "utf8mb4",
            "collation": "utf8mb4_unicode_ci",
            "connection_timeout": s.connect_timeout,
            "use_pure": not C_EXTENSION,
        }
        if database:
            kwargs["database"] = s.database
        if s.unix_socket:
            kwargs["unix_socket"] = s.unix_socket
        else:
            kwargs.update(host=s.host, port=s.port)
        conn = mysql.connector.connect(**kwargs)
        _OPEN.add(conn)
        cur = conn.cursor()
        cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        cur.close()
        return conn  # type: ignore[return-value]

    def connection(self) -> MySQLConnectionAbstract:
        return self._handle()[0]

    def _handle(self) -> tuple[MySQLConnectionAbstract, Any]:
        """This thread's connection and its one reusable cursor.

        A connection is pinged only after it has been idle a while: a ping per
        transaction (or per cursor, as mysql-connector does) doubles the round trips.
        A connection that died while busy fails its transaction, which throws it away.
        """
        local = self._local
        conn: MySQLConnectionAbstract | None = getattr(local, "conn", None)
        if conn is not None and conn in _INHERITED:  # the parent's, before a fork: not ours
            local.conn = conn = None
        if conn is not None and time.monotonic() - local.used > IDLE_PING_SECONDS and (
                not conn.is_connected()):
            self.discard()
            conn = None
        if conn is None:
            conn = self.connect()
            local.conn, local.used = conn, time.monotonic()
            # Buffered: every result is read at once, so the cursor can be reused.
            local.cursor = conn.cursor(dictionary=True, buffered=True)
        return conn, local.cursor

    def discard(self) -> None:
        """Forget this thread's connection (after a connection error)."""
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None and conn not in _INHERITED:  # a parent's is never closed here
            with contextlib.suppress(Exception):  # it is already broken; closing is a courtesy
                conn.close()

    def close(self) -> None:
        self.discard()

    @property
    def in_transaction(self) -> bool:
        """Whether this thread is inside `transaction()` (sidecar.store.retry asks)."""
        return bool(getattr(self._local, "open", False))

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """Yield a dictionary cursor; commit on success, roll back on any error.

        A deadlock or lock wait timeout rolls back here like any error; the store
        method marked @retried (sidecar.store.retry) runs the whole body again.
        """
        conn, cur = self._handle()
        local = self._local
        local.after, local.before, local.batches, local.open = [], [], {}, True
        try:
            yield cur
            for flush in local.before:
                flush(cur)
            conn.commit()
        except CONNECTION_ERRORS:
            self.discard()
            raise
        except BaseException:
            try:
                conn.rollback()
            except CONNECTION_ERRORS:
                self.discard()
            raise
        finally:
            local.used, local.open = time.monotonic(), False
        for callback in local.after:
            callback()

    def batch(self, name: str, flush: Callable[[Any, list[Any]], None]) -> list[Any]:
        """This transaction's list `name`: `flush(cursor, items)` writes it just before the
        COMMIT (the store writes a transaction's log rows so, in one statement). A
        rollback drops it."""
        local = self._local
        items: list[Any] | None = local.batches.get(name)
        if items is None:
            items = local.batches[name] = []
            local.before.append(lambda cur: flush(cur, items))
        return items

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once this thread's transaction commits (dropped on rollback)."""
        self._local.after.append(callback)

    def server_version(self) -> tuple[str, tuple[int, ...]]:
        """('mariadb' or 'mysql', numeric version) of the connected server."""
        with self.transaction() as cur:
            cur.execute("SELECT VERSION() AS v")
            raw = str(cur.fetchone()["v"])
        flavour = "mariadb" if "mariadb" in raw.lower() else "mysql"
        numbers = tuple(int(p) for p in raw.split("-")[0].split(".")[:3] if p.isdigit())
        return flavour, numbers
