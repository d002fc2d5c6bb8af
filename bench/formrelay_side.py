"""FormRelay's side of the WordPress benches: form submissions, `formrelay web` and worker.

The submissions go through the emulator's front-end form POST (two PDFs each)
with no worker running, so the jobs wait as a backlog, as Action Scheduler's
actions do; then one `formrelay worker` (defaults, Redis, the partner ceilings
off as Action Scheduler has none) rings the backlog at start and delivers it.
bench/load.py runs `formrelay web` and a worker beside a loaded site.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import requests

from bench.cpu_usage import Probe, snapshot, tree_seconds, used
from bench.throughput import FORMRELAY, REDIS_URL, BenchError, alive, base_env, service, wait_for
from devstack import wpforms
from devstack.wordpress import LocalWordPress
from sidecar.states import WAITING

ROOT = Path(__file__).resolve().parents[1]
# Action Scheduler has no partner ceilings: lift FormRelay's for a fair comparison.
NO_CEILINGS = {"FORMRELAY_PARTNER_RPS": "0", "FORMRELAY_PARTNER_CONCURRENCY": "0"}
PROFILE_ENV = "FORMRELAY_BENCH_PROFILE"  # a directory: the worker runs under cProfile


@dataclass
class FormRelaySide:
    site: LocalWordPress
    form_id: int
    secret: str
    listen: str
    logs: Path
    data: Path
    queue: str = ""
    ceilings: dict[str, str] = field(default_factory=lambda: dict(NO_CEILINGS))

    def env(self, sim_root: str) -> dict[str, str]:
        wp = self.site
        return {**base_env(), "WORDPRESS_DB_HOST": wp.db_host_port,
                "WORDPRESS_DB_USER": wp.db_user, "WORDPRESS_DB_PASSWORD": wp.db_password,
                "WORDPRESS_DB_NAME": wp.db_name, "WORDPRESS_TABLE_PREFIX": wp.table_prefix,
                "FORMRELAY_SHARED_SECRET": self.secret, "FORMRELAY_LISTEN": self.listen,
                "FORMRELAY_PARTNER_URL": f"{sim_root}/api",
                "FORMRELAY_UPLOADS_DIR": str(wp.uploads_dir), "FORMRELAY_DATA_DIR":
                str(self.data), "FORMRELAY_REDIS_URL": REDIS_URL,
                "FORMRELAY_QUEUE_NAME": self.queue, **self.ceilings}

    @contextmanager
    def web(self, sim_root: str) -> Iterator[subprocess.Popen[bytes]]:
        """`formrelay web` (the bridge's notify target) on a Redis queue of its own."""
        self.queue = f"formrelay-bench-{secrets.token_hex(4)}"
        with service("web", [FORMRELAY, "web"], self.env(sim_root), self.logs,
                     "http listening on") as (proc, _):
            wait_for(lambda: self._healthy(proc), 30, "`formrelay web` to answer /readyz")
            try:
                yield proc
            finally:
                _flush_queue(self.env(sim_root))

    def _healthy(self, proc: subprocess.Popen[bytes]) -> bool:
        alive(proc, self.logs / "web.log")
        try:
            return requests.get(f"http://{self.listen}/readyz", timeout=1).ok
        except requests.RequestException:
            return False

    def counts(self, since_id: int = 0) -> dict[str, int]:
        """FormRelay jobs after `since_id` by status."""
        with self.site.db() as conn:
            cur = conn.cursor()
            cur.execute(f"SELECT status, COUNT(*) FROM {self._jobs} WHERE id > %s"
                        " GROUP BY status", (since_id,))
            return {str(s): int(n) for s, n in cur.fetchall()}

    def waiting(self) -> int:
        """FormRelay jobs not ended yet (sidecar.states.WAITING)."""
        return sum(n for status, n in self.counts().items() if status in WAITING)

    def document_outcomes(self, since_id: int) -> dict[str, object]:
        """The documents of jobs after `since_id`: 'status: first words of the error' -> count."""
        with self.site.db() as conn:
            cur = conn.cursor()
            cur.execute(f"SELECT status, LEFT(COALESCE(last_error, ''), 80), COUNT(*)"
                        f" FROM {self.site.table_prefix}formrelay_documents WHERE job_id > %s"
                        " GROUP BY 1, 2", (since_id,))
            found: dict[str, object] = {f"{s}: {e}".rstrip(": "): int(n)
                                        for s, e, n in cur.fetchall()}
            cur.execute(f"SELECT j.id, COUNT(d.id) FROM {self._jobs} j LEFT JOIN"
                        f" {self.site.table_prefix}formrelay_documents d ON d.job_id = j.id"
                        " WHERE j.id > %s GROUP BY j.id HAVING COUNT(d.id) <> 2", (since_id,))
            short = cur.fetchall()
            if short:  # its log: events and messages hold no submitted value
                found["jobs without two documents"] = short
                cur.execute(f"SELECT event, message FROM {self.site.table_prefix}formrelay_log"
                            " WHERE job_id = %s ORDER BY id", (short[0][0],))
                found[f"log of job {short[0][0]}"] = cur.fetchall()
            return found

    def failures(self) -> dict[str, int]:
        """Failed jobs and documents by the first words of their last error."""
        p = self.site.table_prefix
        with self.site.db() as conn:
            cur = conn.cursor()
            cur.execute(f"SELECT 'job', LEFT(COALESCE(last_error, ''), 90), COUNT(*) FROM"
                        f" {p}formrelay_jobs WHERE status = 'failed' GROUP BY 2 UNION ALL"
                        f" SELECT 'document', LEFT(COALESCE(last_error, ''), 90), COUNT(*)"
                        f" FROM {p}formrelay_documents WHERE status = 'failed' GROUP BY 2")
            return {f"{kind}: {error}": int(n) for kind, error, n in cur.fetchall()}

    def max_job_id(self) -> int:
        return self._one(f"SELECT COALESCE(MAX(id), 0) FROM {self._jobs}")

    def submit(self, count: int, files: list[Path], threads: int = 4) -> None:
        """`count` real form POSTs, `threads` at a time; each must be stored as a job."""
        before = self.max_job_id()

        def one(i: int) -> None:
            wpforms.submit(self.site.url, self.form_id,
                           {"1": {"first": "Bench", "last": f"Jobs{i}"},
                            "2": "bench@example.org", "3": "1970-01-01"},
                           files={"4": files}, timeout=120)

        # The first alone: WPForms creates the form's upload folder on its first upload, and
        # concurrent first uploads can race in PHP's recursive mkdir (seen once here: one
        # submission stored without its files, and so a job without documents).
        one(0)
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, range(1, count)))
        made = self._one(f"SELECT COUNT(*) FROM {self._jobs} WHERE id > %s", before)
        if made != count:
            raise BenchError(f"{count} submissions made {made} FormRelay jobs")

    @contextmanager
    def worker(self, sim_root: str) -> Iterator[subprocess.Popen[bytes]]:
        """One `formrelay worker` (under cProfile when FORMRELAY_BENCH_PROFILE is set)."""
        argv = [FORMRELAY, "worker"]
        if profile := os.environ.get(PROFILE_ENV):
            argv = [sys.executable, str(ROOT / "bench" / "profiled_worker.py"), profile]
        with service("worker", argv, self.env(sim_root), self.logs,
                     "Huey consumer started") as (proc, _):
            yield proc

    def deliver(self, sim_root: str, since_id: int, count: int, timeout: float,
                probes: Mapping[str, Probe] | None = None) -> dict[str, float]:
        """Run one `formrelay worker` until every job after `since_id` is completed.

        CPU seconds from the worker's start (its imports done) to the last job: of its
        process tree ("worker") and of each of `probes`.
        """
        with self.worker(sim_root) as proc:
            meters = {"worker": partial(tree_seconds, proc.pid), **(probes or {})}
            before = snapshot(meters)

            def done() -> bool:
                alive(proc, self.logs / "worker.log")
                counts = self.counts(since_id)
                if counts.get("failed"):
                    raise BenchError(f"FormRelay jobs failed: {counts}")
                return counts.get("completed", 0) == count

            wait_for(done, timeout, f"{count} FormRelay jobs to complete")
            return used(before, snapshot(meters))

    @property
    def _jobs(self) -> str:
        return f"{self.site.table_prefix}formrelay_jobs"

    def _one(self, sql: str, *args: object) -> int:
        with self.site.db() as conn:
            cur = conn.cursor()
            cur.execute(sql, args)
            return int(cur.fetchone()[0])


def _flush_queue(env: dict[str, str]) -> None:
    from sidecar import config
    from sidecar.queue import build_huey

    build_huey(config.load("migrate", env)).storage.flush_all()


def make_form(site: LocalWordPress) -> int:
    return wpforms.create_form(site, "Bench intake", fields=[
        wpforms.name_field(1), wpforms.email_field(2), wpforms.text_field(3, "Date of birth"),
        wpforms.file_field(4, style="modern")])

