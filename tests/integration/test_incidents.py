"""Incidents on a real MariaDB, their messages through a real SMTP server (STARTTLS and
AUTH) and a real HTTP receiver: opened once, each message once per channel, resolved,
digests, two monitors on one database, and never a submitted value."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sidecar.alerts import EmailChannel, SendPolicy, WebhookChannel
from sidecar.alerts.webhook import signature
from sidecar.backoff import RetryPolicy
from sidecar.breaker import Policy
from sidecar.monitor import Monitor, MonitorSettings
from sidecar.partner_sim import RunningSim
from sidecar.pause import Pause
from sidecar.store import Database, Store
from tests.conftest import PREFIX
from tests.integration.alert_parts import (
    SMTP_PASSWORD,
    SMTP_USER,
    Receiver,
    SmtpServer,
    clean_incidents,
    client_context,
    self_signed,
)
from tests.integration.delivery import Delivery, snapshot
from tests.integration.test_admin_api import admin, sql
from tests.integration.test_masking import FIELDS, leaks

pytestmark = pytest.mark.db
__all__ = ["admin"]  # a fixture, used by name

HOOK_SECRET = "hook-secret-0123456789abcdef"
DASHBOARD = "https://site.test/wp-admin/admin.php?page=formrelay"
AUTH_CAUSE = "HTTP 401 auth (check FORMRELAY_PARTNER_TOKEN): Jane Doe is not allowed"


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("cert"))


@pytest.fixture
def smtp(cert: tuple[Path, Path]) -> Iterator[SmtpServer]:
    with SmtpServer("starttls", cert) as server:
        yield server


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


@pytest.fixture
def quiet(store: Store) -> Store:
    """No incident from earlier tests, and one live worker (so no "no worker" incident)."""
    clean_incidents(store)
    store.heartbeat("test-host:1:live", "test-host", 1, "0", "thread", 1, 15)
    return store


def email(smtp: SmtpServer, cert: tuple[Path, Path]) -> EmailChannel:
    return EmailChannel("127.0.0.1", smtp.port, "starttls", "formrelay@alerts.test",
                        ("ops@alerts.test",), SMTP_USER, SMTP_PASSWORD, timeout=5,
                        context=client_context(cert[0]))


def monitor(store: Store, channels: list[Any], **settings: Any) -> Monitor:
    made = MonitorSettings(interval=0.05, dashboard_url=DASHBOARD, **settings)
    return Monitor(store, made, channels)


def messages(store: Store) -> list[tuple[str, int, str, str]]:
    return [(r["message"], r["seq"], r["channel"], r["status"]) for r in store.alert_rows()]


def events(store: Store, prefix: str) -> list[str]:
    rows = sql(store, "SELECT event FROM {p}formrelay_log WHERE job_id IS NULL"
                      " AND event LIKE %s ORDER BY id", prefix + "%")
    return [r["event"] for r in rows]


def test_a_401_pause_opens_one_incident_one_message_per_channel_then_resolved(
        quiet: Store, smtp: SmtpServer, hook: Receiver, cert: tuple[Path, Path]) -> None:
    store = quiet
    m = monitor(store, [email(smtp, cert), WebhookChannel(hook.url, "json", HOOK_SECRET, 5)])
    Pause(store, Policy()).refused(AUTH_CAUSE, auth=True)
    for _ in range(3):
        m.round()

    [incident] = store.incidents()
    assert (incident.kind, incident.severity, incident.is_open) == ("paused", "critical", True)
    assert "needs a person" in incident.summary
    assert "Jane" not in incident.summary + json.dumps(incident.details)  # the partner's text
    [mail] = smtp.inbox.all()
    assert "needs a person" in mail["Subject"] and mail["To"] == "ops@alerts.test"
    assert smtp.inbox.messages[0][2], "sent over STARTTLS"
    body = mail.get_payload(decode=True).decode()
    assert "NEEDS A PERSON" in body and "HTTP 401 auth" in body and "Jane" not in body
    [post] = hook.received
    stamp = post.headers["X-FormRelay-Timestamp"]
    assert post.headers["X-FormRelay-Signature"] == signature(HOOK_SECRET, stamp, post.body)
    assert post.json()["event"] == "incident.opened"
    assert post.json()["incident"] == {**post.json()["incident"], "id": incident.id,
                                       "kind": "paused", "severity": "critical"}

    Pause(store, Policy()).resume("test")
    for _ in range(3):
        m.round()
    assert not store.open_incidents()
    assert [m["Subject"].startswith("[FormRelay] Resolved") for m in smtp.inbox.all()] == [
        False, True]
    assert [b["event"] for b in hook.bodies()] == ["incident.opened", "incident.resolved"]
    assert sorted(messages(store)) == sorted([
        ("opened", 0, "email", "sent"), ("opened", 0, "webhook", "sent"),
        ("resolved", 0, "email", "sent"), ("resolved", 0, "webhook", "sent")])
    assert events(store, "incident.") == ["incident.opened", "incident.resolved"]
    assert events(store, "alert.") == ["alert.sent"] * 4


def test_an_outage_pause_that_turns_into_a_401_pause_sends_one_update(
        quiet: Store, hook: Receiver) -> None:
    m = monitor(quiet, [WebhookChannel(hook.url, "json", HOOK_SECRET, 5)])
    pause = Pause(quiet, Policy(threshold=1))
    pause.failed("HTTP 503 server", probe=False)
    m.round()
    m.round()
    pause.refused(AUTH_CAUSE, auth=True)
    m.round()
    m.round()
    assert [(b["event"], b["incident"]["severity"]) for b in hook.bodies()] == [
        ("incident.opened", "warning"), ("incident.digest", "critical")]
    assert len(quiet.incidents()) == 1


def test_two_monitors_on_one_database_send_each_message_once(
        quiet: Store, migrated_db: Any, smtp: SmtpServer, hook: Receiver,
        cert: tuple[Path, Path]) -> None:
    stores = [quiet, Store(Database(migrated_db), PREFIX)]
    monitors = [monitor(s, [email(smtp, cert), WebhookChannel(hook.url, "json", HOOK_SECRET, 5)])
                for s in stores]

    def together(call: str) -> None:
        """Both at once, several times: each evaluation (bypassing the named lock, so only
        the unique keys keep the messages single) and each round."""
        gate = threading.Barrier(2)

        def run(m: Monitor) -> None:
            for _ in range(4):
                gate.wait(10)
                getattr(m, call)()

        threads = [threading.Thread(target=run, args=(m,)) for m in monitors]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)

    Pause(quiet, Policy()).refused(AUTH_CAUSE, auth=True)
    together("evaluate")
    together("round")
    Pause(quiet, Policy()).resume("test")
    together("evaluate")
    together("round")
    assert len(quiet.incidents()) == 1
    assert [m["Subject"].startswith("[FormRelay] Resolved") for m in smtp.inbox.all()] == [
        False, True]
    assert [b["event"] for b in hook.bodies()] == ["incident.opened", "incident.resolved"]
    assert events(quiet, "incident.") == ["incident.opened", "incident.resolved"]
    stores[1].db.close()


def fail_jobs(delivery: Delivery, sim: RunningSim, first: int, count: int) -> None:
    """`count` jobs of form 12 whose record the partner refuses for good (422, echoing
    every submitted value back)."""
    sim.script({"kind": "record", "echo": True, "count": count})
    for n in range(first, first + count):
        delivery.enqueue(f"wpforms:12:{n}", snapshot(12, n, FIELDS, delivery.uploads, []),
                         entry_id=n)
    delivery.drain()
    rows = sql(delivery.store, "SELECT COUNT(*) AS n FROM {p}formrelay_jobs"
                               " WHERE status = 'failed'")
    assert rows[0]["n"] == first + count - 1


def test_a_burst_of_failures_is_one_digest_with_forms_categories_links_and_no_value(
        quiet: Store, wpforms_tables: Store, delivery: Delivery, sim: RunningSim,
        smtp: SmtpServer, hook: Receiver, cert: tuple[Path, Path]) -> None:
    sql(quiet, "INSERT INTO {p}posts (ID, post_type, post_title, post_content, post_date)"
               " VALUES (12, 'wpforms', 'Patient intake', '', UTC_TIMESTAMP())")
    channels = [email(smtp, cert), WebhookChannel(hook.url, "json", HOOK_SECRET, 5)]
    fail_jobs(delivery, sim, 1, 20)
    m = monitor(quiet, channels)
    m.round()
    m.round()
    [mail] = smtp.inbox.all()
    text = mail.get_payload(decode=True).decode()
    assert "20 jobs failed permanently" in mail["Subject"]
    assert "Patient intake (form 12): 20" in text and "validation: 20" in text
    assert f"{DASHBOARD}&view=jobs&status=failed&form_id=12" in text
    [post] = hook.bodies()
    assert post["new"]["forms"] == [{"id": 12, "name": "Patient intake", "failed": 20}]

    fail_jobs(delivery, sim, 21, 5)  # within the digest window: no message yet
    m.round()
    assert len(smtp.inbox.all()) == 1 and len(hook.received) == 1
    eager = monitor(quiet, channels, digest_seconds=0)
    eager.round()
    eager.round()
    assert len(smtp.inbox.all()) == 2 and len(hook.received) == 2
    digest = hook.bodies()[1]
    assert (digest["event"], digest["seq"], digest["new"]["failed"]) == ("incident.digest", 1, 5)
    assert digest["details"]["failed"] == 25
    assert "Since the last message, 5 jobs failed" in smtp.inbox.all()[1].get_payload()

    # Never a value: not in any mail or webhook body, nor in the incidents or outbox rows.
    assert "Jane" in json.dumps(sql(quiet, "SELECT snapshot FROM {p}formrelay_jobs LIMIT 1"))
    for mail in smtp.inbox.all():
        assert not leaks(mail.as_string()) and not leaks(mail.get_payload(decode=True).decode())
    for post in hook.received:
        assert not leaks(post.body.decode())
    stored = sql(quiet, "SELECT * FROM {p}formrelay_incidents") + sql(
        quiet, "SELECT * FROM {p}formrelay_alerts")
    assert not leaks(json.dumps(stored, default=str))

    sql(quiet, "UPDATE {p}formrelay_jobs SET status = 'cancelled' WHERE status = 'failed'")
    quiet.recount_jobs(repair=True)  # a status set around the store: its counts anew
    m.round()
    assert hook.bodies()[-1]["event"] == "incident.resolved" and len(hook.received) == 3


def test_a_failing_webhook_is_retried_then_marked_failed(quiet: Store) -> None:
    fast = SendPolicy(max_attempts=3, retry=RetryPolicy(base=0))
    with Receiver(fail_first=1) as flaky, Receiver(fail_first=100) as broken:
        m = monitor(quiet, [WebhookChannel(flaky.url, "json", HOOK_SECRET, 5)], send=fast)
        Pause(quiet, Policy()).refused(AUTH_CAUSE, auth=True)
        for _ in range(4):
            m.round()
        assert len(flaky.received) == 2 and messages(quiet) == [("opened", 0, "webhook", "sent")]
        assert flaky.received[0].headers["X-FormRelay-Delivery"] == \
            flaky.received[1].headers["X-FormRelay-Delivery"]

        clean_incidents(quiet)
        quiet.heartbeat("test-host:1:live", "test-host", 1, "0", "thread", 1, 15)
        m = monitor(quiet, [WebhookChannel(broken.url, "json", HOOK_SECRET, 5)], send=fast)
        for _ in range(6):
            m.round()
        assert len(broken.received) == 3
        [row] = quiet.alert_rows()
        assert (row["status"], row["attempts"], row["last_error"]) == ("failed", 3,
                                                                       "webhook HTTP 500")
        assert events(quiet, "alert.")[-3:] == ["alert.retry", "alert.retry", "alert.failed"]


def test_no_worker_waits_two_sweep_intervals_of_silence(quiet: Store) -> None:
    m = monitor(quiet, [], no_worker_after=120)
    sql(quiet, "UPDATE {p}formrelay_workers SET last_seen = UTC_TIMESTAMP(3)"
               " - INTERVAL 60 SECOND")  # silent (2 beats + 15 s) but not for 2 intervals
    m.round()
    assert not quiet.open_incidents()
    sql(quiet, "UPDATE {p}formrelay_workers SET last_seen = UTC_TIMESTAMP(3)"
               " - INTERVAL 130 SECOND")
    m.round()
    assert quiet.open_incidents()["no_worker"].severity == "critical"
    quiet.heartbeat("test-host:1:live", "test-host", 1, "0", "thread", 1, 15)
    m.round()
    assert not quiet.open_incidents()
    assert events(quiet, "incident.") == ["incident.opened", "incident.resolved"]


def test_unreadable_uploads_open_an_incident_only_processes_that_check_resolve_it(
        quiet: Store, tmp_path: Path) -> None:
    uploads = tmp_path / "uploads"
    checking = monitor(quiet, [], uploads_dir=uploads)  # the directory does not exist yet
    blind = monitor(quiet, [])
    checking.round()
    assert "uploads" in quiet.open_incidents()
    uploads.mkdir()
    blind.round()
    assert "uploads" in quiet.open_incidents()  # a process that does not check leaves it
    sql(quiet, "UPDATE {p}formrelay_incidents SET updated_at = updated_at - INTERVAL 1 MINUTE")
    checking.round()
    assert not quiet.open_incidents()


def test_a_backlog_over_the_threshold_opens_and_resolves(quiet: Store) -> None:
    from sidecar.store import NewJob

    quiet.enqueue(NewJob("wpforms:12:1", 12, 1))
    sql(quiet, "UPDATE {p}formrelay_jobs SET created_at = UTC_TIMESTAMP(3) - INTERVAL 2 HOUR")
    m = monitor(quiet, [], backlog_seconds=3600)
    m.round()
    assert "backlog" in quiet.open_incidents()
    sql(quiet, "UPDATE {p}formrelay_jobs SET status = 'completed', due_priority = NULL")
    m.round()
    assert not quiet.open_incidents()


def test_the_dashboard_lists_open_and_recent_incidents_escaped(quiet: Store, admin: Any) -> None:
    from tests.integration.test_admin_api import XSS

    sql(quiet, "INSERT INTO {p}formrelay_incidents (kind, severity, open_key, summary, details,"
               " opened_at, updated_at) VALUES ('failed', 'critical', 'failed', %s, %s,"
               " UTC_TIMESTAMP(3), UTC_TIMESTAMP(3))",
        f"2 job(s) failed {XSS[0]}",
        json.dumps({"forms": [{"id": 12, "name": XSS[1], "failed": 2}]}))
    sql(quiet, "INSERT INTO {p}formrelay_incidents (kind, severity, summary, details, opened_at,"
               " updated_at, resolved_at) VALUES ('paused', 'warning', 'paused', '{}',"
               " UTC_TIMESTAMP(3), UTC_TIMESTAMP(3), UTC_TIMESTAMP(3))")
    answer = admin.get("/incidents")
    assert answer.status_code == 200
    listed = answer.get_json()["incidents"]
    assert [(i["kind"], i["open"]) for i in listed] == [("failed", True), ("paused", False)]
    page = admin.get("/view/overview").get_data(as_text=True)
    assert "formrelay-incidents" in page and XSS[0] not in page and XSS[1] not in page
    assert "?page=formrelay&amp;view=jobs&amp;status=failed&amp;form_id=12" in page
