"""The chaos run's plan: every duration in one place, scaled by configuration, and the
environment the `formrelay worker` processes run with."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import PREFIX, QUEUE_SECRET, TEST_DB_HOST, TEST_DB_PASSWORD, TEST_DB_USER


def _env_float(name: str, default: float, low: float, high: float) -> float:
    raw = os.environ.get(name, "")
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise ValueError(f"{name} must be a number (got {raw!r})") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low:g} and {high:g} (got {value:g})")
    return value


@dataclass(frozen=True)
class Plan:
    """What one chaos run does, and when (seconds after the first submission, T0).

    FORMRELAY_CHAOS_SCALE scales the partner's outage (120 s at scale 1) and the
    drain allowance; the worker kill interval stays the literal 10 s. Nothing that
    is checked depends on the scale.
    """

    scale: float
    seed: int
    submissions: int = 500
    html_share: float = 0.03  # submissions with one HTML page named .pdf (rejected)
    workers: int = 3
    threads: int = 4
    kill_every: float = 10.0
    flush_at: float = 20.0
    kill_db_at: float = 35.0
    outage_at: float = 50.0
    full_outage: float = 120.0
    drain_allowance: float = 240.0  # after the outage ends, every job must end within this
    # the partner: 30% 5xx, 10% timeouts (half of them after accepting)
    error_rate: float = 0.30
    timeout_rate: float = 0.05
    timeout_after_accept_rate: float = 0.05
    hang_seconds: float = 4.0
    read_timeout: float = 2.0  # below hang_seconds: a hang is a timeout for the sidecar
    latency_ms: float = 40.0
    jitter_ms: float = 60.0

    @classmethod
    def from_env(cls) -> Plan:
        scale = _env_float("FORMRELAY_CHAOS_SCALE", 1.0, 0.05, 10.0)
        raw_seed = os.environ.get("FORMRELAY_CHAOS_SEED", "")
        seed = int(raw_seed) if raw_seed.isdigit() else random.SystemRandom().randrange(10**6)
        return cls(scale=scale, seed=seed)

    @property
    def failure_rate(self) -> float:
        """The share of requests that fail (for the sidecar) outside the outage."""
        return self.error_rate + self.timeout_rate + self.timeout_after_accept_rate

    @property
    def outage_seconds(self) -> float:
        return round(self.full_outage * self.scale, 1)

    @property
    def outage_ends(self) -> float:
        return self.outage_at + self.outage_seconds

    @property
    def drain_deadline(self) -> float:
        """Seconds after T0 by which every job must have ended."""
        return self.outage_ends + max(120.0, self.drain_allowance * min(1.0, self.scale))

    def sim_knobs(self) -> dict[str, Any]:
        return {"error_rate": self.error_rate, "timeout_rate": self.timeout_rate,
                "timeout_after_accept_rate": self.timeout_after_accept_rate,
                "hang_seconds": self.hang_seconds, "latency_ms": self.latency_ms,
                "jitter_ms": self.jitter_ms, "seed": self.seed}

    def worker_settings(self) -> dict[str, str]:
        """The sidecar's own settings for the run (all real FORMRELAY_* names)."""
        return {
            "FORMRELAY_WORKERS": str(self.threads),
            "FORMRELAY_WORKER_TYPE": "thread",
            "FORMRELAY_LEASE_SECONDS": "10",  # the minimum: a killed worker's steps come back soon
            "FORMRELAY_BACKOFF_BASE": "1",
            "FORMRELAY_BACKOFF_CAP": "10",
            # Outside the outage the partner fails 40% of requests (30% 5xx + 10% timeouts),
            # so at the default 10 attempts a step runs out of them by chance alone with
            # probability 0.4**10 ~ 1e-4: about 0.16 expected in a run of ~1,500 steps, ~15%
            # of runs failing "zero steps ran out of attempts" for reasons unrelated to the
            # outage. At 15 it is 0.4**15 ~ 1e-6 a step. A deployment facing a partner that
            # fails 40% of requests would raise attempts the same way. The check stays as
            # strict, and the outage must still not spend attempts (the pause holds them).
            # It governs every step: the claim replaces the default the bridge writes into
            # the job row (10), and the engine writes it into each document row.
            "FORMRELAY_MAX_ATTEMPTS": "15",
            "FORMRELAY_RECONCILE_DAYS": "0",
            "FORMRELAY_SHUTDOWN_SECONDS": "1",
            "FORMRELAY_SWEEP_SECONDS": "5",
            "FORMRELAY_PAUSE_AFTER": "12",  # 0.4**12: random failures alone rarely pause
            "FORMRELAY_PROBE_MIN_SECONDS": "2",
            "FORMRELAY_PROBE_MAX_SECONDS": "8",
            "FORMRELAY_PARTNER_CONCURRENCY": "8",
            "FORMRELAY_PARTNER_RPS": "40",
            "FORMRELAY_CONNECT_TIMEOUT": "2",
            "FORMRELAY_READ_TIMEOUT": f"{self.read_timeout:g}",
        }


def worker_env(plan: Plan, db_name: str, partner_url: str, redis_url: str, uploads: Path,
               data_dir: Path) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"], "LANG": os.environ.get("LANG", "C.UTF-8"),
        "WORDPRESS_DB_HOST": TEST_DB_HOST, "WORDPRESS_DB_USER": TEST_DB_USER,
        "WORDPRESS_DB_PASSWORD": TEST_DB_PASSWORD, "WORDPRESS_DB_NAME": db_name,
        "WORDPRESS_TABLE_PREFIX": PREFIX, "FORMRELAY_PARTNER_URL": partner_url,
        "FORMRELAY_REDIS_URL": redis_url, "FORMRELAY_UPLOADS_DIR": str(uploads),
        "FORMRELAY_DATA_DIR": str(data_dir), "FORMRELAY_SHARED_SECRET": QUEUE_SECRET,
        **plan.worker_settings(),
    }
