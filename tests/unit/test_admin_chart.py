"""The overview's chart geometry: pure numbers from hourly counts."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from sidecar.admin.chart import (
    BOTTOM,
    HEIGHT,
    LEFT,
    RIGHT,
    TOP,
    WIDTH,
    Bucket,
    chart,
    nice_ceiling,
    tick_step,
)

pytestmark = pytest.mark.unit
START = datetime(2026, 12, 1, 0, 0)


def day(counts: dict[int, tuple[int, int]]) -> list[Bucket]:
    return [Bucket(START + timedelta(hours=h), *counts.get(h, (0, 0))) for h in range(24)]


@pytest.mark.parametrize("value,nice", [(0, 1), (1, 1), (2, 2), (3, 5), (5, 5), (6, 10),
                                        (11, 20), (20, 20), (21, 50), (51, 100), (999, 1000)])
def test_nice_ceiling(value, nice):
    assert nice_ceiling(value) == nice


@pytest.mark.parametrize("scale,step", [(1, 1), (2, 1), (5, 1), (10, 2), (20, 5), (50, 10),
                                        (100, 20), (1000, 200)])
def test_tick_step(scale, step):
    assert tick_step(scale) == step
    assert scale % step == 0 and scale // step <= 5


def test_bars_are_proportional_to_the_counts_on_a_nice_scale():
    c = chart(day({0: (8, 2), 5: (3, 0), 23: (0, 1)}))
    assert c.scale_max == 10
    assert len(c.bars) == 48
    plot = HEIGHT - BOTTOM - TOP
    by = {(b.kind, i // 2): b for i, b in enumerate(c.bars)}
    assert by[("delivered", 0)].height == pytest.approx(plot * 0.8, abs=0.01)
    assert by[("failed", 0)].height == pytest.approx(plot * 0.2, abs=0.01)
    assert by[("delivered", 5)].height == pytest.approx(plot * 0.3, abs=0.01)
    assert by[("failed", 23)].height == pytest.approx(plot * 0.1, abs=0.01)
    assert by[("delivered", 1)].height == 0
    for bar in c.bars:  # every bar stands on the axis, inside the plot
        assert bar.y + bar.height == pytest.approx(HEIGHT - BOTTOM, abs=0.02)
        assert bar.x >= LEFT and bar.x + bar.width <= WIDTH - RIGHT + 0.01
    xs = [b.x for b in c.bars]
    assert xs == sorted(xs) and len(set(xs)) == 48  # hour by hour, delivered then failed
    assert by[("delivered", 0)].label == "00:00-01:00 UTC: 8 delivered"
    assert by[("failed", 23)].label == "23:00-00:00 UTC: 1 failed"


def test_axes_titles_and_description():
    c = chart(day({3: (4, 1)}))
    assert [t.label for t in c.y_ticks] == ["0", "1", "2", "3", "4", "5"]
    assert c.y_ticks[0].position == HEIGHT - BOTTOM and c.y_ticks[-1].position == TOP
    assert [t.label for t in c.x_ticks] == [f"{h:02d}:00" for h in range(0, 24, 3)]
    assert c.title == "Delivered and failed jobs per hour, last 24 hours"
    assert c.desc == ("Jobs delivered and jobs failed in each hour from 2026-12-01 00:00 to"
                      " 2026-12-02 00:00 UTC: 4 delivered and 1 failed in all; the busiest"
                      " hour had 4.")


def test_an_empty_day_draws_flat_bars_on_a_unit_scale():
    c = chart(day({}))
    assert c.scale_max == 1 and all(b.height == 0 for b in c.bars)
    assert [t.label for t in c.y_ticks] == ["0", "1"]
    assert chart([]).bars == ()
