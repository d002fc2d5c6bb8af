"""The doctor's pure judgements: partner statuses, clock skew, the configuration (grants:
tests/unit/test_grants_sql.py)."""

from __future__ import annotations

import pytest

from sidecar.doctor import Level, check_config
from sidecar.doctor_checks import judge_clock
from sidecar.doctor_remote import judge_partner

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("status", "level"), [(200, Level.OK), (204, Level.OK),
                                                (401, Level.FAIL), (403, Level.FAIL),
                                                (302, Level.WARN), (404, Level.WARN),
                                                (503, Level.WARN)])
def test_partner_statuses(status, level):
    result = judge_partner(status, "HEAD /", has_token=True)
    assert result.level == level and f"HTTP {status}" in result.detail
    if status in (401, 403):
        assert "FORMRELAY_PARTNER_TOKEN" in result.detail + result.fix


@pytest.mark.parametrize(("skew", "level"), [(0.2, Level.OK), (-4.9, Level.OK), (7.0, Level.WARN),
                                              (-90.0, Level.WARN)])
def test_clock_skew(skew, level):
    result = judge_clock(skew, round_trip=0.01)
    assert result.level == level
    if level == Level.WARN:
        assert ("behind" if skew > 0 else "ahead of") in result.detail


def test_every_configuration_problem_is_a_fail_line_and_no_secret_is_shown():
    cfg, results = check_config({
        "WORDPRESS_DB_USER": "u", "WORDPRESS_DB_NAME": "d",
        "FORMRELAY_SHARED_SECRET": "short-secret", "FORMRELAY_WORKERS": "0",
        "FORMRELAY_REDIS_URL": "http://:hunter2-password@redis"})
    lines = [r.line() for r in results]
    assert cfg is not None and cfg.db_name == "d"  # the rest is still checked
    assert all(r.level == Level.FAIL for r in results)
    assert any(line.startswith("FAIL configuration: FORMRELAY_WORKERS must be") for line in lines)
    assert any("FORMRELAY_SHARED_SECRET must be at least 16" in line for line in lines)
    assert any("FORMRELAY_PARTNER_URL is not set" in line for line in lines)
    assert any("FORMRELAY_UPLOADS_DIR is not set" in line for line in lines)
    assert not any("short-secret" in line or "hunter2" in line for line in lines)
    # a setting both invalid and needed is reported once, as invalid
    assert sum("FORMRELAY_SHARED_SECRET" in line for line in lines) == 1
