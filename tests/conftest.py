"""Fixtures for every part: a scratch MariaDB database, a migrated store, config.

The database server comes from FORMRELAY_TEST_DB_HOST / _USER / _PASSWORD
(default 127.0.0.1:3306, root, empty password). Each test session makes its
own databases named fr_test_<random> and drops them at the end; it never
touches data it did not create.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import mysql.connector
import pytest

from sidecar.store import Database, DbSettings, Store
from sidecar.store.schema import migrate

TEST_DB_HOST = os.environ.get("FORMRELAY_TEST_DB_HOST", "127.0.0.1:3306")
TEST_DB_USER = os.environ.get("FORMRELAY_TEST_DB_USER", "root")
TEST_DB_PASSWORD = os.environ.get("FORMRELAY_TEST_DB_PASSWORD", "")
# Signs the queue's messages (sidecar.queue_signing) in tests that start workers.
QUEUE_SECRET = "test-queue-secret-0123456789"
PREFIX = "wp_"

T = TypeVar("T")


def wait_until(probe: Callable[[], T], timeout: float = 30.0, what: str = "condition",
               interval: float = 0.05) -> T:
    """Poll `probe` until it returns something truthy; fail with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


WP_OPTIONS_DDL = ("CREATE TABLE IF NOT EXISTS {p}options (option_id BIGINT UNSIGNED NOT NULL"
                  " AUTO_INCREMENT PRIMARY KEY, option_name VARCHAR(191) NOT NULL UNIQUE,"
                  " option_value LONGTEXT NOT NULL, autoload VARCHAR(20) NOT NULL DEFAULT 'yes')")


def add_wp_options(db: Database, prefix: str = PREFIX) -> None:
    """WordPress' options table (its shape): what makes a database WordPress for `migrate`."""
    with db.transaction() as cur:
        cur.execute(WP_OPTIONS_DDL.replace("{p}", prefix))


def fill_history(db: Database, **columns: str) -> None:
    """20,000 jobs over 20 forms, created a minute apart: 97% completed, 1% each pending,
    retrying and processing, then ANALYZEd, so EXPLAIN plans as on a site that has run a
    while. `columns`: more columns to fill, name = SQL expression (over `seq`, 1 to 20,000)."""
    names = "".join(f" {name}," for name in columns)
    values = "".join(f" {value}," for value in columns.values())
    with db.transaction() as cur:
        cur.execute(
            f"INSERT INTO {PREFIX}formrelay_jobs (reference, form_id, entry_id, status,{names}"
            " created_at, updated_at) SELECT CONCAT('h', seq), seq % 20, seq,"
            "  ELT(1 + (seq % 100 = 0) + (seq % 100 = 1) * 2 + (seq % 100 = 2) * 3,"
            f"      'completed', 'pending', 'retrying', 'processing'),{values}"
            "  UTC_TIMESTAMP(3) - INTERVAL seq MINUTE, UTC_TIMESTAMP(3) FROM seq_1_to_20000")
        cur.execute(f"ANALYZE TABLE {PREFIX}formrelay_jobs")
        cur.fetchall()


class ScratchDatabases:
    """Creates throwaway databases and drops them, and only them."""

    def __init__(self) -> None:
        self.made: list[str] = []

    def settings(self, name: str) -> DbSettings:
        return DbSettings.parse(TEST_DB_HOST, TEST_DB_USER, TEST_DB_PASSWORD, name)

    def _server(self) -> mysql.connector.MySQLConnection:
        return Database(self.settings("")).connect(database=False)  # type: ignore[return-value]

    def create(self) -> DbSettings:
        name = f"fr_test_{secrets.token_hex(4)}"
        conn = self._server()
        conn.cursor().execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
        conn.close()
        self.made.append(name)
        return self.settings(name)

    def create_migrated(self) -> DbSettings:
        """A new database with the FormRelay tables."""
        settings = self.create()
        db = Database(settings)
        migrate(db, PREFIX)
        db.close()
        return settings

    def drop_all(self) -> None:
        conn = self._server()
        for name in self.made:
            conn.cursor().execute(f"DROP DATABASE IF EXISTS {name}")
        conn.close()


@pytest.fixture(scope="session")
def scratch_dbs() -> Iterator[ScratchDatabases]:
    dbs = ScratchDatabases()
    yield dbs
    dbs.drop_all()


@pytest.fixture(scope="session")
def migrated_db(scratch_dbs: ScratchDatabases) -> DbSettings:
    """One migrated database for the session; `store` empties it before each test."""
    return scratch_dbs.create_migrated()


@pytest.fixture
def db(migrated_db: DbSettings) -> Iterator[Database]:
    database = Database(migrated_db)
    yield database
    database.close()


@pytest.fixture
def store(db: Database) -> Store:
    with db.transaction() as cur:  # documents and log rows go with their jobs
        cur.execute(f"DELETE FROM {PREFIX}formrelay_log")
        cur.execute(f"DELETE FROM {PREFIX}formrelay_jobs")
        cur.execute(f"DELETE FROM {PREFIX}formrelay_counts")  # the counts of the jobs gone
        cur.execute(f"DELETE FROM {PREFIX}formrelay_meta WHERE name <> 'schema_version'")
    return Store(db, PREFIX)
