"""Runs the structural check of `sidecar.doc_structure` in worker processes, bounded.

A hostile or broken file can make a parser loop or allocate without end, and a
thread cannot be stopped; a process can. Each check runs in a small pool of
worker processes (`python -m sidecar.doc_sandbox`), started on first use,
reused, at most `POOL_SIZE` per sidecar process (a check waits for a free one;
the wait is not counted against the bounds):

- CPU time: a per-check ITIMER_PROF raises `_OverTime` in the worker (a
  BaseException, so no parser's `except Exception` swallows it);
- memory: a per-check RLIMIT_AS, the worker's address space at rest plus the
  bound, so an allocation past it raises MemoryError;
- wall clock, the backstop for a parser stuck in native code or a stopped
  worker: the caller waits `3 x cpu + 5` seconds, then kills the worker.

Each of the three gives the document a reason that names the bound. A worker
that hit a bound, died or answered nonsense is killed and replaced (one that
dies on a file it was handed first rejects that file; one that had answered
before may have died while idle, so the file goes to the next); one that did
`RECYCLE_AFTER` checks leaves, so its memory does not creep.

The worker gets the caller's open descriptor over a socket (SCM_RIGHTS): the
same open file, never the path reopened. It reads it with pread, so the shared
file offset is not moved. Its stdout and stderr go to /dev/null and logging is
off in it: a parser's messages may quote the file. Its environment is only
what Python needs (no partner token, shared secret or database password), and
it inherits no other descriptor (no database connection).
"""

from __future__ import annotations

import io
import json
import logging
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import warnings
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from sidecar.errors import ConfigError

POOL_SIZE = 2
RECYCLE_AFTER = 500
START_SECONDS = 30.0
_MESSAGE = 4096
_ENV_KEPT = frozenset({"PATH", "LANG", "LC_ALL", "LC_CTYPE", "PYTHONHOME", "VIRTUAL_ENV", "TMPDIR",
                       "PYTHONPATH"})


@dataclass(frozen=True)
class Bounds:
    """What one check may spend: CPU seconds, address space in bytes, image pixels."""

    cpu_seconds: float
    memory_bytes: int
    max_pixels: int

    def wall_seconds(self) -> float:
        return 3 * self.cpu_seconds + 5


def over_time(label: str, bounds: Bounds) -> str:
    return f"{label} could not be checked within the {bounds.cpu_seconds:g} s limit"


def over_memory(label: str, bounds: Bounds) -> str:
    return (f"{label} could not be checked within the "
            f"{bounds.memory_bytes // (1024 * 1024)} MiB memory limit")


# --- the caller's side -------------------------------------------------------------

def _worker_env() -> dict[str, str]:
    """Only what Python needs to find this package: no token, secret or DSN from ours."""
    here = str(Path(__file__).resolve().parents[1])
    env = {k: v for k, v in os.environ.items() if k in _ENV_KEPT}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [here, env.get("PYTHONPATH")]))
    return env


class _Worker:
    """One worker process and the caller's end of its socket."""

    def __init__(self) -> None:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "sidecar.doc_sandbox", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_worker_env())
        except OSError as exc:
            mine.close()
            raise ConfigError([f"the document checker cannot be started ({exc.strerror})"]
                              ) from None
        finally:
            theirs.close()
        self.sock = mine
        self.answered = 0
        try:
            mine.settimeout(START_SECONDS)
            ready = mine.recv(_MESSAGE)
        except OSError:
            ready = b""
        if ready != b"ready":
            self.kill()
            raise ConfigError(["the document checker did not start (see `python -m"
                               " sidecar.doc_sandbox --selftest`)"])

    def ask(self, fd: int, request: dict[str, Any], wall: float) -> dict[str, Any] | None:
        """The worker's answer; None if it is gone. TimeoutError after `wall` seconds."""
        self.sock.settimeout(wall)
        try:
            socket.send_fds(self.sock, [json.dumps(request).encode()], [fd])
        except (BrokenPipeError, ConnectionResetError):
            return None
        try:
            data = self.sock.recv(_MESSAGE)
        except ConnectionResetError:
            return None
        try:
            answer = json.loads(data) if data else None
        except ValueError:
            return None
        return answer if isinstance(answer, dict) else None

    def kill(self) -> None:
        with suppress(ProcessLookupError):
            self.proc.kill()
        self.proc.wait()
        self.sock.close()


class Sandbox:
    """A pool of up to `size` workers; `check` is safe from many threads."""

    def __init__(self, size: int = POOL_SIZE) -> None:
        self.size = size
        self._cond = threading.Condition()
        self._idle: list[_Worker] = []
        self._all: list[_Worker] = []
        self._starting = 0
        self._pid = os.getpid()

    def pids(self) -> list[int]:
        """The worker processes alive now (for tests and `status`)."""
        with self._cond:
            return [w.proc.pid for w in self._all if w.proc.poll() is None]

    def _take(self) -> _Worker:
        with self._cond:
            if self._pid != os.getpid():  # forked: the inherited workers are the parent's
                for inherited in self._all:
                    inherited.sock.close()  # our copy only: the parent's end stays open
                self._idle, self._all, self._starting = [], [], 0
                self._pid = os.getpid()
            while not self._idle and len(self._all) + self._starting >= self.size:
                self._cond.wait()
            if self._idle:
                return self._idle.pop()
            self._starting += 1
        worker: _Worker | None = None
        try:
            worker = _Worker()
            return worker
        finally:
            with self._cond:
                self._starting -= 1
                if worker is not None:
                    self._all.append(worker)
                self._cond.notify()

    def _give_back(self, worker: _Worker, keep: bool) -> None:
        if not keep:
            worker.kill()
        with self._cond:
            if keep:
                self._idle.append(worker)
            elif worker in self._all:
                self._all.remove(worker)
            self._cond.notify()

    def check(self, fd: int, size: int, mime: str, label: str, bounds: Bounds) -> str | None:
        """Why the open file `fd` is refused, or None. ConfigError if no worker starts."""
        request = {"size": size, "mime": mime, "label": label, "cpu": bounds.cpu_seconds,
                   "memory": bounds.memory_bytes, "max_pixels": bounds.max_pixels}
        while True:  # each pass takes a worker out of the pool or starts a new one
            worker = self._take()
            try:
                answer = worker.ask(fd, request, bounds.wall_seconds())
            except TimeoutError:
                self._give_back(worker, keep=False)
                return over_time(label, bounds)
            except BaseException:
                self._give_back(worker, keep=False)
                raise
            self._give_back(worker, keep=answer is not None and not answer.get("exit"))
            if answer is None:
                if worker.answered:  # it may have died while idle: try the next one
                    continue
                return f"{label} could not be checked (the checker stopped on it)"
            worker.answered += 1
            if answer.get("over") == "time":
                return over_time(label, bounds)
            if answer.get("over") == "memory":
                return over_memory(label, bounds)
            reason = answer.get("reason")
            return reason if isinstance(reason, str) else None

    def close(self) -> None:
        with self._cond:
            workers, self._idle, self._all = list(self._all), [], []
        for worker in workers:
            worker.kill()


# --- the worker's side -------------------------------------------------------------

class _OverTime(BaseException):
    """The check used its CPU time."""


def _on_sigprof(signum: int, frame: FrameType | None) -> None:
    raise _OverTime


class _PreadFile(io.RawIOBase):
    """A read-only, seekable view of a descriptor by pread: the descriptor's offset stays."""

    def __init__(self, fd: int, size: int) -> None:
        self._fd, self._size, self._pos = fd, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = os.preadv(self._fd, [buffer], self._pos)
        self._pos += n
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos


def _address_space() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * resource.getpagesize()


def _one(fd: int, request: dict[str, Any], hard: int) -> dict[str, Any]:
    from sidecar.doc_structure import structure_problem

    size = int(request["size"])
    reader = io.BufferedReader(_PreadFile(fd, size), 64 * 1024)
    try:
        budget = _address_space() + int(request["memory"])  # on top of what the worker holds
        if hard != resource.RLIM_INFINITY:
            budget = min(budget, hard)
        resource.setrlimit(resource.RLIMIT_AS, (budget, hard))
        signal.setitimer(signal.ITIMER_PROF, float(request["cpu"]))
        try:
            reason = structure_problem(reader, size, str(request["mime"]),
                                       str(request["label"]), int(request["max_pixels"]))
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
            resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
    except _OverTime:
        return {"over": "time", "exit": True}
    except MemoryError:
        return {"over": "memory", "exit": True}
    finally:
        reader.close()
        os.close(fd)
    return {"reason": reason}


def serve(sock: socket.socket) -> None:
    """Answer checks until the caller closes its end (or a bound was hit)."""
    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")
    import pypdf  # noqa: F401  # loaded before the first check: not counted in its bounds
    from PIL import Image, JpegImagePlugin, PngImagePlugin, TiffImagePlugin  # noqa: F401

    signal.signal(signal.SIGPROF, _on_sigprof)
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    sock.send(b"ready")
    for done in range(1, RECYCLE_AFTER + 1):
        try:
            message, fds, _, _ = socket.recv_fds(sock, _MESSAGE, 1)
        except (ConnectionResetError, OSError):
            return
        if not message or len(fds) != 1:
            return
        answer = _one(fds[0], json.loads(message), hard)
        if done == RECYCLE_AFTER:
            answer["exit"] = True
        sock.send(json.dumps(answer).encode())
        if answer.get("exit"):
            return


def main(argv: list[str]) -> int:
    if argv[:1] == ["--selftest"]:
        import pypdf  # noqa: F401
        from PIL import Image  # noqa: F401
        print("document checker: pypdf and Pillow import")
        return 0
    with socket.socket(fileno=int(argv[0])) as sock:
        serve(sock)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
