"""The monitor: a daemon thread in `web`, `worker` and `run` that opens and resolves
incidents (sidecar.incidents) and sends their messages (sidecar.alerts).

Each round (every `interval` s: min(FORMRELAY_SWEEP_SECONDS, 30) by default) one
process on one host evaluates, under a MySQL named lock; the database's unique
keys make a second evaluation harmless anyway. Then every process sends the
messages due for the channels it has, each leased. A round never raises and
touches no delivery code path: a hung SMTP server or webhook costs this thread
its own time, at most FORMRELAY_ALERT_TIMEOUT_SECONDS per message.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from sidecar import alerts, health, incidents
from sidecar.alerts import Channel, Renderer, Sender, SendPolicy
from sidecar.config import DEFAULT_TEMPLATES, Config
from sidecar.incidents import Facts, Wanted
from sidecar.store import Incident, Store

log = logging.getLogger("formrelay.monitor")
LOCK = "formrelay_monitor"


@dataclass(frozen=True)
class MonitorSettings:
    interval: float = 30.0
    backlog_seconds: float = 3600.0
    no_worker_after: float = 120.0  # 2 sweep intervals
    digest_seconds: float = 900.0
    uploads_dir: Path | None = None  # None: this process does not judge the uploads directory
    dashboard_url: str = ""
    templates_dir: Path = DEFAULT_TEMPLATES
    send: SendPolicy = field(default_factory=SendPolicy)

    @classmethod
    def from_config(cls, cfg: Config, **changes: object) -> MonitorSettings:
        made = cls(interval=float(min(cfg.sweep_seconds, 30)),
                   backlog_seconds=cfg.backlog_minutes * 60.0,
                   no_worker_after=2.0 * cfg.sweep_seconds,
                   digest_seconds=cfg.alert_digest_minutes * 60.0,
                   uploads_dir=cfg.uploads_dir, dashboard_url=cfg.dashboard_url,
                   templates_dir=cfg.templates_dir or DEFAULT_TEMPLATES,
                   send=SendPolicy(lease_seconds=max(60.0, 6 * cfg.alert_timeout)))
        return replace(made, **changes)  # type: ignore[arg-type]


class Monitor:
    def __init__(self, store: Store, settings: MonitorSettings, channels: Sequence[Channel],
                 owner: str | None = None) -> None:
        self.store, self.settings = store, settings
        self.channel_names = tuple(c.name for c in channels)
        self.owner = owner or f"{socket.gethostname()[:64]}:{os.getpid()}:monitor:" \
                              f"{secrets.token_hex(4)}"
        self.sender = Sender(store, channels, Renderer(settings.templates_dir,
                                                       settings.dashboard_url),
                             self.owner, settings.send)
        self._no_rows_since: float | None = None  # no worker row at all, seen by this process
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="monitor", daemon=True)

    # ---- the thread --------------------------------------------------------------------

    def start(self) -> Monitor:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.settings.interval):
            self.round()

    def round(self) -> None:
        """Evaluate (if this process holds the lock), then send what is due. Never raises."""
        try:
            with self.store.named_lock(LOCK) as mine:
                if mine:
                    self.evaluate()
        except Exception as exc:  # the database hiccuped: the next round tries again
            log.warning("monitor: evaluation failed: %s: %s", type(exc).__name__, exc)
        self.sender.send_due()

    # ---- one evaluation ----------------------------------------------------------------

    def facts(self) -> Facts:
        state = health.read_state(self.store)
        return Facts(state=state, now=self.store.db_now(),
                     backlog_seconds=self.settings.backlog_seconds,
                     no_worker_for=self._no_worker_for(state),
                     no_worker_after=self.settings.no_worker_after,
                     uploads_readable=self._uploads_readable(),
                     uploads_quiet=3 * self.settings.interval,
                     failed=self.store.failed_summary() if state.failed else None)

    def evaluate(self) -> None:
        facts = self.facts()
        open_now = self.store.open_incidents()
        plan = incidents.plan(facts, open_now)
        for wanted in plan.open:
            self._open(wanted, facts)
        escalated = {i.id for i, _ in plan.escalate}
        for incident, wanted in plan.update:
            self.store.update_incident(incident.id, wanted.severity, wanted.summary,
                                       wanted.details)
            if incident.id in escalated:
                self.store.cut_digest(incident.id, incident.digest_seq, self.channel_names,
                                      incidents.message_facts(incident.kind, wanted))
            elif incident.kind == "failed":
                self._digest(incident, wanted, facts)
        for incident in plan.resolve:
            self.store.resolve_incident(incident.id, self.channel_names,
                                        incidents.message_facts(incident.kind, None, incident))

    def _open(self, wanted: Wanted, facts: Facts) -> Incident | None:
        failures = facts.failed if wanted.kind == "failed" else None
        return self.store.open_incident(
            wanted.kind, wanted.severity, wanted.summary, wanted.details, self.channel_names,
            incidents.message_facts(wanted.kind, wanted, failures=failures))

    def _digest(self, incident: Incident, wanted: Wanted, facts: Facts) -> None:
        since = incident.digest_at or incident.opened_at
        if (facts.now - since).total_seconds() < self.settings.digest_seconds:
            return  # not yet: spares the query
        new = self.store.failed_summary(since=since)
        if incidents.digest_due(incident, facts.now, self.settings.digest_seconds, new.failed):
            self.store.cut_digest(incident.id, incident.digest_seq, self.channel_names,
                                  incidents.message_facts("failed", wanted, failures=new))

    def _no_worker_for(self, state: health.DeliveryState) -> float | None:
        """Seconds since any worker's last heartbeat; None while one is live."""
        if state.live_workers:
            self._no_rows_since = None
            return None
        rows = self.store.workers()
        if rows:
            self._no_rows_since = None
            return min(w.seconds_since_seen for w in rows)
        # Every worker stopped cleanly (rows removed): count from when this process saw it.
        if self._no_rows_since is None:
            self._no_rows_since = time.monotonic()
        return time.monotonic() - self._no_rows_since

    def _uploads_readable(self) -> bool | None:
        path = self.settings.uploads_dir
        if path is None:
            return None
        try:
            with os.scandir(path) as entries:
                next(entries, None)
            return os.access(path, os.R_OK | os.X_OK)
        except OSError:
            return False


def start(store: Store, cfg: Config) -> Monitor:
    """The monitor of a `web`, `worker` or `run` process, started."""
    return Monitor(store, MonitorSettings.from_config(cfg), alerts.channels(cfg)).start()
