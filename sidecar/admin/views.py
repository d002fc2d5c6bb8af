"""The dashboard's HTML views: GET /admin/v1/view/<name>, fragments for wp-admin's page.

Rendered by Jinja2 from templates/admin/ with autoescape on for every template;
the data are the JSON API's answers (sidecar.admin.read). Links are relative to
the admin page (`?page=formrelay&view=...`) and paginate with `paged`. A bad
parameter or a missing job answers JSON {"error": ...} (400, 404) like the API.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, request
from flask.typing import ResponseReturnValue
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from sidecar.admin import read
from sidecar.admin.chart import Bucket, chart
from sidecar.admin.context import Admin, json_errors
from sidecar.admin.filters import (
    LEVELS,
    JobQuery,
    LogQuery,
    job_id,
    job_query,
    log_query,
)
from sidecar.states import JOB_RULES, JOB_STATUSES, EventKind, Status

HTML = "text/html; charset=utf-8"


def environment(templates_dir: Path) -> Environment:
    env = Environment(loader=FileSystemLoader(str(templates_dir / "admin")), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.globals.update(link=link, when=when, age=age, size=size, statuses=tuple(map(str,
                       JOB_STATUSES)))
    return env


def link(view: str, **params: Any) -> str:
    """A link to a dashboard view, relative to the admin page; empty values are left out."""
    query = {"page": "formrelay", "view": view}
    query.update({k: str(v) for k, v in params.items() if v not in (None, "")})
    if "paged" in query:  # last, as WordPress writes it
        query["paged"] = query.pop("paged")
    return "?" + urlencode(query)


def when(value: str | None) -> str:
    """An API time (UTC ISO) as people read it: 2026-12-01 13:05:00."""
    return value.replace("T", " ")[:19] if value else ""


def age(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = int(seconds)
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min"
    if s < 172800:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} days {s % 86400 // 3600} h"


def size(n: int | None) -> str:
    if n is None:
        return ""
    for unit in ("bytes", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return ""


def job_params(q: JobQuery, **changes: Any) -> dict[str, Any]:
    """The jobs list's current parameters (as the view's links carry them), changed."""
    f = q.filter
    params: dict[str, Any] = {
        "status": f.status, "form_id": f.form_id, "search": f.search, "partner": f.partner,
        "from": f.date_from.isoformat() if f.date_from else None,
        "to": f.date_to.isoformat() if f.date_to else None,
        "orderby": None if q.orderby == "id" else q.orderby,
        "order": None if q.order == "desc" else q.order,
        "per_page": None if q.per_page == 20 else q.per_page,
    }
    params.update(changes)
    return params


def log_params(q: LogQuery, **changes: Any) -> dict[str, Any]:
    params: dict[str, Any] = {k: v for k, v in asdict(q).items() if k not in ("page",)}
    params["from"] = q.date_from.isoformat() if q.date_from else None
    params["to"] = q.date_to.isoformat() if q.date_to else None
    params.pop("date_from")
    params.pop("date_to")
    params["per_page"] = None if q.per_page == 50 else q.per_page
    params.update(changes)
    return params


def allowed(status: str) -> list[str]:
    """The actions a job in `status` takes, in the order the buttons show."""
    kinds = {"retry": EventKind.RETRY, "restart": EventKind.RESTART, "cancel": EventKind.CANCEL}
    return [name for name, kind in kinds.items() if (Status(status), kind) in JOB_RULES]


def blueprint(admin: Admin, env: Environment) -> Blueprint:
    views = Blueprint("admin_views", __name__)

    def render(name: str, status: int = 200, **context: Any) -> ResponseReturnValue:
        return Response(env.get_template(name).render(**context), status, content_type=HTML)

    json_errors(views)

    def args() -> Mapping[str, str]:
        return request.args

    @views.get("/view/overview")
    def overview() -> ResponseReturnValue:
        data = read.stats(admin)
        buckets = [Bucket(datetime.fromisoformat(h["hour"]), h["delivered"], h["failed"])
                   for h in data["hourly"]]
        return render("overview.html", current="overview", stats=data, chart=chart(buckets),
                      incidents=read.incidents(admin)["incidents"])

    @views.get("/view/jobs")
    def jobs() -> ResponseReturnValue:
        q = job_query(args(), page_name="paged")
        data = read.jobs(admin, q)
        f = q.filter
        bulk_filter = {"form_id": f.form_id, "search": f.search or "",
                       "from": f.date_from.isoformat() if f.date_from else "",
                       "to": f.date_to.isoformat() if f.date_to else "",
                       "partner": f.partner or ""}
        return render("jobs.html", current="jobs", q=q, data=data, params=job_params,
                      allowed=allowed, bulk_filter=json.dumps(bulk_filter))

    @views.get("/view/job")
    def job() -> ResponseReturnValue:
        data = read.job(admin, job_id(args().get("id", "")))
        return render("job.html", current="job", data=data, actions=allowed(data["job"]["status"]))

    @views.get("/view/logs")
    def logs() -> ResponseReturnValue:
        q = log_query(args(), page_name="paged")
        return render("logs.html", current="logs", q=q, data=read.logs(admin, q),
                      params=log_params, levels=LEVELS, events=admin.store.log_events())

    return views
