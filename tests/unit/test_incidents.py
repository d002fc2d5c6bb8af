"""The incident rules (sidecar.incidents) and the alert wording (templates/alerts): pure."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from sidecar import config
from sidecar.alerts import Renderer
from sidecar.alerts.render import dashboard_link
from sidecar.config import DEFAULT_TEMPLATES
from sidecar.errors import ConfigError
from sidecar.health import DeliveryState
from sidecar.incidents import Facts, digest_due, message_facts, plain_cause, plan, wanted
from sidecar.store import Alert, FailedSummary, Incident
from sidecar.store.incidents import FailedForm

pytestmark = pytest.mark.unit
NOW = datetime(2026, 12, 5, 12, 0, 0)


def facts(**state: Any) -> Facts:
    more = {k: state.pop(k) for k in ("no_worker_for", "uploads_readable") if k in state}
    return Facts(state=DeliveryState(**{"live_workers": 1, **state}), now=NOW,
                 backlog_seconds=3600, no_worker_after=120,
                 **{"no_worker_for": None, **more})


def incident(kind: str, severity: str = "warning", age: float = 0) -> Incident:
    at = NOW - timedelta(seconds=age)
    return Incident(1, kind, severity, "s", {}, at, at, None, 0, at)


def test_each_condition_wants_its_incident() -> None:
    assert wanted(facts()) == {}
    paused = wanted(facts(paused=True, needs_person=True,
                          cause="HTTP 401 auth (check FORMRELAY_PARTNER_TOKEN): Jane Doe"))
    assert paused["paused"].severity == "critical"
    assert "needs a person" in paused["paused"].summary and "Jane" not in paused["paused"].summary
    assert wanted(facts(paused=True, cause="timeout"))["paused"].severity == "warning"
    assert set(wanted(facts(oldest_waiting_seconds=4000))) == {"backlog"}
    assert wanted(facts(uploads_readable=False))["uploads"].severity == "critical"


def test_no_worker_waits_two_sweep_intervals_and_some_silent_workers_open_nothing() -> None:
    assert wanted(facts(live_workers=0, no_worker_for=100)) == {}
    assert "no_worker" in wanted(facts(live_workers=0, no_worker_for=130))
    assert wanted(facts(silent_workers=("h:1:a",))) == {}


def test_plan_opens_updates_escalates_and_resolves_what_this_process_judges() -> None:
    open_now = {"paused": incident("paused"), "backlog": incident("backlog"),
                "uploads": incident("uploads", "critical")}
    p = plan(facts(paused=True, needs_person=True, cause="HTTP 403 auth"), open_now)
    assert [i.kind for i, _ in p.escalate] == ["paused"]
    assert [i.kind for i in p.resolve] == ["backlog"]  # uploads: this process does not check
    quiet = plan(facts(uploads_readable=True), {"uploads": incident("uploads", age=10)})
    assert quiet.resolve == ()  # reported unreadable 10 s ago, by some process
    later = plan(facts(uploads_readable=True), {"uploads": incident("uploads", age=100)})
    assert [i.kind for i in later.resolve] == ["uploads"]
    assert [w.kind for w in plan(facts(oldest_waiting_seconds=4000), {}).open] == [
        "backlog"]


def test_a_digest_waits_for_new_failures_and_the_digest_window() -> None:
    failed = incident("failed", "critical", age=600)
    assert not digest_due(failed, NOW, 900, 5)
    assert not digest_due(incident("failed", age=1000), NOW, 900, 0)
    assert digest_due(incident("failed", age=1000), NOW, 900, 5)
    assert not digest_due(incident("paused", age=1000), NOW, 900, 5)


def test_plain_cause_keeps_status_and_category_only() -> None:
    assert plain_cause("5 failures in a row, the last: HTTP 503 server: Jane's record") == (
        "5 failures in a row, the last: HTTP 503 server")
    assert plain_cause("timed out waiting for the partner") == "timed out waiting for the partner"


def test_dashboard_links_keep_the_page_and_add_filters() -> None:
    base = "https://site.test/wp-admin/admin.php?page=formrelay"
    assert dashboard_link(base, view="jobs", status="failed", form_id=12) == (
        base + "&view=jobs&status=failed&form_id=12")
    assert dashboard_link("", view="jobs") == ""


def render(kind: str, message: str, facts_: dict[str, Any]) -> Any:
    alert = Alert(1, 9, message, 1 if message == "digest" else 0, "email", 1, facts_)
    inc = Incident(9, kind, "critical", "s", {}, NOW, NOW,
                   NOW if message == "resolved" else None, 0, NOW)
    return Renderer(DEFAULT_TEMPLATES, "https://site.test/wp-admin/admin.php?page=formrelay").render(
        inc, alert)


def test_the_failed_digest_names_counts_forms_categories_and_links() -> None:
    new = FailedSummary(3, (FailedForm(12, "Intake <b>", 2), FailedForm(14, "", 1)),
                        {"validation": 2, "server": 1})
    out = render("failed", "digest",
                 message_facts("failed", None, incident("failed", "critical"), new))
    assert out.subject == "[FormRelay] CRITICAL: 3 jobs failed permanently (incident 9)"
    assert "Since the last message, 3 jobs failed" in out.text
    assert "Intake <b> (form 12): 2  https://site.test/wp-admin/admin.php?page=formrelay" \
           "&view=jobs&status=failed&form_id=12" in out.text
    assert "(untitled) (form 14): 1" in out.text and "validation: 2" in out.text
    assert out.payload["new"]["categories"] == {"validation": 2, "server": 1}
    assert "Intake &lt;b&gt;" in out.slack["blocks"][1]["text"]["text"]


@pytest.mark.parametrize("kind", ["paused", "failed", "backlog", "no_worker", "uploads"])
def test_every_kind_renders_opened_and_resolved(kind: str) -> None:
    details = {"since": "x", "cause": "HTTP 503 server", "needs_person": False,
               "next_probe_at": "y", "waiting": 2, "oldest_waiting_seconds": 4000,
               "threshold_seconds": 3600, "failed": 1}
    opened = render(kind, "opened", {"kind": kind, "severity": "warning", "summary": "s",
                                     "details": details,
                                     "new": {"failed": 1, "forms": [], "categories": {}}})
    resolved = render(kind, "resolved", {"kind": kind})
    assert opened.subject.startswith("[FormRelay] Warning:") and opened.text.strip()
    assert resolved.subject.startswith("[FormRelay] Resolved:") and "Resolved" in resolved.text
    assert opened.payload["event"] == "incident.opened"


BASE = {"WORDPRESS_DB_USER": "u", "WORDPRESS_DB_NAME": "d"}


@pytest.mark.parametrize(("env", "says"), [
    ({"FORMRELAY_SMTP_HOST": "mail:587", "FORMRELAY_ALERT_EMAIL_FROM": "a@b.test"},
     "FORMRELAY_ALERT_EMAIL_TO is not"),
    ({"FORMRELAY_SMTP_HOST": "mail:587", "FORMRELAY_ALERT_EMAIL_TO": "a@b.test"},
     "FORMRELAY_ALERT_EMAIL_FROM"),
    ({"FORMRELAY_ALERT_EMAIL_TO": "a@b.test", "FORMRELAY_ALERT_EMAIL_FROM": "a@b.test"},
     "FORMRELAY_SMTP_HOST is not"),
    ({"FORMRELAY_SMTP_HOST": "mail:25", "FORMRELAY_ALERT_EMAIL_TO": "a@b.test",
      "FORMRELAY_ALERT_EMAIL_FROM": "a@b.test", "FORMRELAY_SMTP_SECURITY": "none",
      "FORMRELAY_SMTP_USER": "u", "FORMRELAY_SMTP_PASSWORD": "p"}, "never sent in clear"),
    ({"FORMRELAY_ALERT_WEBHOOK_URL": "https://hooks.test/x"}, "needs"
     " FORMRELAY_ALERT_WEBHOOK_SECRET"),
])
def test_a_half_configured_channel_is_refused(env: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.load("status", {**BASE, **env})
    assert any(says in line for line in caught.value.problems)


def test_complete_channels_load() -> None:
    cfg = config.load("status", {**BASE, "FORMRELAY_SMTP_HOST": "mail:587",
                                 "FORMRELAY_ALERT_EMAIL_TO": "a@b.test, c@d.test",
                                 "FORMRELAY_ALERT_EMAIL_FROM": "fr@b.test",
                                 "FORMRELAY_ALERT_WEBHOOK_URL": "https://hooks.test/x",
                                 "FORMRELAY_ALERT_WEBHOOK_FORMAT": "slack"})
    from sidecar.alerts import channels

    assert [c.name for c in channels(cfg)] == ["email", "webhook"]
