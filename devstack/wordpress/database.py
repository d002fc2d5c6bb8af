"""The MariaDB server a site's database lives on: connect, create (never reuse), drop."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import mysql.connector

from .errors import WordPressError

_ER_DB_CREATE_EXISTS = 1007


@dataclass(frozen=True)
class DatabaseServer:
    host: str
    port: int
    user: str
    password: str

    @contextlib.contextmanager
    def connect(self, database: str | None = None) -> Iterator[Any]:
        """An autocommit connection, closed on leaving the block."""
        conn = mysql.connector.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=database,
            autocommit=True,
            connection_timeout=10,
        )
        try:
            yield conn
        finally:
            conn.close()

    def create(self, name: str) -> None:
        """Create database ``name``; WordPressError if it exists (it is someone else's)."""
        with self.connect() as conn:
            try:
                conn.cursor().execute(
                    f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                )
            except mysql.connector.Error as exc:
                if exc.errno == _ER_DB_CREATE_EXISTS:
                    raise WordPressError(
                        f"database {name} already exists; refusing to touch it"
                    ) from exc
                raise

    def drop(self, name: str) -> None:
        with self.connect() as conn:
            conn.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
