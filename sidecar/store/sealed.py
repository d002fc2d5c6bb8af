"""The rows sealed submissions touch (sidecar/seal.py, migration 0011): what `formrelay
keys reseal` re-encrypts and what `formrelay doctor` counts. The encryption itself is
the caller's, given as a function, so the SQL stays here and the keys stay out.

A reseal batch locks its rows (FOR UPDATE) and rewrites only `snapshot`/`path`,
`original_name` and `seal_key`: a worker holding a job writes its state columns, never
these, so resealing a job in flight loses nothing (the worker read its values at claim).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sidecar.store.base import StoreBase
from sidecar.store.retry import retried

COUNT_CAP = 10_000  # the doctor counts clear rows up to this (an old site may hold millions)

# A row's (seal_key and its sealed columns, by name) -> those columns' new values, sealed
# to the newest key, or None when it cannot be opened here (an unknown key, a damaged
# box): that row is left as it is.
Reseal = Callable[[dict[str, Any]], tuple[str, ...] | None]
JOB_VALUES = ("snapshot",)
DOCUMENT_VALUES = ("original_name", "path")


@dataclass(frozen=True)
class Batch:
    changed: int
    left: int  # rows read but left as they were (not opened here)
    last_id: int  # the next batch starts after it
    read: int


class SealStore(StoreBase):
    def reseal_jobs(self, newest: str, after: int, limit: int, reseal: Reseal) -> Batch:
        """One batch of the jobs after id `after` holding a snapshot not sealed to `newest`
        (clear ones included), each resealed to it."""
        return self._reseal(self.t.jobs, JOB_VALUES, "snapshot IS NOT NULL AND snapshot <> ''",
                            newest, after, limit, reseal)

    def reseal_documents(self, newest: str, after: int, limit: int, reseal: Reseal) -> Batch:
        """One batch of the documents after id `after` whose place (name, path) is not
        sealed to `newest` (clear ones included), each resealed to it."""
        return self._reseal(self.t.documents, DOCUMENT_VALUES,
                            "(path <> '' OR original_name <> '')", newest, after, limit, reseal)

    @retried
    def _reseal(self, table: str, columns: tuple[str, ...], holding: str, newest: str,
                after: int, limit: int, reseal: Reseal) -> Batch:
        sets = ", ".join(f"{c} = %s" for c in columns)
        with self.db.transaction() as cur:
            cur.execute(f"SELECT id, seal_key, {', '.join(columns)} FROM {table} WHERE id > %s"
                        f" AND {holding} AND (seal_key IS NULL OR seal_key <> %s)"
                        " ORDER BY id LIMIT %s FOR UPDATE", (after, newest, limit))
            rows = cur.fetchall()
            changed = 0
            for r in rows:
                values = reseal(r)
                if values is not None:
                    cur.execute(f"UPDATE {table} SET {sets}, seal_key = %s WHERE id = %s",
                                (*values, newest, r["id"]))
                    changed += 1
            return Batch(changed, len(rows) - changed, int(rows[-1]["id"]) if rows else after,
                         len(rows))

    def sealed_keys(self) -> dict[str, int]:
        """Rows (jobs and documents) still holding a sealed value, by key id: on the
        seal_key indexes alone (retention clears the id with the value)."""
        found: dict[str, int] = {}
        with self.db.transaction() as cur:
            for table in (self.t.jobs, self.t.documents):
                cur.execute(f"SELECT seal_key, COUNT(*) AS n FROM {table}"
                            " WHERE seal_key IS NOT NULL GROUP BY seal_key")
                for r in cur.fetchall():
                    found[str(r["seal_key"])] = found.get(str(r["seal_key"]), 0) + int(r["n"])
        return found

    def clear_rows(self) -> tuple[int, int]:
        """(jobs, documents) holding values in clear, each counted up to COUNT_CAP + 1."""
        with self.db.transaction() as cur:
            cur.execute(f"SELECT COUNT(*) AS n FROM (SELECT 1 FROM {self.t.jobs}"
                        " WHERE seal_key IS NULL AND snapshot IS NOT NULL AND snapshot <> ''"
                        " LIMIT %s) t", (COUNT_CAP + 1,))
            jobs = int(cur.fetchone()["n"])
            cur.execute(f"SELECT COUNT(*) AS n FROM (SELECT 1 FROM {self.t.documents}"
                        " WHERE seal_key IS NULL AND (path <> '' OR original_name <> '')"
                        " LIMIT %s) t", (COUNT_CAP + 1,))
            return jobs, int(cur.fetchone()["n"])
