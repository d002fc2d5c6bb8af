"""How long FormRelay keeps what holds protected health information, as plain facts.

The cleaner (sidecar.sweep.clean, hourly) applies these windows; the dashboard
says from them when a job's submitted values will go. A job's values are its
snapshot and its documents' original file names. The window starts when the
job ended (its last change of status, `updated_at`): completed jobs keep them
FORMRELAY_KEEP_SNAPSHOT_DAYS, failed and cancelled jobs FORMRELAY_KEEP_FAILED_DAYS;
a job still waiting or in progress keeps them until it ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sidecar import states

ENDED_FAILED = tuple(map(str, states.ENDED_FAILED))


@dataclass(frozen=True)
class Retention:
    """The retention settings (days), as config.py defines and defaults them."""

    keep_snapshot_days: int = 7
    keep_completed_days: int = 30
    keep_failed_days: int = 30
    delete_delivered_files: bool = False

    @classmethod
    def from_config(cls, cfg: Any) -> Retention:
        return cls(cfg.keep_snapshot_days, cfg.keep_completed_days, cfg.keep_failed_days,
                   cfg.delete_delivered_files)

    def values_window(self, status: str) -> tuple[int, str] | None:
        """(days, the setting's name) for a job in `status`; None while it has not ended."""
        if status == "completed":
            return self.keep_snapshot_days, "FORMRELAY_KEEP_SNAPSHOT_DAYS"
        if status in ENDED_FAILED:
            return self.keep_failed_days, "FORMRELAY_KEEP_FAILED_DAYS"
        return None


def values_kept(retention: Retention, status: str, ended_at: datetime | None,
                dropped_at: datetime | None) -> dict[str, Any]:
    """What the dashboard says about a job's submitted values.

    `kept_until`: the earliest time the cleaner drops them (it runs hourly, so
    they go within the hour after); None once dropped or while the job is not
    ended. `dropped_at`: when they were dropped. `setting`/`days`: the window.
    """
    window = retention.values_window(status)
    days, setting = window if window else (None, None)
    until = None
    if dropped_at is None and window is not None and ended_at is not None:
        until = ended_at + timedelta(days=window[0])
    return {"kept_until": until, "dropped_at": dropped_at, "setting": setting, "days": days}
