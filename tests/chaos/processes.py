"""The chaos suite's processes: a private Redis and a pool of `formrelay worker` processes,
each logging to a file of its own, and how any of them is stopped."""

from __future__ import annotations

import contextlib
import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from devstack.wordpress import free_port


def formrelay_bin() -> str:
    """The venv's `formrelay` when there is one (as in tests/integration), else PATH's."""
    venv_bin = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "formrelay"
    return str(venv_bin) if venv_bin.exists() else "formrelay"


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
