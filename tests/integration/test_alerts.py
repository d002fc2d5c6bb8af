"""The alert channels against real receivers: SMTP (plain, STARTTLS, implicit TLS, AUTH)
and webhooks (signed JSON, Slack's shape, a hanging receiver that must not hold up
delivery)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from sidecar.alerts import ChannelError, EmailChannel, Rendered, Renderer, WebhookChannel
from sidecar.alerts.webhook import signature
from sidecar.breaker import Policy
from sidecar.config import DEFAULT_TEMPLATES
from sidecar.monitor import Monitor, MonitorSettings
from sidecar.partner_sim import RunningSim
from sidecar.pause import Pause
from sidecar.store import Alert, Incident, Store
from tests.conftest import wait_until
from tests.integration.alert_parts import (
    SMTP_PASSWORD,
    SMTP_USER,
    Receiver,
    SmtpServer,
    clean_incidents,
    client_context,
    self_signed,
)
from tests.integration.delivery import Delivery, snapshot, text_fields
from tests.integration.test_admin_api import sql

pytestmark = pytest.mark.db
FROM, TO = "formrelay@alerts.test", ("ops@alerts.test", "oncall@alerts.test")


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("cert"))


def rendered() -> Rendered:
    now = datetime(2026, 12, 5, 10, 0, 0)
    incident = Incident(7, "paused", "critical", "delivery paused and needs a person", {},
                        now, now, None, 0, now)
    alert = Alert(3, 7, "opened", 0, "email", 1, {
        "kind": "paused", "severity": "critical", "summary": "delivery paused and needs a person",
        "details": {"since": "2026-12-05 10:00:00", "cause": "HTTP 401 auth",
                    "needs_person": True, "next_probe_at": None, "waiting": 4}})
    return Renderer(DEFAULT_TEMPLATES, "https://site.test/wp-admin/admin.php?page=formrelay").render(
        incident, alert)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # implicit TLS
@pytest.mark.parametrize("mode", ["starttls", "tls"])
def test_email_over_tls_with_auth(mode: str, cert: tuple[Path, Path]) -> None:
    with SmtpServer(mode, cert) as server:
        channel = EmailChannel("127.0.0.1", server.port, mode, FROM, TO, SMTP_USER,
                               SMTP_PASSWORD, timeout=5, context=client_context(cert[0]))
        channel.send(rendered(), "3")
        [(envelope, mail, tls)] = server.inbox.messages
    assert tls and envelope.rcpt_tos == list(TO) and envelope.mail_from == FROM
    assert mail["Subject"] == "[FormRelay] CRITICAL: delivery paused, needs a person (incident 7)"
    assert "formrelay-alert-3" in mail["Message-ID"]
    assert "NEEDS A PERSON" in mail.get_payload(decode=True).decode()


def test_email_without_tls_and_a_refused_login(cert: tuple[Path, Path]) -> None:
    with SmtpServer("none") as plain:
        EmailChannel("127.0.0.1", plain.port, "none", FROM, TO, timeout=5).send(rendered(), "1")
        assert len(plain.inbox.all()) == 1
    with SmtpServer("starttls", cert) as server:
        wrong = EmailChannel("127.0.0.1", server.port, "starttls", FROM, TO, SMTP_USER, "nope",
                             timeout=5, context=client_context(cert[0]))
        with pytest.raises(ChannelError, match=r"^SMTP (535|SMTPServerDisconnected)"):
            wrong.send(rendered(), "1")
        untrusted = EmailChannel("127.0.0.1", server.port, "starttls", FROM, TO, SMTP_USER,
                                 SMTP_PASSWORD, timeout=5)  # the system's CAs: self-signed fails
        with pytest.raises(ChannelError, match=r"^SMTP SSLCertVerificationError"):
            untrusted.send(rendered(), "1")
        assert server.inbox.all() == []


def test_signed_json_and_slack_webhooks() -> None:
    with Receiver() as hook:
        WebhookChannel(hook.url, "json", "x" * 20, 5).send(rendered(), "3")
        WebhookChannel(hook.url, "slack", "", 5).send(rendered(), "4")
        signed, slack = hook.received
    stamp = signed.headers["X-FormRelay-Timestamp"]
    assert signed.headers["X-FormRelay-Signature"] == signature("x" * 20, stamp, signed.body)
    assert signed.headers["X-FormRelay-Delivery"] == "3"
    assert signed.headers["X-FormRelay-Event"] == "incident.opened"
    body = signed.json()
    assert (body["incident"]["id"], body["details"]["cause"]) == (7, "HTTP 401 auth")
    assert body["links"]["overview"].endswith("page=formrelay&view=overview")
    assert "X-FormRelay-Signature" not in slack.headers
    assert slack.json()["text"].startswith("[FormRelay] CRITICAL")
    assert [b["type"] for b in slack.json()["blocks"]] == ["section", "section"]


def test_a_hanging_webhook_costs_only_the_monitors_time(
        store: Store, delivery: Delivery, sim: RunningSim) -> None:
    clean_incidents(store)
    store.heartbeat("test-host:1:live", "test-host", 1, "0", "thread", 1, 15)
    with Receiver(hang=True) as hung:
        monitor = Monitor(store, MonitorSettings(interval=0.05),
                          [WebhookChannel(hung.url, "json", "x" * 20, timeout=2)]).start()
        try:
            Pause(store, Policy()).refused("HTTP 401 auth", auth=True)
            wait_until(lambda: hung.arrived == 1, 20,
                       "the monitor to be stuck on the hanging receiver")
            Pause(store, Policy()).resume("test")
            ids = [delivery.enqueue(f"wpforms:12:{n}", snapshot(12, n, text_fields(),
                                                                delivery.uploads, []), n)
                   for n in range(1, 6)]
            delivery.drain()
            done = sql(store, "SELECT COUNT(*) AS n FROM {p}formrelay_jobs"
                              " WHERE status = 'completed'")[0]["n"]
            assert done == len(ids)
            assert not hung.release.is_set(), "delivered while the receiver still hung"
            wait_until(lambda: any(r["last_error"] == "webhook timeout"
                                   for r in store.alert_rows()), 20, "the send to time out")
        finally:
            monitor.stop()

