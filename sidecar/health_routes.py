"""GET /livez, /readyz, /healthz and /metrics: unsigned, and free of any submitted value.

    /livez    200 {"status": "alive"}: the process answers (no database)
    /readyz   200 or 503: database reachable, schema current, uploads readable (when
              this process has an uploads directory); each failed check named
    /healthz  the checks plus delivery state (sidecar.health): 503 when delivery cannot
              proceed (a check failed, delivery paused, no live worker), else 200;
              a backlog, failed jobs or silent workers are problems in a 200's body
    /metrics  Prometheus text (sidecar.metrics_collector)

Mounted by sidecar.web.create_app and by the worker's listener (sidecar.ops_http).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, Response, jsonify
from flask.typing import ResponseReturnValue

from sidecar import __version__
from sidecar.health import DeliveryState, Severity
from sidecar.health_checks import DEFAULT_TTL, CachedReading, readiness
from sidecar.metrics_collector import scrape
from sidecar.store import Store

NO_CACHE = {"Cache-Control": "no-store"}


class HealthRoutes:
    """`backlog_seconds`: FORMRELAY_BACKLOG_MINUTES in seconds; `ttl`: how long one
    reading of the delivery state serves /healthz and /metrics."""

    def __init__(self, store: Store, uploads_dir: Path | None = None,
                 backlog_seconds: float = 3600.0, ttl: float = DEFAULT_TTL) -> None:
        self.store, self.uploads_dir, self.backlog_seconds = store, uploads_dir, backlog_seconds
        self.reading = CachedReading(store, ttl)

    def blueprint(self) -> Blueprint:
        bp = Blueprint("health", __name__)
        bp.add_url_rule("/livez", "livez", self.livez)
        bp.add_url_rule("/readyz", "readyz", self.readyz)
        bp.add_url_rule("/healthz", "healthz", self.healthz)
        bp.add_url_rule("/metrics", "metrics", self.metrics)
        return bp

    def livez(self) -> ResponseReturnValue:
        return jsonify(status="alive", version=__version__), 200, NO_CACHE

    def readyz(self) -> ResponseReturnValue:
        ready = readiness(self.store, self.uploads_dir)
        body = {"status": "ready" if ready.ok else "not ready", "version": __version__,
                "schema_version": ready.schema_version, "checks": ready.as_json(),
                "reasons": ready.failures()}
        return jsonify(body), 200 if ready.ok else 503, NO_CACHE

    def healthz(self) -> ResponseReturnValue:
        body, code = self.health()
        return jsonify(body), code, NO_CACHE

    def health(self) -> tuple[dict[str, Any], int]:
        ready = readiness(self.store, self.uploads_dir)
        reasons = ready.failures()
        state: DeliveryState | None = None
        if ready.ok or ready.schema_version:  # tables there: delivery state can be read
            try:
                state = self.reading.get().state
            except Exception as exc:
                reasons.append(f"delivery state: unreadable ({type(exc).__name__})")
        problems = state.problems(self.backlog_seconds) if state else []
        # Delivery cannot proceed: paused, or nobody to deliver. A backlog, failed jobs and
        # silent workers (others live) slow it or need a look, but it proceeds: 200.
        reasons += [p.reason for p in problems if p.kind in ("paused", "no_worker")]
        severity = max((p.severity for p in problems), default=Severity.OK)
        if reasons:
            severity = Severity.CRITICAL if not ready.ok or state is None else max(
                severity, Severity.WARNING)
        status = "unavailable" if reasons else ("degraded" if problems else "ok")
        body = {"status": status, "severity": severity.name, "version": __version__,
                "schema_version": ready.schema_version, "reasons": reasons,
                "checks": ready.as_json(),
                "delivery": state.as_json() if state else None,
                "problems": [{"kind": p.kind, "severity": p.severity.name, "reason": p.reason}
                             for p in problems]}
        return body, 503 if reasons else 200

    def metrics(self) -> ResponseReturnValue:
        text, content_type = scrape(self.reading, self.backlog_seconds)
        return Response(text, status=200, content_type=content_type, headers=NO_CACHE)
