"""sidecar.metrics: labels only ever take values from fixed sets; outcomes are the engine's
categories; sidecar.probe: a 2xx is healthy, anything else is not (real HTTP, stdlib server)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from sidecar import metrics, probe
from sidecar.errors import Category
from sidecar.states import EventKind

pytestmark = pytest.mark.unit


def label_sets(name: str) -> list[dict[str, str]]:
    text = generate_latest(metrics._get().registry).decode()
    return [s.labels for f in text_string_to_metric_families(text) for s in f.samples
            if s.name == name]


def value(name: str, **labels: str) -> float:
    text = generate_latest(metrics._get().registry).decode()
    found = [s.value for f in text_string_to_metric_families(text) for s in f.samples
             if s.name == name and s.labels == labels]
    return float(found[0]) if found else 0.0


@pytest.mark.parametrize("kind,category,outcome", [
    (EventKind.RECORD_SENT, None, "success"),
    (EventKind.UPLOADED, None, "success"),
    (EventKind.RETRYABLE_ERROR, Category.SERVER, "server"),
    (EventKind.PERMANENT_ERROR, Category.VALIDATION, "validation"),
    (EventKind.RELEASE, None, "paused"),
    (EventKind.RELEASE, Category.AUTH, "auth"),
    (EventKind.REJECTED, None, "rejected_file"),
    (EventKind.RETRYABLE_ERROR, "HTTP 500 from Jane Doe's clinic", "other"),
])
def test_step_outcomes_are_success_or_a_category(kind, category, outcome):
    before = value("formrelay_attempts_total", step="document", outcome=outcome)
    metrics.step_outcome("document", kind, category)
    assert value("formrelay_attempts_total", step="document", outcome=outcome) == before + 1


def test_no_label_takes_a_value_outside_its_set():
    metrics.step_outcome("jane@example.com", EventKind.RECORD_SENT, None)
    metrics.alert_sent("sms to Jane", "bounced: Jane Doe")
    metrics.pause_started("partner said: Jane Doe")
    with metrics.partner_request("/patients/Jane"):
        pass
    allowed = {"step": metrics.STEPS, "outcome": metrics.OUTCOMES | metrics.ALERT_OUTCOMES,
               "channel": metrics.CHANNELS, "reason": metrics.PAUSE_REASONS}
    for name in ("formrelay_attempts_total", "formrelay_alerts_sent_total",
                 "formrelay_pauses_total", "formrelay_partner_request_seconds_count"):
        sets = label_sets(name)
        assert sets, name
        for labels in sets:
            for key, val in labels.items():
                assert val in allowed[key] | {metrics.OTHER}, (name, key, val)
    text = generate_latest(metrics._get().registry).decode()
    assert "Jane" not in text and "jane" not in text


def test_the_outcome_set_is_the_engines_categories():
    assert {"success"} | {str(c) for c in Category} == metrics.OUTCOMES


# ---- the container probe ------------------------------------------------------------------

class _Answer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response({"/livez": 200, "/readyz": 503}.get(self.path, 404))
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def listener() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_probe_is_healthy_on_a_2xx_only(listener, capsys):
    env = {"FORMRELAY_LISTEN": listener, "FORMRELAY_WORKER_LISTEN": listener}
    assert probe.main(["--worker", "/livez"], env) == 0
    assert probe.main(["/readyz"], env) == 1
    assert capsys.readouterr().out.splitlines()[-1].endswith("/readyz: HTTP 503")
    closed = listener.rpartition(":")[0] + ":9"
    assert probe.main(["/livez"], {"FORMRELAY_LISTEN": closed}) == 1
    assert "no answer" in capsys.readouterr().out
