"""The overview's chart: hourly delivered and failed counts -> SVG geometry. Pure.

The template draws what this computes (numbers and fixed labels only), so the
chart needs no script, no external asset and no data in its markup but counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 28, 28  # margins around the plot: axis labels, legend
LABEL_EVERY = 3  # hours between x-axis labels
KINDS = ("delivered", "failed")


@dataclass(frozen=True)
class Bucket:
    hour: datetime  # the hour's start (UTC)
    delivered: int
    failed: int


@dataclass(frozen=True)
class Bar:
    kind: str  # "delivered" or "failed"
    x: float
    y: float
    width: float
    height: float
    value: int
    label: str  # "13:00-14:00 UTC: 12 delivered"


@dataclass(frozen=True)
class Tick:
    position: float  # y for the value axis, x for the time axis
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: float  # the plot area
    top: float
    right: float
    bottom: float
    scale_max: int
    bars: tuple[Bar, ...]
    y_ticks: tuple[Tick, ...]
    x_ticks: tuple[Tick, ...]
    title: str
    desc: str


def nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten that is >= value (at least 1)."""
    scale = 1
    while True:
        for step in (1, 2, 5):
            if step * scale >= value:
                return step * scale
        scale *= 10


def tick_step(scale_max: int) -> int:
    """The smallest 1/2/5-style step dividing the scale into at most 5 parts."""
    step = 1
    while scale_max % step or scale_max // step > 5:
        step = nice_ceiling(step + 1)
    return step


def _r(value: float) -> float:
    return round(value, 2)


def chart(buckets: Sequence[Bucket], width: int = WIDTH, height: int = HEIGHT) -> Chart:
    left, top, right, bottom = LEFT, TOP, width - RIGHT, height - BOTTOM
    plot_h = bottom - top
    peak = max((max(b.delivered, b.failed) for b in buckets), default=0)
    scale_max = nice_ceiling(peak)
    slot = (right - left) / max(1, len(buckets))
    bar_w = slot * 0.4
    bars = []
    for i, b in enumerate(buckets):
        span = f"{b.hour:%H:%M}-{b.hour + timedelta(hours=1):%H:%M} UTC"
        for k, (kind, value) in enumerate(zip(KINDS, (b.delivered, b.failed), strict=True)):
            h = plot_h * value / scale_max
            bars.append(Bar(kind, _r(left + i * slot + slot * 0.1 + k * bar_w), _r(bottom - h),
                            _r(bar_w), _r(h), value, f"{span}: {value} {kind}"))
    step = tick_step(scale_max)
    y_ticks = tuple(Tick(_r(bottom - plot_h * v / scale_max), str(v))
                    for v in range(0, scale_max + 1, step))
    x_ticks = tuple(Tick(_r(left + i * slot), f"{b.hour:%H:%M}")
                    for i, b in enumerate(buckets) if i % LABEL_EVERY == 0)
    delivered, failed = sum(b.delivered for b in buckets), sum(b.failed for b in buckets)
    if buckets:
        first, last = buckets[0].hour, buckets[-1].hour + timedelta(hours=1)
        period = f"from {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC"
    else:
        period = "no hours"
    desc = (f"Jobs delivered and jobs failed in each hour {period}: {delivered} delivered and"
            f" {failed} failed in all; the busiest hour had {peak}.")
    return Chart(width, height, left, top, right, bottom, scale_max, tuple(bars), y_ticks,
                 x_ticks, f"Delivered and failed jobs per hour, last {len(buckets)} hours", desc)
