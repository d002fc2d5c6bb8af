"""The rate the side-by-side benchmark prints: jobs over the simulator's own span."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bench.sim_window import Window, WindowError, ratio, window

pytestmark = pytest.mark.unit


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(1_800_000_000 + seconds, UTC).isoformat(
        timespec="milliseconds")


def record(at: float, *docs: float) -> dict[str, Any]:
    return {"id": "P", "created": iso(at), "documents": [{"created": iso(d)} for d in docs]}


def test_span_runs_from_the_first_record_to_the_last_document() -> None:
    got = window([record(0.0, 0.1, 0.2), record(0.3, 0.4, 2.0)])
    assert (got.records, got.documents) == (2, 4)
    assert got.seconds == pytest.approx(2.0)
    assert got.rate(2) == pytest.approx(1.0)


def test_order_of_the_records_does_not_matter() -> None:
    got = window([record(5.0, 5.5, 6.0), record(1.0, 1.25, 1.5)])
    assert got.seconds == pytest.approx(5.0)


def test_documents_alone_can_set_the_end() -> None:
    got = window([record(0.0), record(0.5, 4.0)])
    assert got.seconds == pytest.approx(4.0)
    assert got.rate(10) == pytest.approx(2.5)


def test_no_records_cannot_give_a_rate() -> None:
    with pytest.raises(WindowError):
        window([])


def test_everything_in_one_instant_cannot_give_a_rate() -> None:
    with pytest.raises(WindowError):
        window([record(1.0, 1.0)]).rate(1)


def test_ratio_is_ours_over_theirs() -> None:
    assert ratio(300.0, 150.0) == pytest.approx(2.0)
    assert ratio(Window(1, 2, 0, 4).rate(20), 10.0) == pytest.approx(0.5)
    with pytest.raises(WindowError):
        ratio(1.0, 0.0)
