"""The dashboard's reads (docs/dashboard.md): job lists, counts, the chart, the log viewer.

Every WHERE clause is built from fixed fragments with %s parameters. What the
queries lean on (1,000,000 jobs and 10,000,000 log rows are the yardstick):
  * status counts read the counts table and, for the waiting statuses, an index
    holding the status (sidecar/store/counts.py): the history is never counted;
    with dates or a search, the index range or the matches they select;
  * the jobs page orders by an index (`PRIMARY`, `created`, `status_created`,
    `attempts`, `next_attempt`, `updated`), so LIMIT stops early; a search is
    the union of indexed lookups (reference prefix, ids, partner id, and the
    error words: the newest SEARCH_WINDOW jobs when they are common there, else
    the FULLTEXT index on last_error), filtered and sorted as it stands;
  * the chart counts completed_at and failed_at ranges (`completed`, `failed`);
  * the log viewer reads newest first through `created`, `level_created`,
    `event_created` or `job`, and fetches one row more than a page instead of
    counting a million rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sidecar.states import CLAIMABLE, WAITING, Status, sql_in
from sidecar.store.base import StoreBase
from sidecar.store.counts import CountsStore

if TYPE_CHECKING:
    from sidecar.admin.filters import JobFilter, JobQuery, LogQuery

JOB_LIST_COLUMNS = (
    "j.id, j.reference, j.source, j.form_id, j.entry_id, j.status, j.phase, j.priority,"
    " j.attempts, j.max_attempts, j.next_attempt_at, j.last_error, j.error_category,"
    " j.partner_record_id, j.partner,"
    " j.key_generation, j.created_at, j.updated_at")
LOG_COLUMNS = ("id, created_at, level, event, message, job_id, document_id, attempt,"
               " http_status, duration_ms, actor")
# orderby -> the columns sorted on, each an index's order (the primary key closes every index).
ORDERS = {
    "id": ("j.id",),
    "created": ("j.created_at", "j.id"),
    "status": ("j.status", "j.created_at", "j.id"),
    "attempts": ("j.attempts", "j.id"),
    "next_attempt": ("j.next_attempt_at", "j.id"),
    "updated": ("j.updated_at", "j.id"),
}
WALKS_DATES = {"id": "PRIMARY", "attempts": "attempts", "next_attempt": "next_attempt",
               "updated": "updated"}
# What a search's lookups read for the filters and the orders above.
SEARCH_COLUMNS = ("id, status, form_id, partner, created_at, attempts, next_attempt_at,"
                  " updated_at")
MAX_SEARCH_ID = 2**63 - 1
# An error-word search reads the newest SEARCH_WINDOW jobs (a range of the primary key,
# matched with REGEXP) instead of the FULLTEXT index when the words are common there (at
# least WINDOW_ENOUGH matches): the index answers a rare word at once, but a common one
# costs it time in proportion to every match in the table (0.7 s for 30,000 matches).
SEARCH_WINDOW = 20_000
WINDOW_ENOUGH = 50
FULLTEXT_IDS = 5_000  # matches of a rarer search read once as ids; more: MATCH in each query
LOG_SEARCH_WINDOW = 20_000  # newest log rows a search reads before asking the FULLTEXT index


def like_prefix(text: str) -> str:
    """A LIKE pattern (escape character `!`) for values that start with `text`."""
    return re.sub(r"([!%_])", r"!\1", text) + "%"


@dataclass(frozen=True)
class SearchScope:
    """Where a search's error words are looked for: among the jobs with an id above
    `since_id` (REGEXP; 0: every job), among `ids` (found by the FULLTEXT index), or,
    both None, through the FULLTEXT index in each query."""

    since_id: int | None = None
    ids: tuple[int, ...] | None = None

    @property
    def windowed(self) -> bool:
        """Only the newest jobs were searched: counts are lower bounds."""
        return bool(self.since_id)


@dataclass(frozen=True)
class HourCount:
    hour: datetime  # the hour's start, UTC
    delivered: int
    failed: int


class AdminStore(CountsStore, StoreBase):
    """(CountsStore brings counts_by_status and recount_jobs to the Store.)"""

    # ---- the jobs list ------------------------------------------------------------------

    def search_scope(self, f: JobFilter) -> SearchScope:
        """Where `f`'s error words are looked for (see SearchScope). The window is chosen
        when it holds WINDOW_ENOUGH matches in `f`'s form and dates (its status aside, as
        the counts are); else the FULLTEXT index is asked once, here, for the ids of at
        most FULLTEXT_IDS matches, which the counts and the page then share. Asked once
        per page, before counts and rows."""
        if not f.word_list:
            return SearchScope()
        with self.db.transaction() as cur:
            cur.execute(f"SELECT MAX(id) AS top FROM {self.t.jobs}")
            top = int(cur.fetchone()["top"] or 0)
            if top <= SEARCH_WINDOW:
                return SearchScope(since_id=0)
            narrow = [(c.removeprefix("j."), v) for c, v in _narrowing(f) if v is not None]
            cur.execute(f"SELECT COUNT(*) AS n FROM (SELECT 1 FROM {self.t.jobs}"
                        f" FORCE INDEX (PRIMARY) WHERE id > %s AND {_regexps(f)}"
                        + "".join(f" AND {c}" for c, _ in narrow) + " LIMIT %s) found",
                        (top - SEARCH_WINDOW, *_words(f), *(v for _, v in narrow),
                         WINDOW_ENOUGH))
            if int(cur.fetchone()["n"]) >= WINDOW_ENOUGH:
                return SearchScope(since_id=top - SEARCH_WINDOW)
            cur.execute(f"SELECT id FROM {self.t.jobs} WHERE"
                        " MATCH (last_error) AGAINST (%s IN BOOLEAN MODE) LIMIT %s",
                        (f.words, FULLTEXT_IDS + 1))
            ids = tuple(int(r["id"]) for r in cur.fetchall())
        return SearchScope(ids=ids) if len(ids) <= FULLTEXT_IDS else SearchScope()

    def _job_filter_sql(self, f: JobFilter, *more: tuple[str, Any],
                        hint: str = "", scope: SearchScope | None = None
                        ) -> tuple[str, list[Any]]:
        """`FROM ... j WHERE ...` for a filter, and its parameters; `more`: further
        (clause, parameter) conditions, ANDed; `hint`: index hints for the jobs table;
        `scope`: where the error words are looked for (None: the FULLTEXT index).

        A search reads the union of indexed lookups (reference prefix, ids, partner
        id, the error words) with the columns filters and sorts need, as `j`: the
        matched rows are read once, by the lookup that found them.
        """
        source, params = f"{self.t.jobs} j{hint}", list[Any]()
        if f.search:
            lookups = ["reference LIKE %s ESCAPE '!'", "partner_record_id = %s"]
            params += [like_prefix(f.search), f.search]
            if f.search.isascii() and f.search.isdigit() and int(f.search) <= MAX_SEARCH_ID:
                lookups += ["id = %s", "entry_id = %s"]
                params += [int(f.search), int(f.search)]
            scope = scope or SearchScope()
            if f.words and scope.since_id is not None:  # each word begins a word of the error
                lookups.append(f"id > %s AND {_regexps(f)}")
                params += [scope.since_id, *_words(f)]
            elif f.words and scope.ids is not None:  # what the index found, by primary key
                lookups.append(f"id IN ({', '.join(['%s'] * len(scope.ids))})"
                               if scope.ids else "FALSE")
                params += scope.ids
            elif f.words:
                lookups.append("MATCH (last_error) AGAINST (%s IN BOOLEAN MODE)")
                params.append(f.words)
            source = "(" + " UNION ".join(
                f"SELECT {SEARCH_COLUMNS} FROM {self.t.jobs}"
                f"{' FORCE INDEX (PRIMARY)' if w.startswith('id > ') else ''} WHERE {w}"
                for w in lookups) + ") j"
        where = []
        for clause, value in (("j.status = %s", f.status), *_narrowing(f), *more):
            if value is not None:
                where.append(clause)
                params.append(value)
        return f" FROM {source}" + (" WHERE " + " AND ".join(where) if where else ""), params

    def job_status_counts(self, f: JobFilter, scope: SearchScope | None = None
                          ) -> dict[str, int]:
        """Jobs per status matching `f` (its status ignored): the list's status views.

        Without a search, dates or a partner, the counts table and the queue's index
        (counts.py); else counted over what they select (a partner: its range of the
        `partner_status` index, migration 0010, read without the rows).
        """
        if (not f.search and f.created_from is None and f.created_before is None
                and f.partner is None):
            return self.counts_by_status(f.form_id)
        sql, params = self._job_filter_sql(f.without_status(), scope=scope)
        with self.db.transaction() as cur:
            cur.execute(f"SELECT j.status, COUNT(*) AS n{sql} GROUP BY j.status", params)
            return {str(r["status"]): int(r["n"]) for r in cur.fetchall()}

    def job_page(self, q: JobQuery, scope: SearchScope | None = None) -> list[dict[str, Any]]:
        """One page of the jobs list, each row with its documents' counts."""
        direction = "ASC" if q.order == "asc" else "DESC"
        order = ", ".join(f"{column} {direction}" for column in ORDERS[q.orderby])
        # Ids and these times grow with the creation time: walking such an index from one
        # end towards an old date range reads every newer row first. With a range, its
        # index is read instead and the ids sorted (a bounded, index-only sort).
        hint = ""
        if (q.filter.date_from or q.filter.date_to) and q.orderby in WALKS_DATES:
            hint = f" IGNORE INDEX FOR ORDER BY ({WALKS_DATES[q.orderby]})"
        sql, params = self._job_filter_sql(q.filter, hint=hint, scope=scope)
        # The page's ids first, from an index alone where one covers the filter and the
        # order; then only those rows are read (they are wide: the snapshot is inline).
        with self.db.transaction() as cur:
            cur.execute(f"SELECT {JOB_LIST_COLUMNS} FROM (SELECT j.id{sql} ORDER BY {order}"
                        f" LIMIT %s OFFSET %s) page JOIN {self.t.jobs} j ON j.id = page.id"
                        f" ORDER BY {order}", (*params, q.per_page, q.offset))
            rows = list(cur.fetchall())
            self._add_document_counts(cur, rows)
        return rows

    def _add_document_counts(self, cur: Any, rows: list[dict[str, Any]]) -> None:
        counts: dict[int, tuple[int, int]] = {}
        if rows:
            cur.execute(f"SELECT job_id, COUNT(*) AS total,"
                        f" SUM(status = '{Status.UPLOADED.value}') AS uploaded"
                        f" FROM {self.t.documents} WHERE job_id IN"
                        f" ({', '.join(['%s'] * len(rows))}) GROUP BY job_id",
                        [r["id"] for r in rows])
            counts = {int(r["job_id"]): (int(r["total"]), int(r["uploaded"] or 0))
                      for r in cur.fetchall()}
        for row in rows:
            row["documents_total"], row["documents_uploaded"] = counts.get(int(row["id"]), (0, 0))

    def failed_job_ids(self, f: JobFilter, after_id: int = 0, limit: int = 500) -> list[int]:
        """Ids of failed jobs matching `f` (its status ignored), ascending from `after_id`."""
        sql, params = self._job_filter_sql(replace(f, status="failed"), ("j.id > %s", after_id))
        with self.db.transaction() as cur:
            cur.execute(f"SELECT j.id{sql} ORDER BY j.id LIMIT %s", (*params, limit))
            return [int(r["id"]) for r in cur.fetchall()]

    def admin_job(self, job_id: int) -> dict[str, Any] | None:
        """One job as the dashboard shows it (no snapshot), with its documents' counts."""
        with self.db.transaction() as cur:
            cur.execute(f"SELECT {JOB_LIST_COLUMNS}, j.values_dropped_at, j.seal_key"
                        f" FROM {self.t.jobs} j WHERE j.id = %s", (job_id,))
            rows = list(cur.fetchall())
            self._add_document_counts(cur, rows)
        return rows[0] if rows else None

    def job_snapshot(self, job_id: int) -> dict[str, Any] | None:
        """The job's snapshot text (or None; sealed when seal_key is set) with what
        decides where its values are."""
        with self.db.transaction() as cur:
            cur.execute(f"SELECT snapshot, seal_key, source, status, form_id, entry_id,"
                        f" values_dropped_at FROM {self.t.jobs} WHERE id = %s", (job_id,))
            row: dict[str, Any] | None = cur.fetchone()
        return row

    def due_documents_of(self, job_id: int) -> list[tuple[int, int]]:
        """The job's documents due now, as (id, the job's priority), to ring them."""
        with self.db.transaction() as cur:
            cur.execute(f"SELECT d.id, j.priority FROM {self.t.documents} d"
                        f" JOIN {self.t.jobs} j ON j.id = d.job_id WHERE d.job_id = %s"
                        f" AND d.status IN {sql_in(CLAIMABLE)}"
                        " AND d.next_attempt_at <= UTC_TIMESTAMP(3) ORDER BY d.id", (job_id,))
            return [(int(r["id"]), int(r["priority"])) for r in cur.fetchall()]

    # ---- the overview -------------------------------------------------------------------

    def oldest_waiting_seconds(self) -> float | None:
        """Age of the oldest job still waiting for delivery; each MIN reads one index entry."""
        mins = " UNION ALL ".join(
            f"SELECT MIN(created_at) AS t FROM {self.t.jobs} WHERE status = %s" for _ in WAITING)
        with self.db.transaction() as cur:
            cur.execute("SELECT TIMESTAMPDIFF(MICROSECOND, MIN(t), UTC_TIMESTAMP(3)) / 1000000"
                        f" AS age FROM ({mins}) oldest", tuple(map(str, WAITING)))
            age = cur.fetchone()["age"]
        return None if age is None else max(0.0, float(age))

    def hourly_outcomes(self, hours: int = 24) -> list[HourCount]:
        """Jobs completed and jobs failed in each of the last `hours` hours, oldest first.

        The current hour is the last bucket. A job counts as failed in the hour of
        its failed_at (its latest failure, kept when someone retries it).
        """
        with self.db.transaction() as cur:
            now = self.now(cur)
            last = now.replace(minute=0, second=0, microsecond=0)
            first, end = last - timedelta(hours=hours - 1), last + timedelta(hours=1)
            found: dict[str, dict[int, int]] = {}
            for name, column in (("delivered", "completed_at"), ("failed", "failed_at")):
                cur.execute(f"SELECT TIMESTAMPDIFF(HOUR, %s, {column}) AS bucket, COUNT(*) AS n"
                            f" FROM {self.t.jobs} WHERE {column} >= %s AND {column} < %s"
                            " GROUP BY bucket", (first, first, end))
                found[name] = {int(r["bucket"]): int(r["n"]) for r in cur.fetchall()}
        return [HourCount(first + timedelta(hours=i), found["delivered"].get(i, 0),
                          found["failed"].get(i, 0)) for i in range(hours)]

    # ---- the log viewer -----------------------------------------------------------------

    def log_page(self, q: LogQuery) -> tuple[list[dict[str, Any]], bool]:
        """One page of log rows, newest first, and whether more follow.

        A search matches each word at a word start. The FULLTEXT index answers it
        fast for a rare word, but a word in a large part of a million rows (say
        "timeout") costs it seconds; so a search first reads only the newest
        LOG_SEARCH_WINDOW rows (of the date range), matching with REGEXP, and asks
        the index only when they do not fill the page. One job's rows are few:
        they are read with REGEXP alone.
        """
        where: list[tuple[str, Any]] = [
            (clause, value) for clause, value in (
                ("level = %s", q.level), ("event = %s", q.event), ("job_id = %s", q.job_id),
                ("created_at >= %s", q.created_from), ("created_at < %s", q.created_before))
            if value is not None]
        words: list[tuple[str, Any]] = [("message REGEXP %s", rf"\b{word}") for word in q.word_list]
        with self.db.transaction() as cur:
            if words and q.job_id is None:
                top = self._newest_log_id(cur, q.created_before)
                window = [("id > %s", top - LOG_SEARCH_WINDOW), ("id <= %s", top), *words]
                rows = self._log_rows(cur, where + window, q, " FORCE INDEX (PRIMARY)")
                if len(rows) > q.per_page:
                    return rows[:q.per_page], True
                words = [("MATCH (message) AGAINST (%s IN BOOLEAN MODE)", q.words)]
            rows = self._log_rows(cur, where + words, q)
        return rows[:q.per_page], len(rows) > q.per_page

    def _newest_log_id(self, cur: Any, before: datetime | None) -> int:
        if before is None:
            cur.execute(f"SELECT MAX(id) AS id FROM {self.t.log}")
        else:
            cur.execute(f"SELECT id FROM {self.t.log} WHERE created_at < %s"
                        " ORDER BY created_at DESC, id DESC LIMIT 1", (before,))
        row = cur.fetchone()
        return int(row["id"]) if row and row["id"] is not None else 0

    def _log_rows(self, cur: Any, where: list[tuple[str, Any]], q: LogQuery,
                  hint: str = "") -> list[Any]:
        """(`hint` keeps the window a range of the primary key: walking another index
        newest first would pass the window's end when it holds no match.)"""
        sql = " WHERE " + " AND ".join(c for c, _ in where) if where else ""
        cur.execute(f"SELECT {LOG_COLUMNS} FROM {self.t.log}{hint}{sql}"
                    " ORDER BY created_at DESC, id DESC LIMIT %s OFFSET %s",
                    (*(v for _, v in where), q.per_page + 1, q.offset))
        return list(cur.fetchall())

    def log_events(self) -> list[str]:
        """Every event name in the log (read from the `event_created` index, one per name)."""
        with self.db.transaction() as cur:
            cur.execute(f"SELECT event FROM {self.t.log} GROUP BY event ORDER BY event")
            return [str(r["event"]) for r in cur.fetchall()]


def _regexps(f: JobFilter) -> str:
    """The error words as REGEXPs (word start, any case: the collation is _ci), as the
    FULLTEXT query `+word*` matches them; the parameters are _words(f)."""
    return " AND ".join(["last_error REGEXP %s"] * len(f.word_list))


def _words(f: JobFilter) -> list[str]:
    return [rf"\b{word}" for word in f.word_list]


def _narrowing(f: JobFilter) -> list[tuple[str, Any]]:
    """The form, partner and date conditions of `f` (value None: not given). The default
    partner's filter also takes the jobs not yet claimed (partner '': they go there)."""
    partner = "j.partner IN (%s, '')" if f.partner_blank else "j.partner = %s"
    return [("j.form_id = %s", f.form_id), (partner, f.partner),
            ("j.created_at >= %s", f.created_from), ("j.created_at < %s", f.created_before)]
