"""The queue backends: embedded SQLite by default, Redis when configured; both by priority."""

from __future__ import annotations

import secrets

import pytest
from huey import PriorityRedisHuey, SqliteHuey

from sidecar import config
from sidecar.queue import build_huey, describe

BASE = {"WORDPRESS_DB_USER": "u", "WORDPRESS_DB_NAME": "d"}


def deliveries_in_order(huey) -> list[str]:
    @huey.task()
    def deliver(label: str) -> str:
        return label

    for label, priority in [("low", 1), ("high", 9), ("mid", 5), ("high-2", 9)]:
        huey.enqueue(deliver.s(label, priority=priority))
    order = []
    while (task := huey.dequeue()) is not None:
        order.append(task.args[0])
    return order


@pytest.mark.unit
def test_without_redis_the_queue_is_sqlite_under_the_data_dir(tmp_path):
    cfg = config.load("migrate", BASE | {"FORMRELAY_DATA_DIR": str(tmp_path / "data")})
    huey = build_huey(cfg)
    assert isinstance(huey, SqliteHuey)
    assert describe(huey).startswith(f"sqlite ({tmp_path / 'data'}")
    assert deliveries_in_order(huey) == ["high", "high-2", "mid", "low"]


@pytest.mark.redis
def test_with_redis_the_queue_is_priority_redis():
    cfg = config.load("migrate", BASE | {"FORMRELAY_REDIS_URL": "redis://127.0.0.1:6379/0"})
    huey = build_huey(cfg, name=f"formrelay-test-{secrets.token_hex(4)}")
    try:
        assert isinstance(huey, PriorityRedisHuey)
        assert describe(huey) == "redis"
        assert deliveries_in_order(huey) == ["high", "high-2", "mid", "low"]
    finally:
        huey.storage.flush_all()
