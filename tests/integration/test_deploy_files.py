"""deploy/: the Prometheus rules parse, and every metric name they and the Grafana dashboard
use is one a real /metrics scrape exposes (so the examples cannot drift from the code)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import requests
import yaml

from sidecar import metrics
from sidecar.health_routes import HealthRoutes
from sidecar.states import EventKind
from tests.integration.test_health import metric_families, served

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "formrelay-rules.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "formrelay.json"
METRIC = re.compile(r"\bformrelay_[a-z_]*[a-z]\b")


def rules() -> list[dict[str, object]]:
    data = yaml.safe_load(RULES.read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def rule_exprs() -> list[str]:
    return [str(rule["expr"]) for rule in rules()]


def dashboard_exprs() -> list[str]:
    data = json.loads(DASHBOARD.read_text())
    return [t["expr"] for panel in data["panels"] for t in panel["targets"]]


@pytest.mark.unit
def test_the_rules_are_alerts_with_a_severity_and_a_summary():
    found = rules()
    names = [r["alert"] for r in found]
    assert len(names) == len(set(names))
    assert {"FormRelayNeedsPerson", "FormRelayDeliveryPaused", "FormRelayBacklog",
            "FormRelayNoWorker", "FormRelayJobsFailed"} <= set(names)
    for rule in found:
        assert rule["labels"]["severity"] in ("warning", "critical"), rule  # type: ignore[index]
        assert rule["annotations"]["summary"], rule  # type: ignore[index]
        assert METRIC.search(str(rule["expr"])), rule


@pytest.mark.unit
def test_promtool_accepts_the_rules():
    tool = shutil.which("promtool")
    if not tool:
        pytest.skip("promtool (Debian package prometheus) is not installed here")
    done = subprocess.run([tool, "check", "rules", str(RULES)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.db
def test_every_metric_the_rules_and_the_dashboard_use_is_exposed(store, tmp_path):
    # One of each of this process's own series, so each family has samples to show.
    metrics.step_outcome("record", EventKind.RECORD_SENT, None)
    with metrics.partner_request("document"):
        pass
    metrics.pause_started("outage")
    metrics.alert_sent("email", "sent")
    metrics.heartbeat()
    with served(HealthRoutes(store, tmp_path, ttl=0)) as url:
        text = requests.get(url + "/metrics", timeout=10).text
    exposed = {s.name for f in metric_families(text).values() for s in f.samples}
    used = {name for expr in rule_exprs() + dashboard_exprs() for name in METRIC.findall(expr)}
    assert len(used) >= 12
    assert used - exposed == set(), f"used but not exposed: {sorted(used - exposed)}"
