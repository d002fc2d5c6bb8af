"""The dashboard's query parameters: parsing, defaults, and 400s that name the parameter."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from sidecar.admin.filters import (
    BadParameter,
    BulkRetry,
    JobFilter,
    bulk_retry,
    fulltext_query,
    job_id,
    job_query,
    log_query,
    search_words,
)
from sidecar.store.admin import like_prefix

pytestmark = pytest.mark.unit


def test_job_query_defaults():
    q = job_query({})
    assert q.filter == JobFilter()
    assert (q.orderby, q.order, q.page, q.per_page, q.offset) == ("id", "desc", 1, 20, 0)


def test_job_query_reads_every_parameter_and_trims_text():
    q = job_query({"status": "failed", "form_id": "12", "search": "  wpforms:12  ",
                   "from": "2026-11-01", "to": "2026-11-30", "orderby": "next_attempt",
                   "order": "asc", "page": "3", "per_page": "50", "view": "jobs"})
    assert q.filter == JobFilter("failed", 12, "wpforms:12", date(2026, 11, 1),
                                 date(2026, 11, 30))
    assert (q.orderby, q.order, q.page, q.per_page, q.offset) == ("next_attempt", "asc", 3, 50,
                                                                  100)
    assert q.filter.created_from == datetime(2026, 11, 1)
    assert q.filter.created_before == datetime(2026, 12, 1)  # the whole last day


def test_empty_values_mean_not_given():
    q = job_query({"status": "", "form_id": " ", "search": "", "from": "", "orderby": ""})
    assert q.filter == JobFilter() and q.orderby == "id"


def test_views_read_the_page_number_from_paged():
    assert job_query({"page": "formrelay", "paged": "4"}, page_name="paged").page == 4
    assert log_query({"page": "formrelay"}, page_name="paged").page == 1
    with pytest.raises(BadParameter, match=r"^paged: "):
        job_query({"paged": "x"}, page_name="paged")


@pytest.mark.parametrize("args,name", [
    ({"status": "uploaded"}, "status"), ({"status": "FAILED"}, "status"),
    ({"form_id": "-3"}, "form_id"), ({"form_id": "1.5"}, "form_id"),
    ({"form_id": "\u0661\u0662"}, "form_id"),  # Arabic-Indic digits are not ASCII
    ({"form_id": "9" * 30}, "form_id"), ({"from": "2026-02-30"}, "from"),
    ({"from": "20261101"}, "from"), ({"to": "yesterday"}, "to"),
    ({"from": "2026-11-02", "to": "2026-11-01"}, "to"), ({"orderby": "snapshot"}, "orderby"),
    ({"order": "DESC"}, "order"), ({"page": "0"}, "page"), ({"per_page": "0"}, "per_page"),
    ({"per_page": "101"}, "per_page"), ({"search": "y" * 201}, "search"),
])
def test_each_bad_job_parameter_is_named(args, name):
    with pytest.raises(BadParameter) as caught:
        job_query(args)
    assert caught.value.name == name and str(caught.value).startswith(f"{name}: ")


def test_log_query_parameters():
    q = log_query({"level": "warning", "event": "job.retry", "job_id": "7", "search": "Time-out!",
                   "from": "2026-11-01", "to": "2026-11-01", "page": "2", "per_page": "200"})
    assert (q.level, q.event, q.job_id, q.page, q.per_page, q.offset) == (
        "warning", "job.retry", 7, 2, 200, 200)
    assert q.word_list == ["time", "out"] and q.words == "+time* +out*"
    assert (q.created_from, q.created_before) == (datetime(2026, 11, 1), datetime(2026, 11, 2))
    assert log_query({}).per_page == 50


@pytest.mark.parametrize("args,name", [
    ({"level": "Error"}, "level"), ({"level": "<b>"}, "level"), ({"event": "job retry"}, "event"),
    ({"event": "x" * 65}, "event"), ({"job_id": "abc"}, "job_id"), ({"per_page": "201"},
                                                                    "per_page"),
    ({"search": "to be or"}, "search"), ({"search": "%%"}, "search"),
])
def test_each_bad_log_parameter_is_named(args, name):
    with pytest.raises(BadParameter, match=f"^{name}: "):
        log_query(args)


@pytest.mark.parametrize("text,words", [
    ("partner answered 503", ["partner", "answered", "503"]),
    ("The +timeout -of \"doom\" (x)*", ["timeout", "doom"]),  # operators never pass
    ("a b cd the with", []), ("ÉCHEC Überweisung", ["échec", "überweisung"]),
    ("503 503 503", ["503"]), ("'; DROP TABLE x; --", ["drop", "table"]),
])
def test_search_words_keep_only_what_the_index_holds(text, words):
    assert search_words(text) == words
    assert fulltext_query(text) == (" ".join(f"+{w}*" for w in words) or None)


@pytest.mark.parametrize("text,pattern", [
    ("wpforms:12", "wpforms:12%"), ("100%", "100!%%"), ("a_b", "a!_b%"), ("x!y", "x!!y%"),
    ("back\\slash", "back\\slash%"), ("o'brien", "o'brien%"),
])
def test_like_prefix_escapes_the_wildcards(text, pattern):
    assert like_prefix(text) == pattern


def test_job_id():
    assert job_id("42") == 42
    for bad in ("", "0", "x", "-1"):
        with pytest.raises(BadParameter, match=r"^id: "):
            job_id(bad)


def test_bulk_retry_bodies():
    assert bulk_retry({"ids": [3, 1, 3]}) == BulkRetry(ids=(3, 1))
    parsed = bulk_retry({"all_failed": True, "filter": {"form_id": 12, "search": "503",
                                                        "from": "", "to": None}})
    assert parsed.ids == () and parsed.filter == JobFilter(None, 12, "503")
    assert bulk_retry({"all_failed": True}).filter == JobFilter()
    assert len(bulk_retry({"ids": list(range(1, 501))}).ids) == 500


@pytest.mark.parametrize("body", [None, [], "ids", {}, {"ids": []}, {"ids": [0]},
                                  {"ids": [1.0]}, {"ids": [False]}, {"ids": list(range(1, 502))},
                                  {"ids": [1], "all_failed": True}, {"all_failed": "yes"},
                                  {"all_failed": True, "filter": []},
                                  {"all_failed": True, "filter": {"status": "failed"}},
                                  {"all_failed": True, "filter": {"form_id": [1]}},
                                  {"all_failed": True, "filter": {"from": "soon"}}])
def test_bad_bulk_retry_bodies(body):
    with pytest.raises(BadParameter):
        bulk_retry(body)
