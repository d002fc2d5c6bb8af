"""The sidecar's HTTP endpoints (a Flask app built by `create_app`).

    GET  /livez, /readyz, /healthz, /metrics   health and metrics (sidecar.health_routes:
                      unsigned, no submitted value)
    POST /v1/notify   {"job_id": N}, signed by the bridge: ring the job's doorbell
    /admin/v1/...     the wp-admin dashboard's JSON API and HTML views (sidecar.admin,
                      docs/dashboard.md), signed by the bridge for the acting user

Every route but those four checks the shared-secret signature (sidecar.signing), and
every notify and admin POST its nonce, once, against the store (store/nonces.py).
"""

from __future__ import annotations

import json
from pathlib import Path

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue

from sidecar.admin import Admin, mount
from sidecar.admin.auth import MAX_BODY_BYTES
from sidecar.config import DEFAULT_TEMPLATES
from sidecar.doorbell import Doorbell
from sidecar.health_routes import HealthRoutes
from sidecar.retention import Retention
from sidecar.seal import NO_KEYS, Opener
from sidecar.signing import NOTIFY, BadSignature, verify
from sidecar.states import CLAIMABLE
from sidecar.store import Store

MAX_NOTIFY_BYTES = 1024


def create_app(store: Store, secret: str, doorbell: Doorbell, *,
               templates_dir: Path | None = None, retention: Retention | None = None,
               health: HealthRoutes | None = None, opener: Opener | None = None) -> Flask:
    """`doorbell` rings jobs (notify, admin actions) and documents (admin actions);
    `retention`: the settings the job view quotes (default: config.py's defaults);
    `health`: the health and metrics routes (default: database and schema checks only);
    `opener`: the keys that open sealed snapshots for Reveal (default: none)."""
    app = Flask("formrelay")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES  # notify holds itself to less
    mount(app, Admin(store, doorbell, retention=retention or Retention(),
                     opener=opener or NO_KEYS),
          secret, store, templates_dir or DEFAULT_TEMPLATES)

    app.register_blueprint((health or HealthRoutes(store)).blueprint())

    @app.post("/v1/notify")
    def notify() -> ResponseReturnValue:
        body = request.stream.read(MAX_NOTIFY_BYTES + 1)
        if len(body) > MAX_NOTIFY_BYTES:
            return jsonify(error="body too large"), 413
        nonce = request.headers.get("X-FormRelay-Nonce")
        try:
            verify(secret, request.headers.get("X-FormRelay-Timestamp"), nonce,
                   request.headers.get("X-FormRelay-Signature"), body)
        except BadSignature as exc:
            return jsonify(error=str(exc)), 401
        assert nonce is not None
        if not store.first_use(NOTIFY, nonce):
            return jsonify(error="replayed request"), 401
        job_id = _job_id(body)
        if job_id is None:
            return jsonify(error='body must be {"job_id": <positive integer>}'), 400
        found = store.job_status(job_id)  # two columns: this runs once per form POST
        if found is None:
            return jsonify(error=f"no job {job_id}"), 404
        status, priority = found
        if status in CLAIMABLE:  # a ring before it is due does nothing
            doorbell.ring_record(job_id, priority)
        return jsonify(job_id=job_id, status=str(status)), 202

    return app


def _job_id(body: bytes) -> int | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or set(data) != {"job_id"}:
        return None
    value = data["job_id"]
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
