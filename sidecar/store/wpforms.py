"""Reads of WPForms' own tables (Pro's entry tables) and WordPress media metadata.

Used when a job's snapshot cannot be used (the fallback) and to find stored
entries that have no job (backfill, reconciliation). Read-only: FormRelay
never writes to WPForms' tables.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mysql.connector import errorcode
from mysql.connector.errors import ProgrammingError

from sidecar.errors import SubmissionError
from sidecar.store.base import StoreBase


@dataclass(frozen=True)
class Entry:
    entry_id: int
    form_id: int
    status: str
    fields: str  # JSON text, as WPForms stored it
    date: datetime | None = None  # when WPForms stored it (UTC, whole seconds)


class WPFormsReader(StoreBase):
    def wpforms_entry(self, entry_id: int) -> Entry | None:
        with self._wpforms() as cur:
            cur.execute("SELECT entry_id, form_id, status, fields"
                        f" FROM {self.prefix}wpforms_entries WHERE entry_id = %s", (entry_id,))
            row = cur.fetchone()
        return Entry(int(row["entry_id"]), int(row["form_id"]), str(row["status"]),
                     str(row["fields"])) if row else None

    def attached_file(self, attachment_id: int) -> str | None:
        """A media-library file's path relative to uploads (`_wp_attached_file`)."""
        with self.db.transaction() as cur:
            cur.execute(f"SELECT meta_value FROM {self.prefix}postmeta WHERE post_id = %s"
                        " AND meta_key = '_wp_attached_file' LIMIT 1", (attachment_id,))
            row = cur.fetchone()
        return str(row["meta_value"]) if row and row["meta_value"] else None

    def bridge_option_exists(self) -> bool:
        """Whether WordPress has FormRelay Bridge's settings option (the plugin was set up).

        False too when there is no options table (a database without WordPress).
        """
        try:
            with self.db.transaction() as cur:
                cur.execute(f"SELECT 1 AS found FROM {self.prefix}options"
                            " WHERE option_name = 'formrelay_bridge_settings' LIMIT 1")
                return cur.fetchone() is not None
        except ProgrammingError as exc:
            if exc.errno != errorcode.ER_NO_SUCH_TABLE:
                raise
            return False

    def entries_without_jobs(self, form_id: int | None = None, since: datetime | None = None,
                             skip_imported: bool = False, after_id: int = 0,
                             limit: int = 500, forms: Sequence[int] | None = None) -> list[Entry]:
        """Completed entries (status '') of published forms that no job refers to, by id.

        Page with `after_id` (the last entry id seen). Entries imported from Lite's
        backup fire no hook; reconciliation passes skip_imported to leave them alone.
        `forms`: only entries of these forms (None: any form).
        """
        if forms is not None and not forms:
            return []
        where, args = self._without_jobs(form_id, since, skip_imported)
        where.append("e.entry_id > %s")
        args.append(after_id)
        if forms is not None:
            where.append(f"e.form_id IN ({', '.join(['%s'] * len(forms))})")
            args.extend(forms)
        with self._wpforms() as cur:
            cur.execute(
                f"SELECT e.entry_id, e.form_id, e.status, e.fields, e.date {self._from_entries()}"
                f" WHERE {' AND '.join(where)} ORDER BY e.entry_id LIMIT %s", (*args, limit))
            return [Entry(int(r["entry_id"]), int(r["form_id"]), str(r["status"]), str(r["fields"]),
                          r["date"]) for r in cur.fetchall()]

    def entries_without_jobs_outside(self, forms: Sequence[int], form_id: int | None = None,
                                     since: datetime | None = None) -> dict[int, int]:
        """{form id: count} of the entries `entries_without_jobs` would find in forms
        other than `forms` (what backfill skips because those forms are not delivered)."""
        where, args = self._without_jobs(form_id, since, False)
        if forms:
            where.append(f"e.form_id NOT IN ({', '.join(['%s'] * len(forms))})")
            args.extend(forms)
        with self._wpforms() as cur:
            cur.execute(f"SELECT e.form_id, COUNT(*) AS n {self._from_entries()}"
                        f" WHERE {' AND '.join(where)} GROUP BY e.form_id ORDER BY e.form_id",
                        args)
            return {int(r["form_id"]): int(r["n"]) for r in cur.fetchall()}

    def _from_entries(self) -> str:
        return (f"FROM {self.prefix}wpforms_entries e"
                f" JOIN {self.prefix}posts p ON p.ID = e.form_id AND p.post_type = 'wpforms'"
                "  AND p.post_status = 'publish'"
                f" LEFT JOIN {self.t.jobs} j"
                "  ON j.reference = CONCAT('wpforms:', e.form_id, ':', e.entry_id)")

    def _without_jobs(self, form_id: int | None, since: datetime | None,
                      skip_imported: bool) -> tuple[list[str], list[object]]:
        where = ["e.status = ''", "j.id IS NULL"]
        args: list[object] = []
        if form_id is not None:
            where.append("e.form_id = %s")
            args.append(form_id)
        if since is not None:
            where.append("e.date >= %s")
            args.append(since)
        if skip_imported:
            where.append(f"NOT EXISTS (SELECT 1 FROM {self.prefix}wpforms_entry_meta m"
                         " WHERE m.entry_id = e.entry_id AND m.type = 'backup_id')")
        return where, args

    def first_entry_since(self, since: datetime, after_id: int) -> int | None:
        """The first WPForms entry id after `after_id` stored on or after `since`.

        Walks the primary key from `after_id` (a watermark the caller keeps), so
        it reads only the entries that left the window since the last call.
        """
        with self._wpforms() as cur:
            cur.execute(f"SELECT entry_id FROM {self.prefix}wpforms_entries"
                        " WHERE entry_id > %s AND date >= %s ORDER BY entry_id LIMIT 1",
                        (after_id, since))
            row = cur.fetchone()
        return int(row["entry_id"]) if row else None

    @contextmanager
    def _wpforms(self) -> Iterator[Any]:
        """A transaction that reports missing WPForms tables as what they mean."""
        try:
            with self.db.transaction() as cur:
                yield cur
        except ProgrammingError as exc:
            # A least-privilege user is denied (1142) a table it has no grant on, and the
            # server does not say whether it exists: Lite's absent tables read either way.
            if exc.errno not in (errorcode.ER_NO_SUCH_TABLE, errorcode.ER_TABLEACCESS_DENIED_ERROR):
                raise
            denied = exc.errno == errorcode.ER_TABLEACCESS_DENIED_ERROR
            raise SubmissionError("WPForms entry tables do not exist"
                                  + (" or this user may not read them" if denied else "")
                                  + " (WPForms Lite stores no entries)") from None
