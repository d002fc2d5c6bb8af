"""The wp-admin dashboard's side in the sidecar (docs/dashboard.md): a signed JSON API
and HTML views under /admin/v1, mounted by sidecar.web.create_app."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask

from sidecar.admin import api, views
from sidecar.admin.auth import check_signature
from sidecar.admin.context import Admin
from sidecar.signing import ReplayGuard

PREFIX = "/admin/v1"


def mount(app: Flask, admin: Admin, secret: str, replay: ReplayGuard,
          templates_dir: Path) -> None:
    """Every route under /admin/v1 checks the signature before anything else runs."""
    parent = Blueprint("admin", __name__, url_prefix=PREFIX)
    parent.before_request(lambda: check_signature(secret, replay))
    parent.register_blueprint(api.blueprint(admin))
    parent.register_blueprint(views.blueprint(admin, views.environment(templates_dir)))
    app.register_blueprint(parent)


__all__ = ["Admin", "mount"]
