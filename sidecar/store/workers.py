"""Worker heartbeats: which worker processes run, and when each was last seen.

The database computes every age (UTC_TIMESTAMP), so hosts' clocks never matter.
A worker is gone when it missed GONE_AFTER_BEATS beats of its own interval plus
GONE_MARGIN_SECONDS: the margin covers a live worker whose heartbeat thread was
held up (a long pause, a slow database) without waiting out a whole lease. The
sweep then releases the leases its id prefixes (sidecar.sweep).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sidecar.store.base import StoreBase
from sidecar.store.retry import retried

PRUNE_AFTER_SECONDS = 86400  # rows of workers not seen for a day are removed
GONE_AFTER_BEATS = 2
GONE_MARGIN_SECONDS = 15


@dataclass(frozen=True)
class Worker:
    id: str
    host: str
    pid: int
    version: str
    worker_type: str
    threads: int
    started_at: datetime
    last_seen: datetime
    seconds_since_seen: float
    silent: bool = False  # missed GONE_AFTER_BEATS beats plus the margin: judged gone


class WorkerStore(StoreBase):
    @property
    def _workers(self) -> str:
        return f"{self.prefix}formrelay_workers"

    @retried
    def heartbeat(self, worker_id: str, host: str, pid: int, version: str, worker_type: str,
                  threads: int, beat_seconds: int = 0) -> None:
        """Record that this worker is alive (first beat: its row); prune long-silent rows.

        `beat_seconds`: how often it beats; 0 (unknown) means it is never judged gone.
        """
        with self.db.transaction() as cur:
            cur.execute(
                f"INSERT INTO {self._workers} (id, host, pid, version, worker_type, threads,"
                " beat_seconds, started_at, last_seen) VALUES (%s, %s, %s, %s, %s, %s, %s,"
                " UTC_TIMESTAMP(3), UTC_TIMESTAMP(3)) ON DUPLICATE KEY UPDATE"
                " last_seen = UTC_TIMESTAMP(3), version = VALUES(version),"
                " worker_type = VALUES(worker_type), threads = VALUES(threads),"
                " beat_seconds = VALUES(beat_seconds)",
                (worker_id[:100], host[:100], pid, version[:32], worker_type[:12], threads,
                 beat_seconds))
        self.prune_workers()

    def gone_workers(self) -> list[tuple[str, float]]:
        """Workers that missed GONE_AFTER_BEATS beats plus the margin: (id, seconds silent)."""
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT id, TIMESTAMPDIFF(MICROSECOND, last_seen, UTC_TIMESTAMP(3)) / 1000000"
                f" AS silent FROM {self._workers} WHERE beat_seconds > 0 AND last_seen <"
                " UTC_TIMESTAMP(3) - INTERVAL (%s * beat_seconds + %s) SECOND ORDER BY id",
                (GONE_AFTER_BEATS, GONE_MARGIN_SECONDS))
            return [(str(r["id"]), float(r["silent"])) for r in cur.fetchall()]

    @retried
    def prune_workers(self, older_than_seconds: int = PRUNE_AFTER_SECONDS) -> int:
        with self.db.transaction() as cur:
            cur.execute(f"DELETE FROM {self._workers}"
                        " WHERE last_seen < UTC_TIMESTAMP(3) - INTERVAL %s SECOND",
                        (older_than_seconds,))
            return int(cur.rowcount)

    def workers(self) -> list[Worker]:
        """Every recorded worker, most recently seen first."""
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT id, host, pid, version, worker_type, threads, started_at, last_seen,"
                " TIMESTAMPDIFF(MICROSECOND, last_seen, UTC_TIMESTAMP(3)) / 1000000"
                " AS seconds_since_seen, beat_seconds > 0 AND last_seen < UTC_TIMESTAMP(3)"
                " - INTERVAL (%s * beat_seconds + %s) SECOND AS silent"
                f" FROM {self._workers} ORDER BY last_seen DESC, id",
                (GONE_AFTER_BEATS, GONE_MARGIN_SECONDS))
            return [Worker(str(r["id"]), str(r["host"]), int(r["pid"]), str(r["version"]),
                           str(r["worker_type"]), int(r["threads"]), r["started_at"],
                           r["last_seen"], float(r["seconds_since_seen"]), bool(r["silent"]))
                    for r in cur.fetchall()]

    @retried
    def forget_worker(self, worker_id: str) -> None:
        with self.db.transaction() as cur:
            cur.execute(f"DELETE FROM {self._workers} WHERE id = %s", (worker_id,))
