"""The dashboard's JSON API under /admin/v1 (docs/dashboard.md).

Errors answer {"error": "<plain message>"}: 400 a bad parameter (named), 404 no
such job, 409 an action the job's status does not allow.
"""

from __future__ import annotations

import json

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from sidecar.admin import actions, read
from sidecar.admin.auth import user
from sidecar.admin.context import Admin, json_errors
from sidecar.admin.filters import BadParameter, bulk_retry, job_query, log_query


def blueprint(admin: Admin) -> Blueprint:
    api = Blueprint("admin_api", __name__)

    json_errors(api)

    @api.get("/stats")
    def stats() -> ResponseReturnValue:
        return jsonify(read.stats(admin))

    @api.get("/jobs")
    def jobs() -> ResponseReturnValue:
        return jsonify(read.jobs(admin, job_query(request.args)))

    @api.get("/jobs/<int:job_id>")
    def job(job_id: int) -> ResponseReturnValue:
        return jsonify(read.job(admin, job_id))

    @api.post("/jobs/<int:job_id>/<any(retry, restart, cancel):action>")
    def act(job_id: int, action: str) -> ResponseReturnValue:
        return jsonify(actions.act(admin, job_id, action, user()))

    @api.post("/jobs/retry")
    def bulk() -> ResponseReturnValue:
        try:
            body = json.loads(request.get_data(cache=True) or b"null")
        except ValueError:
            raise BadParameter("body", "must be JSON") from None
        return jsonify(actions.bulk_retry(admin, bulk_retry(body), user()))

    @api.post("/jobs/<int:job_id>/fields")
    def fields(job_id: int) -> ResponseReturnValue:
        answer = jsonify(actions.reveal(admin, job_id, user()))
        answer.headers["Cache-Control"] = "no-store"  # submitted values: kept by no cache
        return answer

    @api.post("/resume")
    def resume() -> ResponseReturnValue:
        return jsonify(actions.resume(admin, user()))

    @api.get("/incidents")
    def incidents() -> ResponseReturnValue:
        return jsonify(read.incidents(admin))

    @api.get("/logs")
    def logs() -> ResponseReturnValue:
        return jsonify(read.logs(admin, log_query(request.args)))

    return api
