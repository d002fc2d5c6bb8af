"""The status counts (migration 0008) with jobs captured by the real plugin: the plugin's
activation created and seeded the counts table, capture writes nothing to it (a captured job
is pending: counted live), and after the sidecar's mixed workload (deliver, fail, retry,
restart, cancel, purge) every count still equals GROUP BY over the jobs table."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sidecar.store import Database, DbSettings, Store
from tests.integration.status_counts import assert_counts_exact, mixed_workload, rows
from tests.wordpress.bridge_fixtures import (
    Submission,
    capture,
    jobs,
    make_form,
    plugin_problems,
)

pytestmark = [pytest.mark.wordpress, pytest.mark.db]


@pytest.fixture
def store(wp) -> Iterator[Store]:
    host, _, port = wp.db_host_port.rpartition(":")
    db = Database(DbSettings(host, wp.db_user, wp.db_password, wp.db_name, int(port)))
    store = Store(db, wp.table_prefix)
    rows(store, "DELETE FROM {p}formrelay_counts")  # (`wp` emptied the jobs)
    yield store
    db.close()


def test_captured_jobs_then_a_mixed_workload_keep_every_count_exact(bridge_site, store):
    forms = [make_form(bridge_site, "Intake"), make_form(bridge_site, "Referral")]
    subs = [Submission.basic(forms[n % 2], 100 + n) for n in range(12)]
    run = capture(bridge_site, *subs)
    assert run.stdout == "captured" and plugin_problems(run.stderr) == []
    captured = [int(j["id"]) for j in jobs(bridge_site)]
    assert len(captured) == 12
    assert rows(store, "SELECT * FROM {p}formrelay_counts") == []  # capture: no counts row
    assert store.counts_by_status() == {"pending": 12}
    assert_counts_exact(store)

    done = mixed_workload(store, captured)
    assert set(done) == {"deliver", "fail_document", "fail_retry", "retrying", "restart",
                         "cancel", "purged"}
    more = [Submission.basic(forms[0], 200 + n) for n in range(3)]  # capture among them
    capture(bridge_site, *more)
    assert_counts_exact(store)
    assert store.counts_by_status(forms[0].id)["pending"] >= 3
