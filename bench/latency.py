"""Submit-to-partner latency through real WordPress, busy and after idle time.

One local WordPress (Debian's 6.1 on `php -S`) with the WPForms emulator and the
bridge, the partner simulator at 50 ms latency, and the sidecar on each queue asked
for: `sqlite` is `formrelay run` (web and worker in one process, the embedded
queue), `redis` is `formrelay web` beside `formrelay worker` on Redis
(127.0.0.1:6379, a queue of its own, flushed after). For each: N submissions
back to back (each as soon as the previous one's record and two documents reached
the partner: so it does not wait behind them at the partner ceilings), then M
submissions each after `--idle-seconds` of silence. A latency is from the start of
the form POST to the record's creation at the partner (same clock). Also the CPU
the sidecar's processes (the worker's forked children included) used per idle
second. Targets: median <= 300 ms and max <= 1.5 s, back to back and after idle.

    .venv/bin/python bench/latency.py [--queue sqlite,redis] [--worker-type thread|process]
        [--back-to-back 20] [--after-idle 4] [--idle-seconds 60]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.site_env import bridge_site, run_bench
from devstack import wpforms
from devstack.samples import write_pdf
from devstack.wordpress import LocalWordPress
from sidecar.partner_sim import RunningSim, run_in_thread

ROOT = Path(__file__).resolve().parents[1]
FORMRELAY = str(ROOT / ".venv" / "bin" / "formrelay")
REDIS_URL = "redis://127.0.0.1:6379/0"
TICKS = os.sysconf("SC_CLK_TCK")
TARGET_MEDIAN_MS, TARGET_MAX_MS = 300, 1500


class BenchError(Exception):
    """The run cannot give a figure (a process died, a record never arrived)."""


@dataclass
class Run:
    queue: str
    busy_ms: list[float] = field(default_factory=list)
    idle_ms: list[float] = field(default_factory=list)
    idle_cpu: list[float] = field(default_factory=list)  # CPU seconds per idle second


def wait_for(probe: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.005)  # polling the simulator's memory: cheap, and 5 ms resolution


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` and its live children (process workers), in seconds."""
    pids = [pid] + [int(p) for p in os.listdir("/proc") if p.isdigit() and _ppid(p) == pid]
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / TICKS


def _ppid(pid: str) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


class Sidecar:
    """The sidecar's processes on one queue, started and stopped around a run."""

    def __init__(self, queue: str, env: dict[str, str], logs: Path) -> None:
        self.queue, self.logs = queue, logs
        self.env = dict(env)
        self.procs: list[subprocess.Popen[bytes]] = []
        if queue == "redis":
            self.env.update(FORMRELAY_REDIS_URL=REDIS_URL,
                            FORMRELAY_QUEUE_NAME=f"formrelay-bench-{secrets.token_hex(4)}")

    def start(self) -> None:
        for command in (["run"] if self.queue == "sqlite" else ["web", "worker"]):
            with (self.logs / f"{self.queue}-{command}.log").open("wb") as out:
                self.procs.append(subprocess.Popen([FORMRELAY, command], env=self.env,
                                                   stdout=out, stderr=subprocess.STDOUT))
        listen = self.env["FORMRELAY_LISTEN"]
        wait_for(lambda: self._ready(listen), 60, "the sidecar to answer /readyz")
        wait_for(lambda: "Huey consumer started" in self.log(self.procs[-1]), 60,
                 "the worker to start")

    def _ready(self, listen: str) -> bool:
        self.check()
        try:
            return requests.get(f"http://{listen}/readyz", timeout=1).ok
        except requests.RequestException:
            return False

    def log(self, proc: subprocess.Popen[bytes]) -> str:
        command = "run" if self.queue == "sqlite" else ["web", "worker"][self.procs.index(proc)]
        return (self.logs / f"{self.queue}-{command}.log").read_text(errors="replace")

    def check(self) -> None:
        for proc in self.procs:
            if proc.poll() is not None:
                tail = "\n".join(self.log(proc).splitlines()[-15:])
                raise BenchError(f"a sidecar process exited ({proc.returncode}):\n{tail}")

    def cpu(self) -> float:
        return sum(cpu_seconds(p.pid) for p in self.procs)

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
        if self.queue == "redis":
            import redis

            conn = redis.Redis.from_url(REDIS_URL)
            name = self.env["FORMRELAY_QUEUE_NAME"].replace("-", "")
            for key in conn.scan_iter(match=f"huey.*.{name}*"):
                conn.delete(key)


@contextmanager
def running(sidecar: Sidecar) -> Iterator[Sidecar]:
    sidecar.start()
    try:
        yield sidecar
    finally:
        sidecar.stop()


class Submitter:
    def __init__(self, site: LocalWordPress, sim: RunningSim, form_id: int,
                 docs: list[Path]) -> None:
        self.site, self.sim, self.form_id, self.docs = site, sim, form_id, docs
        self.session = requests.Session()
        self.sent = 0

    def one(self, sidecar: Sidecar) -> float:
        """POST one submission; ms from the POST's start to the record at the partner."""
        before = len(self.sim.records())
        self.sent += 1
        started = time.time()
        wpforms.submit(self.site.url, self.form_id,
                       {"1": {"first": "Bench", "last": f"L{self.sent}"},
                        "2": "bench@example.org", "3": "1970-01-01"},
                       files={"4": self.docs}, session=self.session)

        def arrived() -> bool:
            sidecar.check()
            return len(self.sim.records()) > before

        wait_for(arrived, 60, "the record at the partner")
        created = datetime.fromisoformat(self.sim.records()[before]["created"]).timestamp()

        def documents() -> bool:  # so the next submission does not queue behind them
            sidecar.check()
            return len(self.sim.records()[before]["documents"]) == len(self.docs)

        wait_for(documents, 60, "the documents at the partner")
        return (created - started) * 1000


def measure(queue: str, submitter: Submitter, env: dict[str, str], logs: Path,
            args: argparse.Namespace) -> Run:
    run = Run(queue)
    with running(Sidecar(queue, env, logs)) as sidecar:
        submitter.one(sidecar)  # warm-up: caches, connections, the partner's first record
        for _ in range(args.back_to_back):
            run.busy_ms.append(submitter.one(sidecar))
        for i in range(args.after_idle):
            cpu = sidecar.cpu()
            time.sleep(args.idle_seconds)  # the idle time being measured, not a wait for state
            run.idle_cpu.append((sidecar.cpu() - cpu) / args.idle_seconds)
            run.idle_ms.append(submitter.one(sidecar))
            print(f"  {queue}: after idle {i + 1}/{args.after_idle}:"
                  f" {run.idle_ms[-1]:.0f} ms", flush=True)
    return run


def report(runs: list[Run], args: argparse.Namespace) -> None:
    print(f"partner latency 50 ms; worker type {args.worker_type}; idle {args.idle_seconds:g} s")
    print("queue   case           n  median ms   max ms   verdict")
    for run in runs:
        for case, ms in (("back to back", run.busy_ms), ("after idle", run.idle_ms)):
            if not ms:
                continue
            met = statistics.median(ms) <= TARGET_MEDIAN_MS and max(ms) <= TARGET_MAX_MS
            print(f"{run.queue:<7} {case:<13} {len(ms):>2} {statistics.median(ms):>10.0f}"
                  f" {max(ms):>8.0f}   {'met' if met else 'MISSED'}")
    for run in runs:
        if run.idle_cpu:
            what = "formrelay run" if run.queue == "sqlite" else "formrelay web + worker"
            print(f"idle CPU, {run.queue} ({what}): {1000 * statistics.mean(run.idle_cpu):.1f}"
                  f" ms per second ({60 * statistics.mean(run.idle_cpu):.2f} CPU s per 60 s)")
    print(f"targets: median <= {TARGET_MEDIAN_MS} ms and max <= {TARGET_MAX_MS} ms in each case")
    print(f"load: {Path('/proc/loadavg').read_text().strip()}")


def measure_queues(args: argparse.Namespace, queues: list[str]) -> list[Run]:
    """One WordPress, one simulator and the sidecar on each of `queues` in turn."""
    site, secret, listen = bridge_site("lat")
    sim = run_in_thread(latency_ms=50)
    runs: list[Run] = []
    try:
        with site, tempfile.TemporaryDirectory(prefix="fr-latency-") as tmp:
            form_id = wpforms.create_form(site, "Latency", fields=[
                wpforms.name_field(1), wpforms.email_field(2), wpforms.text_field(3, "Date"),
                wpforms.file_field(4, style="modern")])
            docs = [write_pdf(Path(tmp) / f"scan{i}.pdf", 3000) for i in range(2)]
            env = {k: v for k, v in os.environ.items()
                   if not k.startswith(("FORMRELAY_", "WORDPRESS_"))}
            env.update({
                "WORDPRESS_DB_HOST": site.db_host_port, "WORDPRESS_DB_USER": site.db_user,
                "WORDPRESS_DB_PASSWORD": site.db_password, "WORDPRESS_DB_NAME": site.db_name,
                "WORDPRESS_TABLE_PREFIX": site.table_prefix, "FORMRELAY_SHARED_SECRET": secret,
                "FORMRELAY_LISTEN": listen, "FORMRELAY_PARTNER_URL": sim.url,
                "FORMRELAY_UPLOADS_DIR": str(site.uploads_dir),
                "FORMRELAY_DATA_DIR": str(Path(tmp) / "data"),
                "FORMRELAY_WORKER_TYPE": args.worker_type})
            logs = Path(tmp) / "logs"
            logs.mkdir()
            submitter = Submitter(site, sim, form_id, docs)
            for queue in queues:
                runs.append(measure(queue, submitter, env, logs, args))
    finally:
        sim.stop()
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queue", default="sqlite,redis",
                        help="comma-separated: sqlite (formrelay run), redis (web + worker)")
    parser.add_argument("--worker-type", choices=("thread", "process"), default="process",
                        help="FORMRELAY_WORKER_TYPE (default: the sidecar's, process)")
    parser.add_argument("--back-to-back", type=int, default=20, metavar="N")
    parser.add_argument("--after-idle", type=int, default=4, metavar="M")
    parser.add_argument("--idle-seconds", type=float, default=60,
                        help="silence before each of the M submissions (default 60)")
    args = parser.parse_args()
    queues = [q for q in args.queue.split(",") if q]
    if not set(queues) <= {"sqlite", "redis"}:
        parser.error("--queue takes sqlite and/or redis")
    return run_bench(__file__, lambda: measure_queues(args, queues),
                     lambda runs: report(runs, args), removed="site, database and queue",
                     errors=(BenchError,), machine_load=False, timed=False)


if __name__ == "__main__":
    sys.exit(main())
