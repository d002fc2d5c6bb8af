"""The Huey instance: the doorbell that wakes workers. State lives in MySQL.

With no FORMRELAY_REDIS_URL the queue is embedded (SQLite under the data
directory: one host, no extra service); with it, Redis, so any number of
`formrelay worker` processes on any number of hosts share one queue. Both
honour task priority. Huey keeps no results: outcomes are rows in MySQL.
Messages are signed with a key derived from FORMRELAY_SHARED_SECRET and checked
before they are unpickled (sidecar.queue_signing), so every process that uses
the queue needs the secret.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from typing import Any

from huey import Huey
from huey.consumer import WORKER_PROCESS, Consumer, ProcessEnvironment, Scheduler

from sidecar.config import Config
from sidecar.errors import ConfigError
from sidecar.queue_signing import QueueSerializer, SignedRedisQueue, SignedSqliteQueue
from sidecar.queue_storage import WakingSqliteStorage

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def build_huey(config: Config, name: str | None = None) -> Huey:
    """The queue named by FORMRELAY_QUEUE_NAME, so several sites can share one Redis."""
    if not config.shared_secret:
        raise ConfigError(["FORMRELAY_SHARED_SECRET is required: it signs the queue's messages"])
    name = name or config.queue_name
    serializer = QueueSerializer(config.shared_secret)
    if config.redis_url:
        return SignedRedisQueue(name, url=config.redis_url, results=False,
                                serializer=serializer)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    return SignedSqliteQueue(name, filename=str(config.data_dir / "queue.sqlite3"),
                             results=False, serializer=serializer)


def describe(huey: Huey) -> str:
    """Where the queue lives, for start-up lines: never a password (see redis_location)."""
    if isinstance(huey, SignedRedisQueue):
        return f"redis {huey.location}, signed"
    return f"sqlite ({huey.storage.filename}), signed"


class ChildProcesses(ProcessEnvironment):  # type: ignore[misc]
    """Process workers that leave SIGINT and SIGTERM to their parent, and die with it.

    A stop signal often reaches the whole process group (Ctrl-C in a terminal,
    systemd's default KillMode): Huey's children would abort their task at once.
    Here they ignore both; the parent stops them through the stop flag, and only
    after the shutdown timeout interrupts them, with SIGUSR1. A parent killed
    outright (SIGKILL, the OOM killer) takes them along (Linux's parent-death
    signal): an orphan would go on taking work under a heartbeat that has stopped,
    whose leases the sweep gives to others.
    """

    def __init__(self, *args: Any) -> None:
        super().__init__(signal.SIGTERM, signal.SIGUSR1)
        self.parent = os.getpid()

    def init_child(self, process: Any) -> None:
        super().init_child(process)  # SIGTERM ignored, SIGUSR1 interrupts a running task
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        die_with_parent(self.parent)


def die_with_parent(parent: int) -> None:
    """SIGKILL this process when `parent` ends (Linux; elsewhere nothing is set)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the parent was gone before the signal was set
        os._exit(1)


def create_consumer(huey: Huey, config: Config) -> Any:
    """Huey's consumer, checking periodic tasks every FORMRELAY_SWEEP_SECONDS (not 60);
    SIGINT and SIGTERM both stop it gracefully (in-flight steps may finish for up to
    FORMRELAY_SHUTDOWN_SECONDS), whether sent to the process or to its whole group."""

    class SweepScheduler(Scheduler):  # type: ignore[misc]
        periodic_task_seconds = config.sweep_seconds

    class FormRelayConsumer(Consumer):  # type: ignore[misc]
        scheduler_class = SweepScheduler

        def get_environment(self, worker_type: str) -> Any:
            if worker_type == WORKER_PROCESS:
                return ChildProcesses()
            return super().get_environment(worker_type)

        def start(self) -> None:
            # Huey sets its handlers after forking its workers. Until then SIGTERM is
            # KeyboardInterrupt (cli.main), and one that lands in a fork's after-fork hooks
            # (logging has one) is printed and dropped: the consumer would never stop.
            # Huey's handlers only note the signal: the loop acts on it after the forks.
            self._set_signal_handlers()
            super().start()

        def stop(self, graceful: bool = False) -> None:
            # Idle workers wait inside the queue's dequeue, not on the stop flag: end the
            # waits of this process's threads now (others return within READ_TIMEOUT_SECONDS).
            self.stop_flag.set()
            if isinstance(self.huey.storage, WakingSqliteStorage):
                self.huey.storage.wake_all()
            super().stop(graceful)

    consumer = FormRelayConsumer(huey, workers=config.workers, worker_type=config.worker_type,
                                 shutdown_timeout=config.shutdown_seconds)
    # Huey's public options make one signal graceful and the other abrupt: set the table
    # behind them so both are graceful (restart=False, graceful=True).
    consumer._signal_actions[signal.SIGINT] = (False, True)
    consumer._signal_actions[signal.SIGTERM] = (False, True)
    return consumer
