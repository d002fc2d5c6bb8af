"""The sidecar's HTTP endpoints (a Flask app built by `create_app`).

Later issues add the signed notify and dashboard routes; every route except
/healthz will check the shared-secret signature.
"""

from __future__ import annotations

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue

from sidecar import __version__
from sidecar.store import Store
from sidecar.store.schema import current_version


def create_app(store: Store) -> Flask:
    app = Flask("formrelay")
    app.config["STORE"] = store

    @app.get("/healthz")
    def healthz() -> ResponseReturnValue:
        """Liveness and database reachability; no counts, no secrets."""
        try:
            schema = current_version(store.db, store.prefix)
        except Exception:  # any database failure is "not ready"
            store.db.discard()
            return jsonify(status="database unavailable", version=__version__), 503
        return jsonify(status="ok", version=__version__, schema_version=schema)

    return app
