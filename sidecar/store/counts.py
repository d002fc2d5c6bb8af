"""Jobs per status without counting the jobs table (migration 0008, docs/dashboard.md).

The ended statuses (COUNTED: the history, which only grows) are kept per form in
`{prefix}formrelay_counts`, changed in the transaction that changes a job's status
(StoreBase._next, the one place a job's next status is decided, calls count_change);
the waiting ones (the queue) are counted live through the status indexes, which
hold only the queue. So capture and the claim write nothing here: a job costs one
statement, when it ends, and a retry or restart of an ended job one more.

Each change adds to one of SLOTS rows picked at random, so workers ending jobs of
the same form do not queue on one row lock; the rows of one (form, status) are
locked in key order (one statement, sorted), so two changes cannot deadlock on them.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping
from typing import Any

from sidecar.states import JOB_ENDS, WAITING
from sidecar.store.db import Database
from sidecar.store.rows import Tables

COUNTED = tuple(map(str, JOB_ENDS))
LIVE = tuple(str(s) for s in WAITING)
SLOTS = 8

Key = tuple[int, str]  # (form id, status)


def counts_table(prefix: str) -> str:
    return f"{prefix}formrelay_counts"


def status_deltas(form_id: int, old: str, new: str) -> dict[Key, int]:
    """What a job's move from `old` to `new` changes in the counts table (pure)."""
    deltas: Counter[Key] = Counter()
    if old != new:
        if old in COUNTED:
            deltas[(form_id, old)] -= 1
        if new in COUNTED:
            deltas[(form_id, new)] += 1
    return {key: n for key, n in deltas.items() if n}


def count_change(db: Database, prefix: str, form_id: int, old: str, new: str) -> None:
    """Add a job's status change to this transaction's counts: all of a transaction's
    changes are written in one statement just before it commits (dropped on a rollback),
    so a transaction that ends several jobs still adds one statement, and the counts rows
    are locked last and briefly, in key order."""
    deltas = status_deltas(form_id, old, new)
    if deltas:
        db.batch("counts", lambda cur, items: add_counts(cur, prefix, _summed(items))).append(
            deltas)


def _summed(items: list[dict[Key, int]]) -> dict[Key, int]:
    total: Counter[Key] = Counter()
    for deltas in items:
        total.update(deltas)
    return dict(total)


def add_counts(cur: Any, prefix: str, deltas: Mapping[Key, int]) -> None:
    """Add `deltas` in the caller's transaction: one statement, none when there is nothing."""
    changes = sorted((form_id, status, n) for (form_id, status), n in deltas.items() if n)
    if not changes:
        return
    slot = random.randrange(SLOTS)  # spreads lock waits over rows; not a secret
    cur.execute(f"INSERT INTO {counts_table(prefix)} (form_id, status, slot, n) VALUES "
                + ", ".join(["(%s, %s, %s, %s)"] * len(changes))
                + " ON DUPLICATE KEY UPDATE n = n + VALUES(n)",
                [v for form_id, status, n in changes for v in (form_id, status, slot, n)])


class CountsStore:
    """The reads and the repair; a mixin of the Store (base.py imports this module's
    writer, so this class cannot derive from StoreBase)."""

    db: Database
    prefix: str
    t: Tables

    def counts_by_status(self, form_id: int | None = None) -> dict[str, int]:
        """Jobs per status (of one form, when given): the counts table for the ended
        statuses, the status indexes for the waiting ones. One round trip."""
        form = " AND form_id = %s" if form_id is not None else ""
        marks = ", ".join(["%s"] * len(LIVE))
        params: list[Any] = [form_id] if form_id is not None else []
        with self.db.transaction() as cur:
            cur.execute(
                f"SELECT status, SUM(n) AS n FROM {counts_table(self.prefix)}"
                f" WHERE 1 = 1{form} GROUP BY status UNION ALL"
                f" SELECT status, COUNT(*) AS n FROM {self.t.jobs}"
                f" WHERE status IN ({marks}){form} GROUP BY status",
                (*params, *LIVE, *params))
            found: dict[str, int] = {}
            for r in cur.fetchall():
                found[str(r["status"])] = found.get(str(r["status"]), 0) + int(r["n"])
        return {s: n for s, n in found.items() if n}

    def recount_jobs(self, repair: bool = False) -> dict[Key, int]:
        """The counts table's drift from the jobs table: {(form, status): kept - actual},
        empty when they agree; with `repair`, the table is rewritten to the jobs table.

        Exact while jobs change: under REPEATABLE READ the locking read takes every
        counts row and the gaps between (no new row can appear), so each concurrent
        change is either committed before it (seen in both reads) or still waiting to
        add its delta (seen in neither). Holds the counts rows for one GROUP BY over
        the ended jobs (about 0.2 s at 1,000,000 jobs): jobs that end meanwhile wait.
        """
        table = counts_table(self.prefix)
        marks = ", ".join(["%s"] * len(COUNTED))
        with self.db.transaction() as cur:
            cur.execute("ROLLBACK")  # no transaction open: the level below applies to the next
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur.execute(f"SELECT form_id, status, n FROM {table} FOR UPDATE")
            kept: Counter[Key] = Counter()
            for r in cur.fetchall():
                kept[(int(r["form_id"]), str(r["status"]))] += int(r["n"])
            cur.execute(f"SELECT form_id, status, COUNT(*) AS n FROM {self.t.jobs}"
                        f" WHERE status IN ({marks}) GROUP BY form_id, status", COUNTED)
            actual = Counter({(int(r["form_id"]), str(r["status"])): int(r["n"])
                              for r in cur.fetchall()})
            drift = {k: kept[k] - actual[k] for k in set(kept) | set(actual)
                     if kept[k] != actual[k]}
            if repair and drift:
                cur.execute(f"DELETE FROM {table}")
                rows = sorted(actual.items())
                if rows:
                    cur.execute(f"INSERT INTO {table} (form_id, status, slot, n) VALUES "
                                + ", ".join(["(%s, %s, 0, %s)"] * len(rows)),
                                [v for (form_id, status), n in rows for v in (form_id, status, n)])
        return drift
