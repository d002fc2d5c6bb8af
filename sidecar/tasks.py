"""Huey tasks: thin doorbells that hand a job or document id to the engine.

The engine takes the step's lease in MySQL, so a task delivered twice, late,
or after the work was done does nothing. Job priority counts up from 0 (most
urgent), Huey's counts down, so the ring converts it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from huey import Huey

from sidecar.backoff import RetryPolicy
from sidecar.breaker import Policy
from sidecar.config import Config
from sidecar.engine import Engine, EngineSettings
from sidecar.errors import ConfigError, PartnerConfigError
from sidecar.file_checks import FilePolicy
from sidecar.partner_registry import Partners, make_client
from sidecar.partners import PartnerConfig
from sidecar.pause import Pause, fingerprint
from sidecar.payload import PayloadRenderer
from sidecar.retention import Retention
from sidecar.seal import Opener
from sidecar.store import Database, DbSettings, Store
from sidecar.throttle import Limits, Throttle

log = logging.getLogger("formrelay.tasks")


def huey_priority(job_priority: int) -> int:
    return max(0, 100 - job_priority)


@dataclass
class Tasks:
    """The registered tasks, and the doorbell that enqueues them."""

    deliver_record: Any
    deliver_document: Any

    def ring_record(self, job_id: int, priority: int, delay: float = 0) -> None:
        self._ring(self.deliver_record, job_id, priority, delay)

    def ring_document(self, document_id: int, priority: int, delay: float = 0) -> None:
        self._ring(self.deliver_document, document_id, priority, delay)

    @staticmethod
    def _ring(task: Any, item_id: int, priority: int, delay: float) -> None:
        if delay > 0:
            task.schedule((item_id,), delay=delay, priority=huey_priority(priority))
        else:
            task(item_id, priority=huey_priority(priority))


def register(huey: Huey, engine: Callable[[], Engine], cfg: Config | None = None) -> Tasks:
    """Define the tasks on `huey`; `engine()` gives the worker's engine when one runs.

    With `cfg`, also the periodic sweep and the hourly cleaner (sidecar.sweep).
    """
    # (Huey's decorator is untyped: the two ignores below say so, nothing more.)

    def run(step: Callable[[Engine], None], what: str) -> None:
        try:
            step(engine())
        except (PartnerConfigError, ConfigError) as exc:  # released unspent; say why, plainly
            log.error("%s: delivery paused: %s", what, exc)

    @huey.task(name="formrelay.deliver_record")  # type: ignore[untyped-decorator]
    def deliver_record(job_id: int) -> None:
        run(lambda e: e.deliver_record(job_id), f"job {job_id}")

    @huey.task(name="formrelay.deliver_document")  # type: ignore[untyped-decorator]
    def deliver_document(document_id: int) -> None:
        run(lambda e: e.deliver_document(document_id), f"document {document_id}")

    tasks = Tasks(deliver_record, deliver_document)
    if cfg is not None:
        _periodic(huey, engine, tasks, cfg)
    return tasks


def _periodic(huey: Huey, engine: Callable[[], Engine], tasks: Tasks, cfg: Config) -> None:
    from sidecar import sweep

    # The consumer checks periodic tasks every cfg.sweep_seconds (see sidecar.queue).
    @huey.periodic_task(every_check, name="formrelay.sweep")  # type: ignore[untyped-decorator]
    def sweep_task() -> None:
        sweep.sweep(engine().store, tasks, cfg.reconcile_days, cfg.max_attempts)

    @huey.periodic_task(hourly(cfg.sweep_seconds), name="formrelay.clean")  # type: ignore[untyped-decorator]
    def clean_task() -> None:
        sweep.clean(engine().store, Retention.from_config(cfg))


def every_check(now: datetime) -> bool:
    return True


def hourly(check_seconds: int, at_second: int = 17 * 60) -> Callable[[datetime], bool]:
    """True at one check an hour: the one in [hh:17:00, hh:17:00 + check_seconds)."""
    def due(now: datetime) -> bool:
        return (now.minute * 60 + now.second - at_second) % 3600 < check_seconds
    return due


def build_engine(cfg: Config, tasks: Tasks, worker_id: str | None = None) -> Engine:
    """The engine a worker process uses, from its configuration; its lease owners begin
    with `worker_id` (the process's heartbeat id)."""
    assert cfg.uploads_dir is not None and cfg.templates_dir is not None
    store = Store(Database(DbSettings.from_config(cfg)), cfg.table_prefix)
    renderer = PayloadRenderer(cfg.templates_dir, cfg.form_templates)
    settings = EngineSettings(
        uploads_dir=cfg.uploads_dir, lease_seconds=cfg.lease_seconds,
        max_attempts=cfg.max_attempts,
        retry=RetryPolicy(cfg.backoff_base, cfg.backoff_factor, cfg.backoff_cap),
        files=FilePolicy(cfg.min_document_bytes, cfg.max_document_bytes, cfg.document_types),
        delete_delivered_files=cfg.delete_delivered_files)
    policy = Policy(cfg.pause_after, cfg.probe_min_seconds, cfg.probe_max_seconds)
    # A step waits for a slot holding its lease: give it back well before that runs out.
    slot_wait = min(30.0, cfg.lease_seconds / 3)

    def protect(partner: PartnerConfig, key: str) -> tuple[Pause, Throttle]:
        """Each partner's own outage pause and ceilings: one partner's outage, or its
        backlog, never holds another's jobs."""
        return (Pause(store, policy, fingerprint(partner.token), key),
                Throttle(store, Limits(partner.concurrency, partner.rps, slot_wait), key))

    partners = Partners.build(cfg.partners, lambda p: make_client(p, cfg.workers), protect)
    return Engine(store, partners, renderer, tasks, settings, worker_id=worker_id,
                  opener=Opener.from_config(cfg))
