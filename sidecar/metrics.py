"""Prometheus metrics (issue 12): placeholder until the metrics module lands.

The functions here are the names other modules call; each records nothing yet.
"""

from __future__ import annotations


def alert_sent(channel: str, outcome: str) -> None:
    """An alert message left for `channel` (email | webhook); `outcome`: sent | failed."""
