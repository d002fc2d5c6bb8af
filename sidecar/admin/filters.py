"""The dashboard's query parameters, parsed and checked: pure, no I/O.

Each parser takes the request's arguments (a mapping of name to text) and gives
a frozen dataclass, or raises BadParameter naming the parameter. An empty value
means "not given". Unknown parameters are ignored (the admin page's own `page`
and `view` come along with the views' links and forms).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from sidecar.partner_profile import PARTNER_NAME
from sidecar.states import JOB_STATUSES

SEARCH_MAX_CHARS = 200
JOB_ORDERS = ("id", "created", "status", "attempts", "next_attempt", "updated")
JOBS_PER_PAGE, JOBS_PER_PAGE_MAX = 20, 100
LOGS_PER_PAGE, LOGS_PER_PAGE_MAX = 50, 200
BULK_MAX_IDS = 500
MAX_ID = 2**63 - 1  # BIGINT UNSIGNED holds more; nothing real comes near either
LEVELS = ("error", "warning", "info")  # what the store writes; the filter takes any word
LEVEL = re.compile(r"^[a-z]{1,8}$")
EVENT = re.compile(r"^[a-z0-9_.]{1,64}$")
WORD = re.compile(r"\w+")
# InnoDB's default full-text stopwords, and its shortest indexed word (innodb_ft_min_token_size):
# a required word the index cannot hold would make a boolean search find nothing.
STOPWORDS = frozenset((
    "a", "about", "an", "are", "as", "at", "be", "by", "com", "de", "en", "for", "from", "how",
    "i", "in", "is", "it", "la", "of", "on", "or", "that", "the", "this", "to", "was", "what",
    "when", "where", "who", "will", "with", "und", "www"))
MIN_WORD_CHARS = 3


class BadParameter(ValueError):
    """A query parameter or body field that cannot be used; the message names it."""

    def __init__(self, name: str, problem: str) -> None:
        self.name = name
        super().__init__(f"{name}: {problem}")


@dataclass(frozen=True)
class JobFilter:
    """Which jobs: every field None means all of them."""

    status: str | None = None
    form_id: int | None = None
    search: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    partner: str | None = None  # exact name
    # Also the jobs whose partner is '' (not yet claimed: they go to the default partner);
    # set by default_partner(), not parsed.
    partner_blank: bool = False

    def default_partner(self, name: str) -> JobFilter:
        """This filter knowing the default partner's name: filtering on that name also
        takes the jobs not yet claimed (partner ''), which go there."""
        return replace(self, partner_blank=self.partner is not None and self.partner == name)

    @property
    def created_from(self) -> datetime | None:
        return datetime.combine(self.date_from, datetime.min.time()) if self.date_from else None

    @property
    def created_before(self) -> datetime | None:
        """The first moment after `date_to` (the range is inclusive of the whole day)."""
        if self.date_to is None:
            return None
        return datetime.combine(self.date_to + timedelta(days=1), datetime.min.time())

    @property
    def words(self) -> str | None:
        return fulltext_query(self.search) if self.search else None

    @property
    def word_list(self) -> list[str]:
        return search_words(self.search) if self.search else []

    def without_status(self) -> JobFilter:
        return replace(self, status=None)


@dataclass(frozen=True)
class JobQuery:
    filter: JobFilter
    orderby: str = "id"
    order: str = "desc"
    page: int = 1
    per_page: int = JOBS_PER_PAGE

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


@dataclass(frozen=True)
class LogQuery:
    level: str | None = None
    event: str | None = None
    job_id: int | None = None
    search: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    page: int = 1
    per_page: int = LOGS_PER_PAGE

    @property
    def words(self) -> str | None:
        return fulltext_query(self.search) if self.search else None

    @property
    def word_list(self) -> list[str]:
        return search_words(self.search) if self.search else []

    @property
    def created_from(self) -> datetime | None:
        return JobFilter(date_from=self.date_from).created_from

    @property
    def created_before(self) -> datetime | None:
        return JobFilter(date_to=self.date_to).created_before

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


def search_words(text: str) -> list[str]:
    """The words of a search that a full-text index holds, lower-case, each once.

    Only letters, digits and `_` form words, so no user text reaches MySQL's
    boolean operators; words under 3 characters and stopwords are left out
    (the index holds neither).
    """
    words = [w for w in WORD.findall(text.lower())
             if len(w) >= MIN_WORD_CHARS and w not in STOPWORDS]
    return list(dict.fromkeys(words))


def fulltext_query(text: str) -> str | None:
    """A boolean-mode full-text query requiring each word as a word prefix; None: no word."""
    return " ".join(f"+{w}*" for w in search_words(text)) or None


def _text(args: Mapping[str, str], name: str) -> str | None:
    value = args.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _integer(args: Mapping[str, str], name: str, default: int | None = None,
             low: int = 1, high: int = MAX_ID) -> int | None:
    value = _text(args, name)
    if value is None:
        return default
    if not value.isdigit() or not value.isascii():
        raise BadParameter(name, f"must be a whole number from {low} to {high}")
    number = int(value)
    if not low <= number <= high:
        raise BadParameter(name, f"must be a whole number from {low} to {high}")
    return number


def _date(args: Mapping[str, str], name: str) -> date | None:
    value = _text(args, name)
    if value is None:
        return None
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise BadParameter(name, "must be a date as YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadParameter(name, "must be a date as YYYY-MM-DD") from None


def _choice(args: Mapping[str, str], name: str, choices: tuple[str, ...],
            default: str | None) -> str | None:
    value = _text(args, name)
    if value is None:
        return default
    if value not in choices:
        raise BadParameter(name, f"must be one of {', '.join(choices)}")
    return value


def _search(args: Mapping[str, str]) -> str | None:
    value = _text(args, "search")
    if value is not None and len(value) > SEARCH_MAX_CHARS:
        raise BadParameter("search", f"must be at most {SEARCH_MAX_CHARS} characters")
    return value


def _range(args: Mapping[str, str]) -> tuple[date | None, date | None]:
    start, end = _date(args, "from"), _date(args, "to")
    if start and end and start > end:
        raise BadParameter("to", "must not be before from")
    return start, end


def _partner(args: Mapping[str, str]) -> str | None:
    value = _text(args, "partner")
    if value is not None and not PARTNER_NAME.match(value):
        raise BadParameter("partner", "must be a partner's name (lower-case letters, digits,"
                           " '_' and '-', at most 64)")
    return value


def job_filter(args: Mapping[str, str], with_status: bool = True) -> JobFilter:
    status = _choice(args, "status", tuple(map(str, JOB_STATUSES)), None) if with_status else None
    start, end = _range(args)
    return JobFilter(status, _integer(args, "form_id"), _search(args), start, end,
                     _partner(args))


def job_query(args: Mapping[str, str], page_name: str = "page") -> JobQuery:
    """The jobs list's parameters; the views take the page number as `paged`."""
    return JobQuery(
        job_filter(args),
        _choice(args, "orderby", JOB_ORDERS, "id") or "id",
        _choice(args, "order", ("asc", "desc"), "desc") or "desc",
        _integer(args, page_name, 1) or 1,
        _integer(args, "per_page", JOBS_PER_PAGE, 1, JOBS_PER_PAGE_MAX) or JOBS_PER_PAGE,
    )


def log_query(args: Mapping[str, str], page_name: str = "page") -> LogQuery:
    level, event, search = _text(args, "level"), _text(args, "event"), _search(args)
    if level is not None and not LEVEL.match(level):
        raise BadParameter("level", "must be a log level such as info, warning or error")
    if event is not None and not EVENT.match(event):
        raise BadParameter("event", "must be an event name such as job.retry")
    if search is not None and fulltext_query(search) is None:
        raise BadParameter("search", f"needs a word of at least {MIN_WORD_CHARS} letters or"
                           " digits that is not a common word such as 'the'")
    start, end = _range(args)
    return LogQuery(level, event, _integer(args, "job_id"), search, start, end,
                    _integer(args, page_name, 1) or 1,
                    _integer(args, "per_page", LOGS_PER_PAGE, 1, LOGS_PER_PAGE_MAX)
                    or LOGS_PER_PAGE)


def job_id(text: str) -> int:
    """A job id from a URL or a view's `id=` parameter."""
    job = _integer({"id": text}, "id")
    if job is None:
        raise BadParameter("id", "is required")
    return job


@dataclass(frozen=True)
class BulkRetry:
    ids: tuple[int, ...] = ()
    filter: JobFilter | None = None  # set: every failed job matching it
    after: int = 0  # with a filter: continue after this job id (the previous call's `after`)


def bulk_retry(body: object) -> BulkRetry:
    """`{"ids": [n, ...]}` (at most 500) or `{"all_failed": true, "filter": {...}}`."""
    if not isinstance(body, dict):
        raise BadParameter("body", 'must be {"ids": [...]} or {"all_failed": true, "filter": {}}')
    if "ids" in body and "all_failed" not in body:
        ids = body["ids"]
        if not isinstance(ids, list) or not ids or not all(
                isinstance(i, int) and not isinstance(i, bool) and 0 < i <= MAX_ID for i in ids):
            raise BadParameter("ids", "must be a non-empty list of job ids")
        if len(ids) > BULK_MAX_IDS:
            raise BadParameter("ids", f"must hold at most {BULK_MAX_IDS} job ids")
        return BulkRetry(ids=tuple(dict.fromkeys(ids)))
    if body.get("all_failed") is True and "ids" not in body:
        after = body.get("after", 0)
        if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after <= MAX_ID:
            raise BadParameter("after", "must be a job id (0 to start)")
        raw = {} if body.get("filter") is None else body["filter"]
        if not isinstance(raw, dict) or set(raw) - {"form_id", "search", "from", "to", "partner"}:
            raise BadParameter("filter", "may hold only form_id, search, from, to and partner")
        as_text = {k: "" if v is None else str(v) for k, v in raw.items()
                   if isinstance(v, str | int | type(None)) and not isinstance(v, bool)}
        if len(as_text) != len(raw):
            raise BadParameter("filter", "values must be text or numbers")
        return BulkRetry(filter=job_filter(as_text, with_status=False), after=after)
    raise BadParameter("body", 'must be {"ids": [...]} or {"all_failed": true, "filter": {}}')
