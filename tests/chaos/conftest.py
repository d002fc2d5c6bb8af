"""Fixtures of the chaos suite. Every process a fixture starts is stopped by its finalizer,
whether the test passed or not: the workers first, then the partner and Redis."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from sidecar.partner_sim import RunningSim, run_in_thread
from sidecar.store import DbSettings
from tests.chaos.plan import Plan
from tests.chaos.processes import PrivateRedis, WorkerPool
from tests.conftest import ScratchDatabases


@pytest.fixture
def plan() -> Plan:
    try:
        return Plan.from_env()
    except ValueError as exc:
        pytest.fail(str(exc))


@pytest.fixture
def chaos_logs(tmp_path: Path) -> Path:
    path = tmp_path / "logs"
    path.mkdir()
    return path


@pytest.fixture
def chaos_db(scratch_dbs: ScratchDatabases) -> DbSettings:
    """A migrated database of its own, so a KILL by database name hits only this run."""
    return scratch_dbs.create_migrated()


@pytest.fixture
def private_redis(tmp_path: Path, chaos_logs: Path) -> Iterator[PrivateRedis]:
    """A redis-server of the test's own: FLUSHALL must not touch the machine's shared Redis."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(binary).exists():
        pytest.fail("redis-server is not installed (the chaos suite runs a private one to"
                    " FLUSHALL): `make bootstrap` installs the redis-server package")
    server = PrivateRedis(binary, tmp_path / "redis", chaos_logs / "redis.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def chaos_sim(plan: Plan) -> Iterator[RunningSim]:
    # Hangs hold a server thread each; leave plenty for the requests that do not hang.
    sim = run_in_thread(threads=96, **plan.sim_knobs())
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def uploads(tmp_path: Path) -> Path:
    path = tmp_path / "uploads"
    path.mkdir()
    return path.resolve()


class Pools:
    """Worker pools made by the test; all stopped at the end."""

    def __init__(self) -> None:
        self.made: list[WorkerPool] = []

    def add(self, pool: WorkerPool) -> WorkerPool:
        self.made.append(pool)
        return pool


@pytest.fixture
def worker_pools(private_redis: PrivateRedis, chaos_sim: RunningSim) -> Iterator[Pools]:
    """Depends on Redis and the partner so that it is torn down (workers stopped) first."""
    pools = Pools()
    try:
        yield pools
    finally:
        for pool in pools.made:
            pool.stop_all()
