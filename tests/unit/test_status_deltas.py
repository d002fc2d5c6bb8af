"""What a job's status change adds to the counts table (sidecar/store/counts.py)."""

from __future__ import annotations

import pytest

from sidecar.states import JOB_STATUSES, WAITING
from sidecar.store.counts import COUNTED, LIVE, status_deltas
from sidecar.store.schema import SCHEMA_DIR

pytestmark = pytest.mark.unit


def test_ended_statuses_are_kept_and_waiting_ones_counted_live():
    assert set(COUNTED) | set(LIVE) == set(map(str, JOB_STATUSES))
    assert set(LIVE) == set(map(str, WAITING)) and not set(COUNTED) & set(LIVE)


@pytest.mark.parametrize("old,new,want", [
    ("pending", "processing", {}),  # the claim: nothing
    ("processing", "retrying", {}),
    ("processing", "completed", {(7, "completed"): 1}),  # a job ends: one row
    ("processing", "failed", {(7, "failed"): 1}),
    ("pending", "cancelled", {(7, "cancelled"): 1}),
    ("failed", "pending", {(7, "failed"): -1}),  # an admin's retry
    ("failed", "processing", {(7, "failed"): -1}),  # a retry in the documents phase
    ("completed", "pending", {(7, "completed"): -1}),  # a restart
    ("completed", "completed", {}),
])
def test_status_deltas(old, new, want):
    assert status_deltas(7, old, new) == want


def test_the_migration_seeds_the_statuses_the_store_keeps():
    (sql,) = [p.read_text() for p in SCHEMA_DIR.glob("0008_*.sql")]
    seeded = sql.split("WHERE status IN (")[1].split(")")[0]
    assert {s.strip(" '") for s in seeded.split(",")} == set(COUNTED)
