"""The Huey instance: the doorbell that wakes workers. State lives in MySQL.

With no FORMRELAY_REDIS_URL the queue is embedded (SQLite under the data
directory: one host, no extra service); with it, Redis, so any number of
`formrelay worker` processes on any number of hosts share one queue. Both
honour task priority. Huey keeps no results: outcomes are rows in MySQL.
"""

from __future__ import annotations

from typing import Any

from huey import Huey, PriorityRedisHuey, SqliteHuey
from huey.consumer import Consumer, Scheduler

from sidecar.config import Config


def build_huey(config: Config, name: str | None = None) -> Huey:
    """The queue named by FORMRELAY_QUEUE_NAME, so several sites can share one Redis."""
    name = name or config.queue_name
    if config.redis_url:
        return PriorityRedisHuey(name, url=config.redis_url, results=False)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteHuey(name, filename=str(config.data_dir / "queue.sqlite3"), results=False)


def describe(huey: Huey) -> str:
    """Where the queue lives, for start-up lines (no credentials)."""
    if isinstance(huey, PriorityRedisHuey):
        return "redis"
    return f"sqlite ({huey.storage.filename})"


def create_consumer(huey: Huey, config: Config) -> Any:
    """Huey's consumer, checking periodic tasks every FORMRELAY_SWEEP_SECONDS (not 60)."""

    class SweepScheduler(Scheduler):  # type: ignore[misc]
        periodic_task_seconds = config.sweep_seconds

    class FormRelayConsumer(Consumer):  # type: ignore[misc]
        scheduler_class = SweepScheduler

    return FormRelayConsumer(huey, workers=config.workers, worker_type=config.worker_type,
                             shutdown_timeout=config.shutdown_seconds)
