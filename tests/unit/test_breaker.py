"""The outage pause's rules (sidecar/breaker.py), pure."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from sidecar.breaker import (
    Breaker,
    Gate,
    Policy,
    gate,
    on_config_error,
    on_retryable,
    on_success,
    take_probe,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 23, 12, 0, 0)
P = Policy(threshold=3, probe_min=30, probe_max=300)


def test_it_pauses_after_the_threshold_of_consecutive_failures():
    b = Breaker()
    for _ in range(2):
        b = on_retryable(b, "HTTP 503", NOW, P)
        assert not b.paused and gate(b, NOW) is Gate.OPEN
    b = on_retryable(b, "HTTP 503", NOW, P)
    assert b.paused and "3 failures in a row" in b.cause
    assert gate(b, NOW) is Gate.SHUT
    assert gate(b, NOW + timedelta(seconds=30)) is Gate.PROBE


def test_a_success_resets_everything():
    b = on_retryable(on_retryable(Breaker(), "x", NOW, P), "x", NOW, P)
    assert on_success(b) == Breaker()


def test_probe_waits_double_up_to_the_cap_and_one_caller_takes_the_slot():
    b = on_config_error(Breaker(), "TLS failure", NOW, P, auth=False)
    waits = []
    for _ in range(6):
        b = on_retryable(b, "still down", NOW, P, probe=True)
        waits.append(b.probe_wait)
    assert waits == [60, 120, 240, 300, 300, 300]
    due = NOW + timedelta(seconds=300)
    assert gate(b, due) is Gate.PROBE
    taken = take_probe(b, due)
    assert gate(taken, due) is Gate.SHUT  # the next caller waits for the probe's outcome


def test_a_401_pause_stays_until_the_credentials_change():
    b = on_config_error(Breaker(), "HTTP 401", NOW, P, auth=True, credentials="old")
    assert gate(b, NOW + timedelta(days=1), "old") is Gate.SHUT
    assert gate(b, NOW, "new") is Gate.PROBE  # new credentials: probe at once, once
    assert gate(take_probe(b, NOW), NOW, "new") is Gate.SHUT


def test_a_failure_of_a_request_sent_before_the_pause_changes_nothing():
    b = on_config_error(Breaker(), "HTTP 503", NOW, P, auth=False)
    assert on_retryable(b, "late", NOW, P) == b
    assert on_success(b) == Breaker()  # but any success means the partner is back


def test_a_damaged_row_reads_as_not_paused():
    assert Breaker.from_json("{not json") == Breaker()
    b = on_config_error(Breaker(), "x", NOW, P, auth=False)
    assert Breaker.from_json(b.to_json()) == b


def test_a_probe_refused_again_keeps_the_pause_and_backs_off():
    b = on_config_error(Breaker(), "TLS failure", NOW, P, auth=False)
    later = NOW + timedelta(seconds=30)
    again = on_config_error(take_probe(b, later), "TLS failure", later, P, auth=False)
    assert again.paused_at == b.paused_at  # the outage began at the first refusal
    assert again.probe_wait == 60 and gate(again, later + timedelta(seconds=59)) is Gate.SHUT
    assert gate(again, later + timedelta(seconds=60)) is Gate.PROBE
