"""Chaos-style, with a real `formrelay worker` process and its monitor thread: a partner
outage of about a minute (FORMRELAY_CHAOS_SCALE scales it) opens one "paused" incident,
sends exactly one alert by e-mail (STARTTLS + AUTH to a real SMTP server) and one by
signed webhook, then one "resolved" on each; then 20 permanent failures in a burst make
one "failed" message per channel, and no more while the incident stays open."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path
from typing import Any

import pytest

from sidecar.partner_sim import RunningSim
from sidecar.store import NewJob, Store
from tests.conftest import wait_until
from tests.integration.alert_parts import (
    SMTP_PASSWORD,
    SMTP_USER,
    Receiver,
    SmtpServer,
    clean_incidents,
    self_signed,
)
from tests.integration.delivery import snapshot
from tests.integration.processes import start_worker, stop, worker_env
from tests.integration.test_admin_api import sql
from tests.integration.test_masking import FIELDS, leaks

pytestmark = [pytest.mark.db, pytest.mark.sim, pytest.mark.slow, pytest.mark.chaos]
SCALE = float(os.environ.get("FORMRELAY_CHAOS_SCALE", "1"))
OUTAGE_SECONDS = 60 * SCALE
HOOK_SECRET = "hook-secret-0123456789abcdef"


def subjects(smtp: SmtpServer) -> list[str]:
    return [m["Subject"] for m in smtp.inbox.all()]


def incidents(store: Store) -> list[dict[str, Any]]:
    return sql(store, "SELECT id, kind, open_key, details, updated_at"
                      " FROM {p}formrelay_incidents ORDER BY id")


def enqueue(store: Store, uploads: Path, first: int, count: int) -> None:
    for n in range(first, first + count):
        store.enqueue(NewJob(f"wpforms:12:{n}", 12, n, snapshot(12, n, FIELDS, uploads, [])))


def test_a_partner_outage_and_a_burst_of_failures_alert_once_each(
        store: Store, sim: RunningSim, uploads: Path, tmp_path: Path, migrated_db: Any) -> None:
    clean_incidents(store)
    cert = self_signed(tmp_path)
    with SmtpServer("starttls", cert) as smtp, Receiver() as hook:
        env = worker_env(
            migrated_db.database, sim.url, uploads, tmp_path,
            FORMRELAY_SWEEP_SECONDS="5", FORMRELAY_PAUSE_AFTER="2",
            FORMRELAY_PROBE_MIN_SECONDS="2", FORMRELAY_PROBE_MAX_SECONDS="5",
            FORMRELAY_BACKOFF_BASE="1", FORMRELAY_SMTP_HOST=smtp.host,
            FORMRELAY_SMTP_SECURITY="starttls", FORMRELAY_SMTP_USER=SMTP_USER,
            FORMRELAY_SMTP_PASSWORD=SMTP_PASSWORD,
            FORMRELAY_ALERT_EMAIL_FROM="formrelay@alerts.test",
            FORMRELAY_ALERT_EMAIL_TO="ops@alerts.test", FORMRELAY_ALERT_WEBHOOK_URL=hook.url,
            FORMRELAY_ALERT_WEBHOOK_SECRET=HOOK_SECRET,
            FORMRELAY_DASHBOARD_URL="https://site.test/wp-admin/admin.php?page=formrelay",
            SSL_CERT_FILE=str(cert[0]))  # the worker trusts the test's SMTP certificate
        sim.configure(outage_seconds=OUTAGE_SECONDS)
        enqueue(store, uploads, 1, 5)
        worker = start_worker(env)
        try:
            def alive() -> None:
                assert worker.poll() is None, "the worker exited"

            def opened() -> bool:
                alive()
                return len(subjects(smtp)) >= 1 and len(hook.received) >= 1

            wait_until(opened, OUTAGE_SECONDS, "the paused alert on both channels")
            assert "Warning: Delivery paused" in subjects(smtp)[0]

            def resolved() -> bool:
                alive()
                return len(subjects(smtp)) >= 2 and len(hook.received) >= 2

            wait_until(resolved, OUTAGE_SECONDS + 90, "the resolved alert on both channels")
            assert [r["kind"] for r in incidents(store)] == ["paused"]
            assert subjects(smtp)[1].startswith("[FormRelay] Resolved: Delivery paused")
            assert [b["event"] for b in hook.bodies()] == ["incident.opened",
                                                           "incident.resolved"]

            sim.script({"kind": "record", "echo": True, "count": 20})
            enqueue(store, uploads, 101, 20)  # rung by the sweep (every 5 s)

            def failed_seen() -> Any:
                alive()
                rows = [r for r in incidents(store) if r["kind"] == "failed"]
                return rows and json.loads(rows[0]["details"]).get("failed") == 20 and rows[0]

            seen = wait_until(failed_seen, 120, "a failed incident counting 20 jobs")
            wait_until(lambda: next(r for r in incidents(store) if r["kind"] == "failed")[
                "updated_at"] > seen["updated_at"], 60, "one more monitor round")
            wait_until(lambda: len(hook.received) >= 3 and len(subjects(smtp)) >= 3, 60,
                       "the failed alert")
            assert len(subjects(smtp)) == 3 and len(hook.received) == 3
            # The digest counts what had failed when it went out: a monitor round may fall
            # inside the burst (the incident row above counts all 20).
            assert re.search(r"\d+ jobs? failed permanently", subjects(smtp)[2])
            assert hook.bodies()[2]["incident"]["kind"] == "failed"
            for mail in smtp.inbox.all():
                assert not leaks(mail.get_payload(decode=True).decode())
            for post in hook.received:
                assert not leaks(post.body.decode())
            worker.send_signal(signal.SIGINT)
            assert worker.wait(timeout=60) == 0
        finally:
            output = stop(worker)
    assert not leaks(output.replace("alerts.test", "")), output[-2000:]
