"""The chaos suite's harness: the plan, a private Redis, a pool of `formrelay worker`
processes, the submissions, the fault schedule and the end-of-run accounting.

Everything here is plain Python with real processes and real services; the test
(test_chaos.py) strings it together and conftest.py owns the clean-up.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import random
import re
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mysql.connector
import redis

from devstack import samples
from sidecar.store import Database, DbSettings, NewJob, Store
from sidecar.store.db import CONNECTION_ERRORS
from tests.conftest import PREFIX, TEST_DB_HOST, TEST_DB_PASSWORD, TEST_DB_USER
from tests.integration.delivery import snapshot, text_fields

FORM_ID = 12
VALID_KINDS = ("pdf", "jpeg", "png")
HTML_KIND = "html_as_pdf"
UNFINISHED = ("pending", "processing", "retrying")
GAVE_UP = "gave up after"  # how the state machine words a step that ran out of attempts
# how a job that ended because of rejected documents words it (states.documents_outcome)
REJECTED = re.compile(r"^document (\d+) rejected: type text/html is not a document")
ER_NO_SUCH_THREAD = 1094  # KILL of a connection that has just gone


# ---- the plan: every duration in one place, scaled by configuration ----------------------

def _env_float(name: str, default: float, low: float, high: float) -> float:
    raw = os.environ.get(name, "")
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise ValueError(f"{name} must be a number (got {raw!r})") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low:g} and {high:g} (got {value:g})")
    return value


@dataclass(frozen=True)
class Plan:
    """What one chaos run does, and when (seconds after the first submission, T0).

    FORMRELAY_CHAOS_SCALE scales the partner's outage (120 s at scale 1) and the
    drain allowance; the worker kill interval stays the literal 10 s. Nothing that
    is checked depends on the scale.
    """

    scale: float
    seed: int
    submissions: int = 500
    html_share: float = 0.03  # submissions with one HTML page named .pdf (rejected)
    workers: int = 3
    threads: int = 4
    kill_every: float = 10.0
    flush_at: float = 20.0
    kill_db_at: float = 35.0
    outage_at: float = 50.0
    full_outage: float = 120.0
    drain_allowance: float = 240.0  # after the outage ends, every job must end within this
    # the partner: 30% 5xx, 10% timeouts (half of them after accepting)
    error_rate: float = 0.30
    timeout_rate: float = 0.05
    timeout_after_accept_rate: float = 0.05
    hang_seconds: float = 4.0
    read_timeout: float = 2.0  # below hang_seconds: a hang is a timeout for the sidecar
    latency_ms: float = 40.0
    jitter_ms: float = 60.0

    @classmethod
    def from_env(cls) -> Plan:
        scale = _env_float("FORMRELAY_CHAOS_SCALE", 1.0, 0.05, 10.0)
        raw_seed = os.environ.get("FORMRELAY_CHAOS_SEED", "")
        seed = int(raw_seed) if raw_seed.isdigit() else random.SystemRandom().randrange(10**6)
        return cls(scale=scale, seed=seed)

    @property
    def failure_rate(self) -> float:
        """The share of requests that fail (for the sidecar) outside the outage."""
        return self.error_rate + self.timeout_rate + self.timeout_after_accept_rate

    @property
    def outage_seconds(self) -> float:
        return round(self.full_outage * self.scale, 1)

    @property
    def outage_ends(self) -> float:
        return self.outage_at + self.outage_seconds

    @property
    def drain_deadline(self) -> float:
        """Seconds after T0 by which every job must have ended."""
        return self.outage_ends + max(120.0, self.drain_allowance * min(1.0, self.scale))

    def sim_knobs(self) -> dict[str, Any]:
        return {"error_rate": self.error_rate, "timeout_rate": self.timeout_rate,
                "timeout_after_accept_rate": self.timeout_after_accept_rate,
                "hang_seconds": self.hang_seconds, "latency_ms": self.latency_ms,
                "jitter_ms": self.jitter_ms, "seed": self.seed}

    def worker_settings(self) -> dict[str, str]:
        """The sidecar's own settings for the run (all real FORMRELAY_* names)."""
        return {
            "FORMRELAY_WORKERS": str(self.threads),
            "FORMRELAY_WORKER_TYPE": "thread",
            "FORMRELAY_LEASE_SECONDS": "10",  # the minimum: a killed worker's steps come back soon
            "FORMRELAY_BACKOFF_BASE": "1",
            "FORMRELAY_BACKOFF_CAP": "10",
            # FORMRELAY_MAX_ATTEMPTS stays at its default (10): the outage must not spend it
            "FORMRELAY_RECONCILE_DAYS": "0",
            "FORMRELAY_SHUTDOWN_SECONDS": "1",
            "FORMRELAY_SWEEP_SECONDS": "5",
            "FORMRELAY_PAUSE_AFTER": "12",  # 0.4**12: random failures alone rarely pause
            "FORMRELAY_PROBE_MIN_SECONDS": "2",
            "FORMRELAY_PROBE_MAX_SECONDS": "8",
            "FORMRELAY_PARTNER_CONCURRENCY": "8",
            "FORMRELAY_PARTNER_RPS": "40",
            "FORMRELAY_CONNECT_TIMEOUT": "2",
            "FORMRELAY_READ_TIMEOUT": f"{self.read_timeout:g}",
        }


def worker_env(plan: Plan, db_name: str, partner_url: str, redis_url: str, uploads: Path,
               data_dir: Path) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"], "LANG": os.environ.get("LANG", "C.UTF-8"),
        "WORDPRESS_DB_HOST": TEST_DB_HOST, "WORDPRESS_DB_USER": TEST_DB_USER,
        "WORDPRESS_DB_PASSWORD": TEST_DB_PASSWORD, "WORDPRESS_DB_NAME": db_name,
        "WORDPRESS_TABLE_PREFIX": PREFIX, "FORMRELAY_PARTNER_URL": partner_url,
        "FORMRELAY_REDIS_URL": redis_url, "FORMRELAY_UPLOADS_DIR": str(uploads),
        "FORMRELAY_DATA_DIR": str(data_dir), **plan.worker_settings(),
    }


def formrelay_bin() -> str:
    """The venv's `formrelay` when there is one (as in tests/integration), else PATH's."""
    venv_bin = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "formrelay"
    return str(venv_bin) if venv_bin.exists() else "formrelay"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- a private Redis: FLUSHALL must never touch anybody else's data ---------------------

class PrivateRedis:
    """A redis-server of our own on a free port, without persistence, in `workdir`."""

    def __init__(self, binary: str, workdir: Path, log: Path) -> None:
        self.binary, self.workdir, self.log = binary, workdir, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, db=0, socket_timeout=5)

    def start(self, timeout: float = 20.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for _ in range(3):  # the free port may be taken between the probe and the bind
            self.port = free_port()
            with self.log.open("ab") as out:
                self.proc = subprocess.Popen(
                    [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                     "--dir", str(self.workdir), "--save", "", "--appendonly", "no",
                     "--daemonize", "no", "--databases", "1"],
                    stdout=out, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + timeout
            while self.proc.poll() is None and time.monotonic() < deadline:
                with contextlib.suppress(redis.RedisError):
                    if self.client().ping():
                        return
                time.sleep(0.1)
            self.stop()
        raise RuntimeError(f"redis-server did not start; see {self.log}")

    def flushall(self) -> tuple[int, int]:
        """FLUSHALL; returns how many keys and queued or scheduled entries there were."""
        client = self.client()
        keys, entries = 0, 0
        for key in client.scan_iter(count=1000):
            keys += 1
            kind = client.type(key)
            size: Callable[[Any], Any] | None = {
                "list": client.llen, "zset": client.zcard, "hash": client.hlen,
                "set": client.scard}.get(kind.decode() if isinstance(kind, bytes) else str(kind))
            entries += int(size(key)) if size else 1
        client.flushall()
        return keys, entries

    def stop(self) -> None:
        stop_process(self.proc)


def stop_process(proc: subprocess.Popen[Any] | None, grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds; always reaps it."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(timeout=30)


# ---- the workers ---------------------------------------------------------------------------

@dataclass
class Worker:
    serial: int
    proc: subprocess.Popen[bytes]
    log: Path


class WorkerPool:
    """`formrelay worker` processes, each logging to its own file; SIGKILL and replace."""

    def __init__(self, command: list[str], env: Mapping[str, str], log_dir: Path) -> None:
        self.command, self.env, self.log_dir = command, dict(env), log_dir
        self.alive: list[Worker] = []
        self.gone: list[Worker] = []  # killed by us, or stopped at the end
        self.kills = 0
        self._serial = 0
        self._lock = threading.Lock()

    def start(self) -> Worker:
        with self._lock:
            self._serial += 1
            log = self.log_dir / f"worker-{self._serial:02d}.log"
            with log.open("ab") as out:
                proc = subprocess.Popen(self.command, env=self.env, stdout=out,
                                        stderr=subprocess.STDOUT)
            worker = Worker(self._serial, proc, log)
            self.alive.append(worker)
            return worker

    def kill_one(self, rng: random.Random) -> str:
        """SIGKILL a random running worker, reap it and start its replacement."""
        with self._lock:
            victim = rng.choice(self.alive)
            self.alive.remove(victim)
            victim.proc.send_signal(signal.SIGKILL)
            victim.proc.wait(timeout=30)
            self.gone.append(victim)
            self.kills += 1
        replacement = self.start()
        return (f"SIGKILL worker-{victim.serial:02d} (pid {victim.proc.pid}),"
                f" started worker-{replacement.serial:02d} (pid {replacement.proc.pid})")

    @property
    def started(self) -> int:
        return self._serial

    def pids(self) -> set[int]:
        with self._lock:
            return {w.proc.pid for w in self.alive}

    def unexpected_exits(self) -> list[str]:
        """Workers that ended without being killed: each with its exit status and log."""
        with self._lock:
            return [f"worker-{w.serial:02d} (pid {w.proc.pid}) exited with status"
                    f" {w.proc.returncode}; log: {w.log}"
                    for w in self.alive if w.proc.poll() is not None]

    def stop_all(self, grace: float = 15.0) -> None:
        with self._lock:
            workers, self.alive = self.alive, []
        for w in workers:
            if w.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    w.proc.terminate()
        for w in workers:
            stop_process(w.proc, grace)
            self.gone.append(w)


# ---- the submissions -------------------------------------------------------------------------

@dataclass(frozen=True)
class Submission:
    number: int
    reference: str
    files: tuple[Path, ...]
    kinds: tuple[str, ...]

    @property
    def html_positions(self) -> frozenset[int]:
        return frozenset(i for i, kind in enumerate(self.kinds) if kind == HTML_KIND)

    @property
    def valid_count(self) -> int:
        return len(self.files) - len(self.html_positions)


def make_submissions(uploads: Path, plan: Plan, rng: random.Random) -> list[Submission]:
    """`plan.submissions` submissions with 1-3 documents each; a few carry one HTML page
    named .pdf (a login page saved instead of the upload), which must be rejected."""
    count = plan.submissions
    with_html = set(rng.sample(range(1, count + 1), max(1, round(count * plan.html_share))))
    folder = uploads / "wpforms" / f"{FORM_ID}-chaos"
    made = []
    for n in range(1, count + 1):
        kinds = [rng.choice(VALID_KINDS) for _ in range(rng.randint(1, 3))]
        if n in with_html:
            kinds[rng.randrange(len(kinds))] = HTML_KIND
        files = []
        for i, kind in enumerate(kinds):
            size = rng.randint(max(samples.MIN_SIZES[kind], 1536), 8192)
            path = folder / f"{n:04d}-{i}{samples.EXTENSIONS[kind]}"
            files.append(samples.WRITERS[kind](path, size))
        made.append(Submission(n, f"wpforms:{FORM_ID}:{n}", tuple(files), tuple(kinds)))
    return made


def submission_snapshot(sub: Submission, uploads: Path) -> str:
    fields = text_fields()
    fields["1"] = {**fields["1"], "value": f"Chaos Person {sub.number}", "last": str(sub.number)}
    return snapshot(FORM_ID, sub.number, fields, uploads, list(sub.files))


def enqueue_all(store: Store, subs: Iterable[Submission], uploads: Path,
                ring: Callable[[int, int], None]) -> dict[str, int]:
    """One job per submission, as the bridge writes it, each rung like a notify would."""
    ids = {}
    for sub in subs:
        job, _ = store.enqueue(NewJob(sub.reference, FORM_ID, sub.number,
                                      submission_snapshot(sub, uploads)))
        ring(job.id, job.priority)
        ids[sub.reference] = job.id
    return ids


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


# ---- the end: what the partner has against what the database says ---------------------------

def describe_logs(log_dir: Path) -> str:
    return "\n".join(f"  {p} ({p.stat().st_size} bytes)" for p in sorted(log_dir.iterdir()))


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Accounting:
    problems: Counter[str] = field(default_factory=Counter)  # category -> how many
    examples: dict[str, list[str]] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    gave_up: list[tuple[str, int, int | None]] = field(default_factory=list)  # ref, job, doc

    def problem(self, category: str, example: str) -> None:
        self.problems[category] += 1
        shown = self.examples.setdefault(category, [])
        if len(shown) < 5:
            shown.append(example)

    def report(self) -> str:
        lines = []
        for category, n in self.problems.most_common():
            lines.append(f"{n} x {category}")
            lines += [f"      e.g. {e}" for e in self.examples[category]]
        return "\n".join(lines)


def account(monitor: Monitor, subs: list[Submission], stats: dict[str, Any],
            records: list[dict[str, Any]]) -> Accounting:
    """Check every submission end to end; collect every problem (not just the first)."""
    acc = Accounting()
    jobs = {r["reference"]: r for r in monitor.query(
        "SELECT id, reference, status, phase, attempts, partner_record_id, key_generation,"
        " last_error, lease_owner FROM {p}formrelay_jobs")}
    docs: dict[int, list[dict[str, Any]]] = {}
    for d in monitor.query("SELECT id, job_id, position, status, attempts, partner_document_id,"
                           " sha256, last_error, lease_owner FROM {p}formrelay_documents"
                           " ORDER BY id"):
        docs.setdefault(int(d["job_id"]), []).append(d)
    by_id = {r["id"]: r for r in records}
    keys = Counter(r["idempotency_key"] for r in records)

    # the partner created each record exactly once, and nothing else
    if stats["records_created"] != len(subs):
        acc.problem("records created at the partner != submissions",
                    f"{stats['records_created']} created for {len(subs)} submissions")
    for key, n in keys.items():
        if n > 1:
            acc.problem("two partner records with one idempotency key", f"{key}: {n}")
    expected_keys: set[str] = set()
    valid_total = 0
    for sub in subs:
        valid_total += sub.valid_count
        job = jobs.pop(sub.reference, None)
        if job is None:
            acc.problem("submission lost (no job row)", sub.reference)
            continue
        _check_job(acc, sub, job, docs.get(int(job["id"]), []), by_id, expected_keys)
    for reference in jobs:
        acc.problem("job the test did not submit", reference)
    for key in set(keys) - expected_keys:
        acc.problem("partner record no job points at (a duplicate)", key)
    if stats["documents_created"] != valid_total:
        acc.problem("documents created at the partner != valid documents",
                    f"{stats['documents_created']} created for {valid_total} valid documents")
    acc.figures.update(valid_documents=valid_total)
    for name, job_id, doc_id in acc.gave_up[:5]:
        acc.problem("the history of a step that ran out of attempts",
                    f"{name}: {step_history(monitor, job_id, doc_id)}")
    return acc


def step_history(monitor: Monitor, job_id: int, document_id: int | None) -> str:
    """What each failed attempt of one step was: random failure, outage, lease expiry..."""
    rows = monitor.query(
        "SELECT event, http_status, message FROM {p}formrelay_log WHERE job_id = %s AND"
        + (" document_id = %s" if document_id else " document_id IS NULL")
        + " ORDER BY id", (job_id, document_id) if document_id else (job_id,))
    seen: Counter[str] = Counter()
    for r in rows:
        message = r["message"] or ""
        cause = ("outage" if "(outage)" in message else "timeout" if "timed out" in message
                 else f"HTTP {r['http_status']}" if r["http_status"] else "")
        seen[f"{r['event']} {cause}".strip()] += 1
    return ", ".join(f"{k} x{n}" for k, n in seen.most_common())


def _check_job(acc: Accounting, sub: Submission, job: dict[str, Any],
               rows: list[dict[str, Any]], records: dict[str, dict[str, Any]],
               expected_keys: set[str]) -> None:
    ref, status = sub.reference, job["status"]
    error = job["last_error"] or ""
    if status in UNFINISHED:
        acc.problem(f"job left {status}", f"{ref} (phase {job['phase']}): {error[:120]}")
    elif status == "failed":
        reasons = error.split("; ")
        if GAVE_UP in error:
            acc.problem("job failed because its attempts ran out", f"{ref}: {error[:200]}")
            if job["phase"] == "record":
                acc.gave_up.append((ref, int(job["id"]), None))
        elif {m.group(1) if (m := REJECTED.match(r)) else r for r in reasons} != {
                str(p + 1) for p in sub.html_positions}:
            acc.problem("job failed, and not (only) because of a rejected document",
                        f"{ref}: {error[:200]}")
    elif status != "completed":
        acc.problem(f"job ended {status}", ref)
    if sub.html_positions and status == "completed":
        acc.problem("job with an HTML document completed", ref)
    if job["lease_owner"]:
        acc.problem("job still leased at the end", f"{ref}: {job['lease_owner']}")

    key = f"{ref}:{job['key_generation']}"
    expected_keys.add(key)
    record = records.get(job["partner_record_id"] or "")
    if record is None:
        acc.problem("job without its partner record", f"{ref}: {job['partner_record_id']!r}")
        return
    if record["idempotency_key"] != key:
        acc.problem("partner record under another idempotency key",
                    f"{ref}: record {record['id']} has {record['idempotency_key']!r}")

    # phase 2: one row per file; each valid one uploaded once, each HTML one rejected
    if len(rows) != len(sub.files):
        acc.problem("document rows != files", f"{ref}: {len(rows)} rows, {len(sub.files)} files")
    partner_docs = record["documents"]
    doc_keys = Counter(d["idempotency_key"] for d in partner_docs)
    if len(partner_docs) != sub.valid_count or any(n > 1 for n in doc_keys.values()):
        acc.problem("partner documents of a record != its valid documents (exactly once)",
                    f"{ref}: {len(partner_docs)} at the partner ({len(doc_keys)} keys),"
                    f" {sub.valid_count} valid")
    by_doc_id = {d["id"]: d for d in partner_docs}
    for row in rows:
        position, doc_status = int(row["position"]), row["status"]
        doc_error = row["last_error"] or ""
        if row["lease_owner"]:
            acc.problem("document still leased at the end", f"{ref}#{position}")
        if GAVE_UP in doc_error:
            acc.problem("document failed because its attempts ran out",
                        f"{ref}#{position}: {doc_error[:200]}")
            acc.gave_up.append((f"{ref}#{position}", int(job["id"]), int(row["id"])))
        if position in sub.html_positions:
            if doc_status != "rejected" or not doc_error.startswith("type text/html"):
                acc.problem("HTML document not rejected as HTML",
                            f"{ref}#{position}: {doc_status}: {doc_error[:160]}")
            continue
        if doc_status != "uploaded":
            acc.problem(f"valid document left {doc_status}",
                        f"{ref}#{position}: {doc_error[:160]}")
            continue
        want_key = f"{key}:document:{row['id']}"
        sent = by_doc_id.get(row["partner_document_id"] or "")
        if sent is None or sent["idempotency_key"] != want_key:
            acc.problem("uploaded document not at the partner under its key",
                        f"{ref}#{position}: {row['partner_document_id']!r}")
        elif position < len(sub.files) and sent["sha256"] != sha256_of(sub.files[position]):
            acc.problem("partner document differs from the file", f"{ref}#{position}")


def db_figures(monitor: Monitor) -> dict[str, Any]:
    events = {r["event"]: int(r["n"]) for r in monitor.query(
        "SELECT event, COUNT(*) AS n FROM {p}formrelay_log GROUP BY event")}
    attempts = monitor.query(
        "SELECT (SELECT COALESCE(SUM(attempts), 0) FROM {p}formrelay_jobs) AS jobs,"
        " (SELECT COALESCE(SUM(attempts), 0) FROM {p}formrelay_documents) AS documents")[0]
    statuses = {f"jobs {r['status']}": int(r["n"]) for r in monitor.query(
        "SELECT status, COUNT(*) AS n FROM {p}formrelay_jobs GROUP BY status")}
    doc_statuses = {f"documents {r['status']}": int(r["n"]) for r in monitor.query(
        "SELECT status, COUNT(*) AS n FROM {p}formrelay_documents GROUP BY status")}
    gave_up = monitor.query(
        "SELECT (SELECT COUNT(*) FROM {p}formrelay_jobs WHERE last_error LIKE %s) AS jobs,"
        " (SELECT COUNT(*) FROM {p}formrelay_documents WHERE last_error LIKE %s) AS docs",
        (f"%{GAVE_UP}%", f"%{GAVE_UP}%"))[0]
    return {"attempts_records": int(attempts["jobs"]),
            "attempts_documents": int(attempts["documents"]),
            "pauses": events.get("delivery.paused", 0),
            "leases_expired": events.get("lease.expired", 0),
            "gave_up_jobs": int(gave_up["jobs"]), "gave_up_documents": int(gave_up["docs"]),
            "statuses": {**statuses, **doc_statuses}, "log_events": events}


def format_figures(f: Mapping[str, Any]) -> str:
    sim = f["sim"]
    dup = sim["duplicates_suppressed"]
    rows = [
        ("scale / seed", f"{f['scale']:g} / {f['seed']}"),
        ("submissions", f"{f['submissions']} ({f['html_submissions']} with an HTML page"
                        " named .pdf)"),
        ("documents", f"{f['documents']} ({f['valid_documents']} valid,"
                      f" {f['documents'] - f['valid_documents']} HTML)"),
        ("partner records / documents created",
         f"{sim['records_created']} / {sim['documents_created']}"),
        ("partner requests total", f"{sim['requests_total']}  by status"
                                   f" {dict(sorted(sim['requests_by_status'].items()))}"),
        ("forced by the partner", str(dict(sorted(sim["forced"].items())))),
        ("attempts (from the DB)", f"{f['attempts_records'] + f['attempts_documents']}"
                                   f" ({f['attempts_records']} record,"
                                   f" {f['attempts_documents']} document)"),
        ("duplicates suppressed", f"{sum(dup.values())} ({dup.get('record', 0)} record,"
                                  f" {dup.get('document', 0)} document)"),
        ("idempotency conflicts", str(sim["idempotency_conflicts"])),
        ("pauses (delivery.paused)", str(f["pauses"])),
        ("worker kills (SIGKILL)", f"{f['kills']} (workers started: {f['workers_started']})"),
        ("redis FLUSHALL", f"{f['flushes']} ({f['keys_flushed']} keys holding"
                           f" {f['entries_flushed']} queued or scheduled tasks)"),
        ("MariaDB connections killed", str(f["connections_killed"])),
        ("outage", f"{f['outage_seconds']:g} s from T+{f['outage_at']:g}s; work open at its"
                   f" start: {f['open_at_outage']} jobs"),
        ("leases expired", str(f["leases_expired"])),
        ("steps that ran out of attempts", f"{f['gave_up_jobs']} jobs,"
                                           f" {f['gave_up_documents']} documents (by chance"
                                           f" alone {f['expected_gave_up']:.2f} expected:"
                                           f" {f['steps']} steps x {f['failure_rate']:g}"
                                           f"^{f['max_attempts']})"),
        ("end statuses", ", ".join(f"{k} {v}" for k, v in sorted(f["statuses"].items()))),
        ("time to drain", "did not drain by the deadline" if math.isnan(f["drain_seconds"])
         else f"{f['drain_seconds']:.1f} s after T0"
              f" ({f['after_outage']:.1f} s after the outage ended)"),
        ("partner max in flight", str(sim["max_in_flight"])),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(["== chaos figures =="] + [f"{k.ljust(width)}  {v}" for k, v in rows])
