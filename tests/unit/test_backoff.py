"""Backoff by property: bounds, a monotone ceiling, the cap, and Retry-After as a floor."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidecar.backoff import RetryPolicy, backoff_ceiling, compute_backoff

pytestmark = pytest.mark.unit

attempts = st.integers(min_value=1, max_value=10_000)
bases = st.floats(min_value=0.001, max_value=3600)
factors = st.floats(min_value=1.0, max_value=10.0)
caps = st.floats(min_value=0.0, max_value=7 * 86400)
unit = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)


@given(attempts, factors, caps, bases, unit)
def test_backoff_is_between_zero_and_the_ceiling(n, factor, cap, base, r):
    wait = compute_backoff(n, factor, True, cap, base, rand=lambda: r)
    assert 0.0 <= wait <= backoff_ceiling(n, base, factor, cap) <= cap


@given(attempts, factors, caps, bases)
def test_the_ceiling_never_falls_as_attempts_grow(n, factor, cap, base):
    assert backoff_ceiling(n, base, factor, cap) <= backoff_ceiling(n + 1, base, factor, cap)


@given(factors, caps, bases)
def test_the_ceiling_reaches_the_cap_and_stays(factor, cap, base):
    assert backoff_ceiling(100_000, base, factor if factor > 1.0001 else 2.0, cap) == cap


def test_defaults_double_from_30_seconds_to_the_one_hour_cap():
    ceilings = [backoff_ceiling(n, 30, 2, 3600) for n in range(1, 10)]
    assert ceilings == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]


def test_without_jitter_the_wait_is_the_ceiling_and_jitter_uses_the_draw():
    assert compute_backoff(3, 2, False, 3600, 30) == 120
    assert compute_backoff(3, 2, True, 3600, 30, rand=lambda: 0.25) == 30


def test_no_failure_or_no_base_means_no_wait():
    assert backoff_ceiling(0, 30, 2, 3600) == 0
    assert backoff_ceiling(5, 0, 2, 3600) == 0


@given(attempts, st.floats(min_value=-100, max_value=10**9), unit)
def test_retry_after_is_a_floor_clamped_to_the_cap(n, retry_after, r):
    policy = RetryPolicy(base=30, factor=2, max_backoff=3600)
    wait = policy.delay(n, retry_after, rand=lambda: r)
    assert min(max(retry_after, 0), 3600) <= wait <= 3600
    assert wait >= policy.delay(n, None, rand=lambda: r)
