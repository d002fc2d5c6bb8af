"""The chaos run's faults: the database seen from the test (including the KILL of every
connection to it) and the schedule that runs each fault at its time."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import mysql.connector

from sidecar.store import Database, DbSettings
from sidecar.store.db import CONNECTION_ERRORS
from tests.conftest import PREFIX

UNFINISHED = ("pending", "processing", "retrying")
ER_NO_SUCH_THREAD = 1094  # KILL of a connection that has just gone


# ---- the database, seen from the test ------------------------------------------------------

class Monitor:
    """Reads the scratch database with a fresh connection per query, so a KILL of every
    connection to it (the fault) never leaves the test holding a dead one."""

    def __init__(self, settings: DbSettings, prefix: str = PREFIX) -> None:
        self.settings = settings
        self.db = Database(settings)
        self.p = prefix

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        for attempt in range(3):
            conn = self.db.connect()
            try:
                cur = conn.cursor(dictionary=True)
                cur.execute(sql.replace("{p}", self.p), params)
                rows = list(cur.fetchall())
                conn.commit()
                return rows  # type: ignore[return-value]
            except CONNECTION_ERRORS:
                if attempt == 2:
                    raise
            finally:
                with contextlib.suppress(Exception):
                    conn.close()
        raise AssertionError("unreachable")

    def unfinished(self) -> tuple[int, int]:
        """(jobs, documents) still pending, processing or retrying."""
        marks = ", ".join(["%s"] * len(UNFINISHED))
        jobs = self.query(f"SELECT COUNT(*) AS n FROM {{p}}formrelay_jobs WHERE status IN"
                          f" ({marks})", UNFINISHED)[0]["n"]
        docs = self.query(f"SELECT COUNT(*) AS n FROM {{p}}formrelay_documents WHERE status IN"
                          f" ({marks})", UNFINISHED)[0]["n"]
        return int(jobs), int(docs)

    def live_workers(self) -> set[int]:
        return {int(r["pid"]) for r in self.query("SELECT pid FROM {p}formrelay_workers")}

    def kill_connections(self) -> int:
        """KILL every connection whose current database is ours, except the killer's own."""
        conn = self.db.connect(database=False)
        killed = 0
        try:
            cur = conn.cursor()
            cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s"
                        " AND ID <> CONNECTION_ID()", (self.settings.database,))
            for (conn_id,) in cur.fetchall():
                try:
                    cur.execute(f"KILL CONNECTION {int(conn_id)}")  # type: ignore[arg-type]
                    killed += 1
                except mysql.connector.Error as exc:
                    if exc.errno != ER_NO_SUCH_THREAD:
                        raise
        finally:
            conn.close()
        return killed


# ---- the fault schedule ----------------------------------------------------------------------

@dataclass(frozen=True)
class Fault:
    at: float  # seconds after T0
    name: str
    action: Callable[[], str]  # does it; returns what it did, for the record


@dataclass
class FaultSchedule:
    """Runs faults at their times from one thread; a fault that raises is recorded, and the
    schedule goes on (the test fails on any recorded error)."""

    faults: list[Fault]
    done: list[tuple[float, str, str]] = field(default_factory=list)  # (T+, name, detail)
    errors: list[str] = field(default_factory=list)
    t0: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _finished: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self, t0: float) -> None:
        self.t0 = t0
        self.faults.sort(key=lambda f: f.at)
        self._thread = threading.Thread(target=self._run, name="chaos-faults", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for fault in self.faults:
                if self._stop.wait(max(0.0, self.t0 + fault.at - time.monotonic())):
                    return
                started = time.monotonic() - self.t0
                try:
                    detail = fault.action()
                except Exception as exc:  # recorded: the test fails on it at the end
                    self.errors.append(f"T+{started:.1f}s {fault.name}: {exc!r}")
                    detail = f"FAILED: {exc!r}"
                self.done.append((started, fault.name, detail))
        finally:
            self._finished.set()

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def count(self, name: str) -> int:
        return sum(1 for _, n, d in self.done if n == name and not d.startswith("FAILED"))
