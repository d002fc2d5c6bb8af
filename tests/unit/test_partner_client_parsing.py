"""The client's pure parts: Retry-After, ids in answers, and masking partner messages."""

from __future__ import annotations

import email.utils

import pytest

from sidecar.partner_client import find_id, parse_retry_after

pytestmark = pytest.mark.unit


def test_retry_after_seconds_and_http_dates():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 120 ") == 120.0
    when = email.utils.formatdate(1_000_030, usegmt=True)
    assert parse_retry_after(when, now=1_000_000) == pytest.approx(30, abs=1)
    past = email.utils.formatdate(999_000, usegmt=True)
    assert parse_retry_after(past, now=1_000_000) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_ids_in_answers():
    assert find_id({"id": "P-1"}, "id") == "P-1"
    assert find_id({"id": 42}, "id") == "42"
    assert find_id({"data": {"id": "X"}}, "data.id") == "X"
    assert find_id({"id": ""}, "id") is None
    assert find_id({"id": None}, "id") is None
    assert find_id([{"id": 1}], "id") is None
    assert find_id({"data": "flat"}, "data.id") is None
