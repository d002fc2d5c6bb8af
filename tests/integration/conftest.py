"""Fixtures for delivery tests: the partner simulator over HTTP and an engine on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sidecar.partner_sim import RunningSim, run_in_thread
from sidecar.store import Store
from tests.conftest import PREFIX
from tests.integration.delivery import WPFORMS_DDL, Delivery, build_delivery


@pytest.fixture
def sim() -> Iterator[RunningSim]:
    """A fresh simulator; hangs (timeouts) last 3 s, past the client's 1 s read timeout."""
    running = run_in_thread(hang_seconds=3, seed=1)
    yield running
    running.stop()


@pytest.fixture
def uploads(tmp_path: Path) -> Path:
    path = tmp_path / "uploads"
    (path / "wpforms" / "12-abc").mkdir(parents=True)
    return path.resolve()


@pytest.fixture
def wpforms_tables(store: Store) -> Iterator[Store]:
    """WPForms' tables in the test database, empty; dropped afterwards, so a later test's
    sweep finds no entries to reconcile."""
    tables = ("wpforms_entries", "wpforms_entry_meta", "posts", "postmeta")
    with store.db.transaction() as cur:
        for statement in filter(str.strip, WPFORMS_DDL.replace("{p}", PREFIX).split(";")):
            cur.execute(statement)
        for table in tables:
            cur.execute(f"DELETE FROM {PREFIX}{table}")
    yield store
    with store.db.transaction() as cur:
        cur.execute(f"DROP TABLE {', '.join(PREFIX + t for t in tables)}")


@pytest.fixture
def delivery(store: Store, sim: RunningSim, uploads: Path) -> Delivery:
    return build_delivery(store, sim.url, uploads, read_timeout=1.0)
