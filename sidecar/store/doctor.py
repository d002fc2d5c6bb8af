"""The reads `formrelay doctor` makes: grants, the server's clock, WordPress' options
and tables, and the file references of recent jobs. Read-only; none of it is printed
as is (the doctor prints counts, table names and privilege names only)."""

from __future__ import annotations

from datetime import datetime

from mysql.connector import errorcode
from mysql.connector.errors import ProgrammingError

from sidecar.store.db import Database


class DoctorReads:
    def __init__(self, db: Database, prefix: str) -> None:
        self.db, self.prefix = db, prefix

    def grants(self) -> list[str]:
        """SHOW GRANTS of the connected account (each a `GRANT ... ON ... TO ...` line)."""
        with self.db.transaction() as cur:
            cur.execute("SHOW GRANTS FOR CURRENT_USER()")
            return [str(next(iter(r.values()))) for r in cur.fetchall()]

    def utc_now(self) -> datetime:
        with self.db.transaction() as cur:
            cur.execute("SELECT UTC_TIMESTAMP(6) AS now")
            now: datetime = cur.fetchone()["now"]
            return now

    def existing_tables(self, names: list[str]) -> set[str]:
        """Which of `names` (full table names) exist in this database."""
        if not names:
            return set()
        with self.db.transaction() as cur:
            cur.execute("SELECT table_name AS name FROM information_schema.tables"
                        " WHERE table_schema = DATABASE() AND table_name IN"
                        f" ({', '.join(['%s'] * len(names))})", names)
            return {str(r["name"]) for r in cur.fetchall()}

    def option(self, name: str) -> str | None:
        """A WordPress option's raw value; None when unset or without an options table."""
        try:
            with self.db.transaction() as cur:
                cur.execute(f"SELECT option_value FROM {self.prefix}options"
                            " WHERE option_name = %s LIMIT 1", (name,))
                row = cur.fetchone()
        except ProgrammingError as exc:
            if exc.errno != errorcode.ER_NO_SUCH_TABLE:
                raise
            return None
        return None if row is None else str(row["option_value"])

    def wpforms_form_count(self) -> int:
        with self.db.transaction() as cur:
            cur.execute(f"SELECT COUNT(*) AS n FROM {self.prefix}posts"
                        " WHERE post_type = 'wpforms' AND post_status = 'publish'")
            return int(cur.fetchone()["n"])

    def recent_snapshots(self, limit: int,
                         include_completed: bool) -> list[tuple[str | None, str]]:
        """(seal key id or None, snapshot) of the newest jobs that still have theirs
        (their file references)."""
        completed = "" if include_completed else " AND status <> 'completed'"
        with self.db.transaction() as cur:
            cur.execute(f"SELECT seal_key, snapshot FROM {self.prefix}formrelay_jobs"
                        f" WHERE snapshot IS NOT NULL{completed} ORDER BY id DESC LIMIT %s",
                        (limit,))
            return [(r["seal_key"], str(r["snapshot"])) for r in cur.fetchall()]
