"""State every worker on every host shares: one formrelay_meta row changed under
its row lock (the outage pause), the partner's pace, and its concurrency slots.

Times come from the database server, so hosts with skewed clocks still agree.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sidecar.store.base import StoreBase
from sidecar.store.retry import retried
from sidecar.store.rows import LogEntry

PACE = "partner_pace"
SLOT_POLL_SECONDS = 0.05

Change = Callable[[str | None, datetime], tuple[str | None, LogEntry | None]]


class SharedState(StoreBase):
    def shared(self, name: str) -> tuple[str | None, datetime]:
        """A shared row's value (None if absent) and the server's time, without a lock."""
        with self.db.transaction() as cur:
            cur.execute(f"SELECT (SELECT value FROM {self.t.meta} WHERE name = %s) AS value,"
                        " UTC_TIMESTAMP(3) AS now", (name,))
            row = cur.fetchone()
        return (None if row["value"] is None else str(row["value"])), row["now"]

    def shared_family(self, base: str) -> dict[str, str]:
        """Every row named `base` or `base:<suffix>` (one partner's each): {name: value}."""
        with self.db.transaction() as cur:
            cur.execute(f"SELECT name, value FROM {self.t.meta} WHERE name = %s OR name LIKE %s",
                        (base, base.replace("_", "\\_") + ":%"))
            return {str(r["name"]): str(r["value"]) for r in cur.fetchall()}

    def change_shared(self, name: str, change: Change) -> str | None:
        """Read-modify-write a shared row under its row lock; returns the value now stored.

        `change(value, now)` gives the new value (None: leave it) and an optional log
        row (job-less, written in the same transaction). The row is created first, in a
        statement of its own: creating it inside the locking transaction lets two
        workers' duplicate-key checks deadlock.
        """
        self._ensure(name)
        return self._change_locked(name, change)

    @retried  # `change` may run again: it must only compute (Pause's changes do)
    def _change_locked(self, name: str, change: Change) -> str | None:
        with self.db.transaction() as cur:
            row = self._lock_row(cur, name)
            if row is None:  # deleted since _ensure (rare): made here; a deadlock is retried
                self._ensure_in(cur, name)
                row = self._lock_row(cur, name)
            current = str(row["value"])
            new, entry = change(current, row["now"])
            if new is not None and new != current:
                cur.execute(f"UPDATE {self.t.meta} SET value = %s, updated_at ="
                            " UTC_TIMESTAMP(3) WHERE name = %s", (new, name))
            if entry is not None:
                self._log(cur, None, None, entry, None, row["now"])
            return new if new is not None else current

    def _lock_row(self, cur: Any, name: str) -> Any:
        """The row `name` (value, the database's now) locked, or None when it is missing."""
        cur.execute(f"SELECT value, UTC_TIMESTAMP(3) AS now FROM {self.t.meta}"
                    " WHERE name = %s FOR UPDATE", (name,))
        return cur.fetchone()

    @retried
    def _ensure(self, name: str, value: str = "") -> None:
        with self.db.transaction() as cur:
            self._ensure_in(cur, name, value)

    def _ensure_in(self, cur: Any, name: str, value: str = "") -> None:
        cur.execute(f"INSERT IGNORE INTO {self.t.meta} (name, value, updated_at)"
                    " VALUES (%s, %s, UTC_TIMESTAMP(3))", (name, value))

    # ---- partner protection -------------------------------------------------------------

    @retried
    def reserve_pace(self, interval: float, partner: str = "") -> float:
        """Book the next free start time, `interval` s after the previous booking (of
        `partner`: "" the default partner).

        Returns the seconds to wait before starting. One atomic UPDATE: the row holds
        the next free start (microseconds since the epoch, server clock), and
        LAST_INSERT_ID(expr) hands back the value it set on this connection.
        """
        step = max(1, int(interval * 1_000_000))
        pace = f"{PACE}:{partner}" if partner else PACE
        for attempt in range(2):
            with self.db.transaction() as cur:
                cur.execute(
                    f"UPDATE {self.t.meta} SET value = LAST_INSERT_ID(GREATEST("
                    " CAST(value AS UNSIGNED), CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS UNSIGNED)"
                    ") + %s), updated_at = UTC_TIMESTAMP(3) WHERE name = %s", (step, pace))
                if cur.rowcount == 0 and attempt == 0:
                    self._ensure(pace, "0")
                    continue
                cur.execute("SELECT LAST_INSERT_ID() AS booked,"
                            " CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS UNSIGNED) AS now")
                row = cur.fetchone()
            return max(0.0, (int(row["booked"]) - step - int(row["now"])) / 1_000_000)
        return 0.0

    def _slot_name(self, slot: int, partner: str = "") -> str:
        # A partner's name may be 64 characters: a lock name may not (sidecar.store.base).
        of = f"{hashlib.sha256(partner.encode()).hexdigest()[:12]}_" if partner else ""
        return self.lock_name(f"formrelay_partner_{of}{slot}")

    def take_partner_slot(self, slots: int, wait: float, partner: str = "") -> int | None:
        """One of `slots` named locks (of `partner`, "" the default) on this thread's
        connection, waiting up to `wait` s for whichever frees first. A named lock belongs
        to its connection: a killed worker's slot frees itself."""
        deadline = time.monotonic() + wait
        while True:
            for slot in random.sample(range(slots), slots):
                if self._get_lock(self._slot_name(slot, partner), 0):
                    return slot
            if time.monotonic() >= deadline:
                return None
            time.sleep(SLOT_POLL_SECONDS)  # GET_LOCK waits on one name only: poll them all

    def free_partner_slot(self, slot: int, partner: str = "") -> None:
        with self.db.transaction() as cur:
            cur.execute("SELECT RELEASE_LOCK(%s) AS freed", (self._slot_name(slot, partner),))
            cur.fetchone()

    def _get_lock(self, name: str, wait: int) -> bool:
        with self.db.transaction() as cur:
            cur.execute("SELECT GET_LOCK(%s, %s) AS got", (name, wait))
            row: Any = cur.fetchone()
        return bool(row["got"])
