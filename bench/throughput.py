"""Delivery throughput of one `formrelay worker` process, and its memory on a 100 MiB upload.

On a scratch database (FORMRELAY_TEST_DB_HOST / _USER / _PASSWORD, default
127.0.0.1:3306 root), with `formrelay partner-sim` in its own process and Redis at
127.0.0.1:6379 (a queue per run), each run starts one `formrelay worker`, rings N
jobs of two 3,000-byte PDFs (3 partner requests a job) at once, and times from the
first ring until all are `completed`; peak RSS is the worker's VmHWM. The upload
run sends one 100 MiB PDF with 1 thread, reports RSS growth over the warmed idle
worker and checks size and SHA-256 at the simulator. Everything is removed after.
Targets: >= 150 jobs/s at 0 ms with 4 threads; at 200 ms, 16 threads >= 10x 1
thread; RSS growth < 20 MiB for the 100 MiB upload.

    .venv/bin/python bench/throughput.py [--quick] [--jobs N] [--only 0ms|200ms|upload]
        [--partner-concurrency N] [--partner-rps R]

The partner ceilings default to the sidecar's own (4 in flight, 10 requests/s), which
cap every run; `--partner-concurrency 0 --partner-rps 0` measures the worker alone
(the figures docs/scale-out.md sizes workers with).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.site_env import run_bench
from devstack.samples import write_pdf
from sidecar import config
from sidecar.queue import build_huey
from sidecar.store import Database, DbSettings, Job, NewJob, Store
from sidecar.store.schema import migrate
from sidecar.tasks import Tasks, register
from tests.integration.delivery import snapshot, text_fields

ROOT = Path(__file__).resolve().parents[1]
FORMRELAY = str(ROOT / ".venv" / "bin" / "formrelay")
REDIS_URL = "redis://127.0.0.1:6379/0"
PREFIX = "wp_"
MIB = 1024 * 1024
DB_HOST = os.environ.get("FORMRELAY_TEST_DB_HOST", "127.0.0.1:3306")
DB_USER = os.environ.get("FORMRELAY_TEST_DB_USER", "root")
DB_PASSWORD = os.environ.get("FORMRELAY_TEST_DB_PASSWORD", "")
T = TypeVar("T")


class BenchError(Exception):
    """The run cannot give a figure (failed jobs, a process that died, a time-out)."""


@dataclass(frozen=True)
class Result:
    latency_ms: int
    threads: int
    jobs: int
    seconds: float
    peak_mib: float  # the worker's VmHWM
    cpu_ms: float = 0.0  # the worker process's CPU (user + system) per job, while delivering

    @property
    def jobs_per_s(self) -> float:
        return self.jobs / self.seconds


def wait_for(probe: Callable[[], T], timeout: float, what: str) -> T:
    """Poll `probe` every 50 ms until it returns something truthy, or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while not (result := probe()):
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)
    return result


def admin(sql: str) -> None:
    conn = Database(DbSettings.parse(DB_HOST, DB_USER, DB_PASSWORD, "")).connect(database=False)
    try:
        conn.cursor().execute(sql)
    finally:
        conn.close()


@contextmanager
def scratch_database() -> Iterator[Store]:
    name = f"fr_bench_{secrets.token_hex(4)}"
    admin(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    store = Store(Database(DbSettings.parse(DB_HOST, DB_USER, DB_PASSWORD, name)), PREFIX)
    try:
        migrate(store.db, PREFIX)
        yield store
    finally:
        store.db.close()
        admin(f"DROP DATABASE IF EXISTS {name}")


def truncate(store: Store) -> None:
    with store.db.transaction() as cur:
        cur.execute("SET FOREIGN_KEY_CHECKS = 0")
        for table in (store.t.log, store.t.documents, store.t.jobs):
            cur.execute(f"TRUNCATE TABLE {table}")
        cur.execute("SET FOREIGN_KEY_CHECKS = 1")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory(pid: int, field: str) -> float:
    """VmRSS or VmHWM of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise BenchError(f"no {field} for process {pid}")


def alive(proc: subprocess.Popen[bytes], log: Path) -> None:
    if proc.poll() is not None:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise BenchError(f"{log.stem} exited with status {proc.returncode}; its log ends:\n{tail}")


@contextmanager
def service(name: str, argv: list[str], env: dict[str, str], logs: Path,
            ready: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """Start a process logging to a file; yield it and its log once `ready` is in the log."""
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)

    def started() -> str:
        alive(proc, log)
        text = log.read_text(errors="replace")
        return text if ready in text else ""

    try:
        yield proc, wait_for(started, 60, f"{name} to start")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def partner_sim(latency_ms: int, logs: Path) -> Iterator[str]:
    """A simulator process; yields its root URL (the API is root + /api)."""
    with partner_sim_process(latency_ms, logs) as (root, _):
        yield root


@contextmanager
def partner_sim_process(latency_ms: int, logs: Path) -> Iterator[tuple[str, int]]:
    """A simulator process; yields its root URL and its pid (for its CPU time)."""
    argv = [FORMRELAY, "partner-sim", "--listen", "127.0.0.1:0", "--latency-ms",
            str(latency_ms), "--threads", "64"]
    with service(f"sim-{latency_ms}ms", argv, base_env(), logs,
                 "partner-sim serving") as (proc, t):
        found = re.search(r"control: (\S+)/_sim/", t)
        assert found, t
        yield found.group(1), proc.pid


def base_env() -> dict[str, str]:
    """This environment without FormRelay or WordPress settings (those are the bench's)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("FORMRELAY_", "WORDPRESS_"))}


@dataclass
class Bench:
    store: Store
    uploads: Path
    docs: list[Path]
    logs: Path
    entries: int = 0
    proc: subprocess.Popen[bytes] | None = None  # the running worker

    def make_jobs(self, count: int, files: list[Path] | None = None) -> list[Job]:
        made = []
        for _ in range(count):
            self.entries += 1
            snap = snapshot(12, self.entries, text_fields(), self.uploads, files or self.docs)
            made.append(self.store.enqueue(NewJob(f"bench:{self.entries}", 12, self.entries,
                                                  snap))[0])
        return made

    @contextmanager
    def worker(self, sim_root: str, threads: int,
               extra: dict[str, str] | None = None) -> Iterator[tuple[int, Tasks]]:
        """A `formrelay worker` on a queue of its own; yields its pid and the doorbell."""
        queue = f"formrelay-bench-{secrets.token_hex(4)}"
        env = {**base_env(), "WORDPRESS_DB_HOST": DB_HOST, "WORDPRESS_DB_USER": DB_USER,
               "WORDPRESS_DB_PASSWORD": DB_PASSWORD,
               "WORDPRESS_DB_NAME": self.store.db.settings.database,
               "FORMRELAY_PARTNER_URL": f"{sim_root}/api", "FORMRELAY_UPLOADS_DIR":
               str(self.uploads), "FORMRELAY_REDIS_URL": REDIS_URL,
               "FORMRELAY_QUEUE_NAME": queue, "FORMRELAY_WORKERS": str(threads),
               "FORMRELAY_WORKER_TYPE": WORKER_TYPE[0],
               "FORMRELAY_SHARED_SECRET": secrets.token_hex(16), **CEILINGS, **(extra or {})}
        huey = build_huey(config.load("migrate", env))
        tasks = register(huey, lambda: None)  # type: ignore[arg-type, return-value]
        try:
            with service("worker", [FORMRELAY, "worker"], env, self.logs,
                         "Huey consumer started") as (proc, _):
                self.proc = proc
                yield proc.pid, tasks
        finally:
            self.proc = None
            huey.storage.flush_all()

    def deliver(self, tasks: Tasks, jobs: list[Job], timeout: float) -> float:
        """Ring every job, wait until all are completed; seconds from the first ring."""
        started = time.perf_counter()
        for job in jobs:
            tasks.ring_record(job.id, job.priority)
        ids = ", ".join(str(j.id) for j in jobs)
        query = (f"SELECT status, COUNT(*) AS n FROM {self.store.t.jobs} WHERE id IN ({ids})"
                 " GROUP BY status")

        def done() -> bool:
            assert self.proc is not None
            alive(self.proc, self.logs / "worker.log")
            with self.store.db.transaction() as cur:
                cur.execute(query)
                counts = {r["status"]: int(r["n"]) for r in cur.fetchall()}
            if counts.get("failed"):
                raise BenchError(f"{counts['failed']} of {len(jobs)} jobs failed: {counts}")
            return counts.get("completed", 0) == len(jobs)

        wait_for(done, timeout, f"{len(jobs)} jobs to complete")
        return time.perf_counter() - started


def throughput(bench: Bench, sim_root: str, latency_ms: int, threads: int, count: int) -> Result:
    truncate(bench.store)
    jobs = bench.make_jobs(count)
    expected = count * 3 * (latency_ms / 1000 + 0.02) / threads
    with bench.worker(sim_root, threads) as (pid, tasks):
        cpu = cpu_seconds(pid)
        seconds = bench.deliver(tasks, jobs, 120 + 5 * expected)
        cpu = cpu_seconds(pid) - cpu
        peak = memory(pid, "VmHWM")
    return Result(latency_ms, threads, count, seconds, peak, cpu * 1000 / count)


def upload(bench: Bench, sim_root: str) -> tuple[float, float]:
    """(idle RSS, peak RSS) in MiB of a 1-thread worker sending one 100 MiB PDF."""
    truncate(bench.store)
    big = write_pdf(bench.uploads / "wpforms" / "big" / "scan.pdf", 100 * MIB)
    with big.open("rb") as fh:
        sha256 = hashlib.file_digest(fh, "sha256").hexdigest()
    warm, job = bench.make_jobs(1)[0], bench.make_jobs(1, [big])[0]
    with bench.worker(sim_root, 1, {"FORMRELAY_MAX_DOCUMENT_BYTES": str(200 * MIB)}) as (
            pid, tasks):
        bench.deliver(tasks, [warm], 60)
        idle = memory(pid, "VmRSS")
        with suppress(OSError):  # reset the peak to now (Linux 4.0+); else it is conservative
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        bench.deliver(tasks, [job], 300)
        peak = memory(pid, "VmHWM")
    record_id = bench.store.get_job(job.id).partner_record_id  # type: ignore[union-attr]
    with urllib.request.urlopen(f"{sim_root}/_sim/records", timeout=10) as resp:  # noqa: S310
        records: list[dict[str, Any]] = json.load(resp)
    got = [d for r in records if r["id"] == record_id for d in r["documents"]]
    if [(d["size"], d["sha256"]) for d in got] != [(big.stat().st_size, sha256)]:
        raise BenchError(f"the simulator received {got}, not 100 MiB with sha256 {sha256}")
    big.unlink()
    return idle, peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller N, for a fast check")
    parser.add_argument("--jobs", type=int, help="jobs per 0 ms run (default 300, quick 60)")
    parser.add_argument("--only", choices=("0ms", "200ms", "upload"))
    parser.add_argument("--worker-type", choices=("thread", "process"), default="thread",
                        help="FORMRELAY_WORKER_TYPE of the worker (default thread: this bench"
                        " varies threads; the sidecar's own default is process)")
    parser.add_argument("--partner-concurrency", type=int, metavar="N",
                        help="FORMRELAY_PARTNER_CONCURRENCY of the worker (0: no ceiling;"
                        " default: the sidecar's)")
    parser.add_argument("--partner-rps", type=float, metavar="R",
                        help="FORMRELAY_PARTNER_RPS of the worker (0: no ceiling;"
                        " default: the sidecar's)")
    args = parser.parse_args()
    if args.partner_concurrency is not None:
        CEILINGS["FORMRELAY_PARTNER_CONCURRENCY"] = str(args.partner_concurrency)
    if args.partner_rps is not None:
        CEILINGS["FORMRELAY_PARTNER_RPS"] = f"{args.partner_rps:g}"
    return run_bench(__file__, lambda: run(args), lambda got: report(*got),
                     removed="scratch database and queue", errors=(BenchError,),
                     machine_load=False)


WORKER_TYPE = ["thread"]  # set from --worker-type before the runs
CEILINGS: dict[str, str] = {}  # the partner ceilings given on the command line


def run(args: argparse.Namespace) -> tuple[list[Result], tuple[float, float] | None]:
    WORKER_TYPE[0] = args.worker_type
    zero_n = args.jobs or (60 if args.quick else 300)
    per_thread = 5 if args.quick else 20  # at 200 ms: about 12 s a run, whatever the threads
    results: list[Result] = []
    upload_mib = None
    with tempfile.TemporaryDirectory(prefix="fr-bench-") as tmp, scratch_database() as store:
        uploads, logs = Path(tmp) / "uploads", Path(tmp) / "logs"
        logs.mkdir()
        docs = [write_pdf(uploads / "wpforms" / "12-bench" / f"doc{i}.pdf", 3000)
                for i in range(2)]
        bench = Bench(store, uploads, docs, logs)
        if args.only in (None, "0ms", "upload"):
            with partner_sim(0, logs) as sim:
                if args.only != "upload":
                    results += [throughput(bench, sim, 0, n, zero_n) for n in (1, 4, 16)]
                if args.only != "0ms":
                    upload_mib = upload(bench, sim)
        if args.only in (None, "200ms"):
            with partner_sim(200, logs) as sim:
                results += [throughput(bench, sim, 200, n, per_thread * n) for n in (1, 4, 16)]
    return results, upload_mib


def report(results: list[Result], upload_mib: tuple[float, float] | None) -> None:
    if results:
        print("latency  threads   jobs  seconds   jobs/s  requests/s  worker peak RSS"
              "  worker CPU/job")
        for r in results:
            print(f"{r.latency_ms:>4} ms {r.threads:>8} {r.jobs:>6} {r.seconds:>8.2f}"
                  f" {r.jobs_per_s:>8.1f} {3 * r.jobs_per_s:>11.1f} {r.peak_mib:>12.1f} MiB"
                  f" {r.cpu_ms:>10.1f} ms")
    if upload_mib:
        idle, peak = upload_mib
        print(f"100 MiB upload, 1 thread, 0 ms: RSS idle {idle:.1f} MiB, peak {peak:.1f} MiB,"
              f" growth {peak - idle:.1f} MiB (size and sha256 match at the simulator)")
    by = {(r.latency_ms, r.threads): r for r in results}
    print("targets:")
    if (zero := by.get((0, 4))) is not None:
        verdict = "met" if zero.jobs_per_s >= 150 else "MISSED"
        print(f"  >= 150 jobs/s at 0 ms with 4 threads: {zero.jobs_per_s:.1f} ({verdict})")
    if (one := by.get((200, 1))) and (sixteen := by.get((200, 16))):
        ratio = sixteen.jobs_per_s / one.jobs_per_s
        print(f"  200 ms: 16 threads >= 10x 1 thread: {ratio:.1f}x"
              f" ({'met' if ratio >= 10 else 'MISSED'})")
    if upload_mib:
        growth = upload_mib[1] - upload_mib[0]
        print(f"  RSS growth < 20 MiB for a 100 MiB upload: {growth:.1f} MiB"
              f" ({'met' if growth < 20 else 'MISSED'})")


if __name__ == "__main__":
    sys.exit(main())
