"""A worker's operations side: its /livez /readyz /healthz /metrics listener
(FORMRELAY_WORKER_LISTEN, off when empty) and the metrics set-up of its process tree.

With process workers (FORMRELAY_WORKER_TYPE=process) the counters of every forked
worker are kept in prometheus_client's multiprocess files, in a directory of this
process tree under FORMRELAY_DATA_DIR (`metrics-<pid>`): emptied at start, removed at
a clean stop, and directories of earlier trees whose process is gone are removed too.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask

from sidecar import config, metrics
from sidecar.health_routes import HealthRoutes
from sidecar.store import Store

log = logging.getLogger("formrelay")
METRICS_DIR_PREFIX = "metrics-"


def serve(app: Any, listen: str, name: str = "http") -> Callable[[], None]:
    """Serve `app` on `listen` (host:port) from a thread; return the function that stops it."""
    from waitress.server import create_server

    host, _, port = listen.rpartition(":")
    server = create_server(app, host=host.strip("[]"), port=int(port), threads=8)
    closing = threading.Event()

    def run() -> None:
        try:
            server.run()
        except OSError:
            if not closing.is_set():  # closing the socket wakes select() with EBADF
                raise

    def stop() -> None:
        closing.set()
        server.close()

    threading.Thread(target=run, name=name, daemon=True).start()
    log.info("%s listening on %s", name, listen)
    return stop


def health_routes(cfg: config.Config, store: Store) -> HealthRoutes:
    return HealthRoutes(store, cfg.uploads_dir, backlog_seconds=cfg.backlog_minutes * 60)


def create_ops_app(routes: HealthRoutes) -> Flask:
    app = Flask("formrelay-worker")
    app.register_blueprint(routes.blueprint())
    return app


class Ops:
    def __init__(self, stop_http: Callable[[], None] | None, metrics_dir: Path | None) -> None:
        self._stop_http, self.metrics_dir = stop_http, metrics_dir

    def stop(self) -> None:
        if self._stop_http is not None:
            self._stop_http()
        if self.metrics_dir is not None:
            shutil.rmtree(self.metrics_dir, ignore_errors=True)


def start(cfg: config.Config, store: Store, listen: bool = True) -> Ops:
    """Before the consumer forks anything: the metrics set-up, then (with `listen` and
    FORMRELAY_WORKER_LISTEN set) the listener. `run` passes listen=False: its main
    HTTP app has the same routes."""
    directory = None
    if cfg.worker_type == "process":
        directory = cfg.data_dir / f"{METRICS_DIR_PREFIX}{os.getpid()}"
        _remove_orphans(cfg.data_dir)
        metrics.enable_multiprocess(directory)
    stop_http = None
    if listen and cfg.worker_listen:
        stop_http = serve(create_ops_app(health_routes(cfg, store)), cfg.worker_listen,
                          name="worker http")
    return Ops(stop_http, directory)


def _remove_orphans(data_dir: Path) -> None:
    """Metrics directories of process trees that ended without cleaning up (killed)."""
    if not data_dir.is_dir():
        return
    for path in data_dir.glob(f"{METRICS_DIR_PREFIX}*"):
        pid = path.name.removeprefix(METRICS_DIR_PREFIX)
        if pid.isdigit() and int(pid) != os.getpid() and not _running(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
