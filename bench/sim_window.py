"""A delivery rate from the partner simulator's own record, not from the sender's clock.

rate = jobs / (last - first partner request), where a request's time is the
`created` stamp the simulator gives the record or document it made (its
latency is the same for every request, so the span between them is the span
between their arrivals). Both contenders of a side-by-side run are measured
the same way on the same simulator.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


class WindowError(Exception):
    """The simulator's record cannot give a rate (nothing, or all in one instant)."""


@dataclass(frozen=True)
class Window:
    records: int
    documents: int
    first: float  # epoch seconds of the first thing created
    last: float  # epoch seconds of the last thing created

    @property
    def seconds(self) -> float:
        return self.last - self.first

    def rate(self, jobs: int) -> float:
        """Jobs per second over the window."""
        if self.seconds <= 0:
            raise WindowError(f"{jobs} jobs reached the partner within one clock tick")
        return jobs / self.seconds


def _stamp(item: Mapping[str, Any]) -> float:
    return datetime.fromisoformat(str(item["created"])).timestamp()


def window(records: Iterable[Mapping[str, Any]]) -> Window:
    """The span of `GET /_sim/records`: its records and their documents."""
    stamps: list[float] = []
    count = docs = 0
    for record in records:
        count += 1
        stamps.append(_stamp(record))
        for doc in record.get("documents", ()):
            docs += 1
            stamps.append(_stamp(doc))
    if not stamps:
        raise WindowError("the simulator holds no records")
    return Window(count, docs, min(stamps), max(stamps))


def ratio(ours: float, theirs: float) -> float:
    """How many times `theirs` `ours` is (2.0: twice as fast)."""
    if theirs <= 0:
        raise WindowError("the other rate is zero")
    return ours / theirs
