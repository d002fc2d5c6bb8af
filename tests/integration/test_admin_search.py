"""The jobs list's error-word search at scale (sidecar/store/admin.py `search_scope`):
common words are matched among the newest jobs only, rare ones through the FULLTEXT index
over every job. The window is shrunk here (60 jobs, 5 matches) so a few hundred rows show
what 20,000 and 50 do on a big site."""

from __future__ import annotations

import pytest

import sidecar.admin.read
import sidecar.store.admin
from tests.integration.test_admin_api import admin, ids_of, sql  # noqa: F401 - a fixture

pytestmark = pytest.mark.db

WINDOW = 60


@pytest.fixture
def big(store, monkeypatch):
    """300 failed jobs, ids in creation order, a day apart going back from the newest:
    every 4th says "postcode" (common); jobs 11, 12 and 13 say "zebra" (rare and old)."""
    monkeypatch.setattr(sidecar.store.admin, "SEARCH_WINDOW", WINDOW)
    monkeypatch.setattr(sidecar.store.admin, "WINDOW_ENOUGH", 5)
    monkeypatch.setattr(sidecar.admin.read, "SEARCH_WINDOW", WINDOW)
    sql(store, "INSERT INTO {p}formrelay_jobs (reference, form_id, entry_id, status, last_error,"
               " created_at, updated_at, failed_at) SELECT CONCAT('wpforms:12:', seq), 12, seq,"
               " IF(seq % 2, 'failed', 'retrying'),"
               " CONCAT('HTTP 422: field ', IF(seq % 4 = 0, 'Postcode', 'email'), ' is invalid',"
               "  IF(seq BETWEEN 11 AND 13, ' (zebra crossing)', '')),"
               " '2026-12-01' - INTERVAL (300 - seq) DAY, UTC_TIMESTAMP(3), UTC_TIMESTAMP(3)"
               " FROM seq_1_to_300")
    store.recount_jobs(repair=True)
    top = sql(store, "SELECT MAX(id) AS top FROM {p}formrelay_jobs")[0]["top"]
    return top - 300  # id = base + seq


def test_a_common_word_reads_only_the_newest_jobs(admin, big):  # noqa: F811
    page = admin.ok("/jobs", search="POSTCODE")
    assert page["search_window"] == WINDOW
    newest = [big + n for n in range(300, 300 - WINDOW, -1) if n % 4 == 0]
    assert ids_of(page) == newest[:20]
    assert page["total"] == len(newest) == 15  # at least: older matches were not counted
    assert page["counts"]["retrying"] == 15 and page["counts"]["failed"] == 0
    second = admin.ok("/jobs", search="postcode", status="retrying", page=1, per_page=10,
                      orderby="created", order="asc")
    assert ids_of(second) == sorted(newest)[:10]
    html = admin.ok("/view/jobs", search="postcode")
    assert "only the newest 60 jobs were searched" in html and "(15+)" in html


def test_a_rare_word_is_found_in_every_job_and_counted_exactly(admin, big):  # noqa: F811
    page = admin.ok("/jobs", search="zebra")
    assert page["search_window"] is None
    assert ids_of(page) == [big + 13, big + 12, big + 11]
    assert page["counts"]["failed"] == 2 and page["counts"]["retrying"] == 1
    assert "(3)" in admin.ok("/view/jobs", search="zebra")


@pytest.mark.parametrize("read_ids", [5_000, 2])  # the index's ids read once; or too many
def test_a_rare_word_gives_the_same_answer_either_way(admin, big, monkeypatch,  # noqa: F811
                                                      read_ids):
    monkeypatch.setattr(sidecar.store.admin, "FULLTEXT_IDS", read_ids)
    page = admin.ok("/jobs", search="zebra crossing", per_page=2, page=2)
    assert ids_of(page) == [big + 11] and page["total"] == 3
    nothing = admin.ok("/jobs", search="unicorn")
    assert nothing["jobs"] == [] and nothing["total"] == 0 and nothing["search_window"] is None
    by_ref = admin.ok("/jobs", search="wpforms:12:299")  # the words of a reference: none match
    assert ids_of(by_ref) == [big + 299]


def test_dates_before_the_window_search_every_job_exactly(admin, store, big):  # noqa: F811
    old = admin.ok("/jobs", search="postcode", **{"from": "2026-01-01", "to": "2026-03-31"})
    assert old["search_window"] is None
    want = [r["id"] for r in sql(store, "SELECT id FROM {p}formrelay_jobs"
                                        " WHERE last_error LIKE '%%postcode%%'"
                                        " AND created_at >= '2026-01-01'"
                                        " AND created_at < '2026-04-01' ORDER BY id DESC")]
    assert len(want) == 13 and ids_of(old) == want and old["total"] == 13
