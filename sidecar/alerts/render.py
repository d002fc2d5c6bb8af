"""Alert wording: Jinja2 templates in templates/alerts/, rendered from value-free facts.

The context holds the incident (id, kind, severity, times), the message (opened,
digest or resolved) and its facts (counts, form ids and names, categories, the
summary the rules wrote), and links into the wp-admin dashboard built from
FORMRELAY_DASHBOARD_URL. No submitted value or file name is ever in the context,
so no template can print one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from sidecar.store.incidents import Alert, Incident

TITLES = {"paused": "Delivery paused", "failed": "Jobs failed", "backlog": "Delivery backlog",
          "no_worker": "No worker running", "uploads": "Uploads directory unreadable"}


@dataclass(frozen=True)
class Rendered:
    event: str  # incident.opened | incident.digest | incident.resolved
    subject: str
    text: str
    payload: dict[str, Any]  # the signed JSON webhook's body
    slack: dict[str, Any]  # the Slack-compatible body


def dashboard_link(base: str, **params: Any) -> str:
    """`base` (the wp-admin FormRelay page) with `params` added; "" without a base."""
    if not base:
        return ""
    parts = urlsplit(base)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in params]
    query += [(k, str(v)) for k, v in params.items() if v not in (None, "")]
    return urlunsplit(parts._replace(query=urlencode(query)))


class Renderer:
    def __init__(self, templates_dir: Path, dashboard_url: str = "") -> None:
        # Plain text (mail, chat) and JSON written with tojson: nothing here is HTML.
        self.env = Environment(loader=FileSystemLoader(str(templates_dir / "alerts")),
                               autoescape=False, undefined=StrictUndefined,  # noqa: S701
                               trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
        self.env.filters["slack"] = slack_escape
        self.dashboard_url = dashboard_url

    def context(self, incident: Incident, alert: Alert) -> dict[str, Any]:
        facts = alert.facts
        base = self.dashboard_url
        new = facts.get("new") or {}
        return {
            "incident": {"id": incident.id, "kind": incident.kind,
                         "title": TITLES.get(incident.kind, incident.kind),
                         "opened_at": _time(incident.opened_at),
                         "resolved_at": _time(incident.resolved_at)},
            "message": alert.message, "seq": alert.seq,
            "severity": facts.get("severity", incident.severity),
            "summary": facts.get("summary", incident.summary),
            "details": facts.get("details", {}), "new": new,
            "links": {"overview": dashboard_link(base, view="overview"),
                      "failed": dashboard_link(base, view="jobs", status="failed"),
                      "forms": {int(f["id"]): dashboard_link(base, view="jobs", status="failed",
                                                             form_id=f["id"])
                                for f in new.get("forms", [])}},
        }

    def render(self, incident: Incident, alert: Alert) -> Rendered:
        ctx = self.context(incident, alert)
        subject = " ".join(self.env.get_template("subject.txt.j2").render(ctx).split())
        text = self.env.get_template("body.txt.j2").render(ctx)
        ctx = {**ctx, "subject": subject, "text": text}
        payload = json.loads(self.env.get_template("webhook.json.j2").render(ctx))
        slack = json.loads(self.env.get_template("slack.json.j2").render(ctx))
        return Rendered(f"incident.{alert.message}", subject, text, payload, slack)


def slack_escape(text: str) -> str:
    """Slack's mrkdwn control characters, so a form name cannot ping <!channel>."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _time(value: Any) -> str | None:
    return value.isoformat(sep=" ", timespec="seconds") if value is not None else None
