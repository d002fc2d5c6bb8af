"""The sweep and the cleaner on MariaDB: lost doorbells, expired leases, stuck jobs,
missed entries, one sweeper at a time (retention: test_retention.py)."""

from __future__ import annotations

import json

import pytest

from sidecar.states import Event, EventKind, Status
from sidecar.store import Database, NewDocument, NewJob, Store
from sidecar.sweep import WATERMARK, sweep
from tests.conftest import PREFIX
from tests.integration.delivery import RecordingDoorbell, text_fields
from tests.integration.test_backfill import add_entry, add_form

pytestmark = pytest.mark.db
K = EventKind


def sql(store, query: str, *args: object) -> list[dict]:
    with store.db.transaction() as cur:
        cur.execute(query.replace("{p}", PREFIX), args)
        return list(cur.fetchall()) if cur.with_rows else []


def job_with_documents(store, n: int, ref: str = "wpforms:12:1") -> int:
    job, _ = store.enqueue(NewJob(ref, 12, 1, "{}"))
    store.claim_job(job.id, "w", 60)
    store.transition_job(job.id, Event(K.RECORD_SENT, has_documents=True), owner="w",
                         partner_id="P-1", documents=[
                             NewDocument("4", i, f"d{i}.pdf", f"/u/d{i}.pdf") for i in range(n)])
    return job.id


def test_the_sweep_rings_work_whose_doorbell_was_lost(store):
    lost, _ = store.enqueue(NewJob("wpforms:12:9", 12, 9, "{}", priority=4))
    later, _ = store.enqueue(NewJob("wpforms:12:10", 12, 10, "{}"))
    sql(store, "UPDATE {p}formrelay_jobs SET next_attempt_at = UTC_TIMESTAMP(3) + INTERVAL 1"
               " HOUR WHERE id = %s", later.id)
    job_id = job_with_documents(store, 2, "wpforms:12:11")
    bell = RecordingDoorbell()
    result = sweep(store, bell, reconcile_days=0)
    assert result.ran and (result.rung_jobs, result.rung_documents) == (1, 2)
    docs = [d.id for d in store.documents(job_id)]
    assert sorted(bell.rings) == sorted([("record", lost.id, 0)] +
                                        [("document", d, 0) for d in docs])


def test_the_sweep_releases_expired_leases_and_settles_a_job_a_document_ended(store):
    job_id = job_with_documents(store, 1)
    (doc,) = store.documents(job_id)
    store.claim_document(doc.id, "dead", 60)
    sql(store, "UPDATE {p}formrelay_documents SET attempts = max_attempts,"
               " lease_expires_at = UTC_TIMESTAMP(3) - INTERVAL 1 SECOND WHERE id = %s", doc.id)
    result = sweep(store, RecordingDoorbell(), reconcile_days=0)
    assert result.released == 1
    assert store.get_document(doc.id).status == Status.FAILED
    job = store.get_job(job_id)  # its only document ran out of attempts: the job ends
    assert job.status == Status.FAILED and "lease expired" in job.last_error


def test_the_sweep_settles_a_job_left_in_the_documents_phase(store):
    job_id = job_with_documents(store, 2)
    sql(store, "UPDATE {p}formrelay_documents SET status = 'uploaded' WHERE job_id = %s", job_id)
    assert store.get_job(job_id).status == Status.PROCESSING  # a crash between the two writes
    result = sweep(store, RecordingDoorbell(), reconcile_days=0)
    assert result.settled == 1
    assert store.get_job(job_id).status == Status.COMPLETED


def test_only_one_process_sweeps_at_a_time(store):
    store.enqueue(NewJob("wpforms:12:12", 12, 12, "{}"))
    with store.named_lock("formrelay_sweep") as held:
        assert held
        bell = RecordingDoorbell()
        assert sweep(store, bell, reconcile_days=0).ran is False
        assert bell.rings == []
    assert sweep(store, RecordingDoorbell(), reconcile_days=0).ran  # released with its session


def test_the_sweep_reconciles_recent_entries_without_a_job(wpforms_tables):
    store = wpforms_tables
    sql(store, "DELETE FROM {p}formrelay_meta WHERE name = %s", WATERMARK)
    add_form(store, 12)
    add_entry(store, 1, 12, date="2020-01-01 00:00:00")  # outside the 7-day window
    add_entry(store, 2, 12)
    add_entry(store, 3, 12, imported=True)  # from a Lite backup: fired no hook, left alone
    add_entry(store, 4, 12, "spam")
    add_entry(store, 5, 12)
    store.enqueue(NewJob("wpforms:12:5", 12, 5, json.dumps({"fields": text_fields()})))
    bell = RecordingDoorbell()
    result = sweep(store, bell, reconcile_days=7)
    assert result.reconciled == 1
    jobs = sql(store, "SELECT reference, source FROM {p}formrelay_jobs ORDER BY id")
    assert [(j["reference"], j["source"]) for j in jobs] == [
        ("wpforms:12:5", "wpforms"), ("wpforms:12:2", "backfill")]
    assert store.meta(WATERMARK) == "1"  # the next sweep starts after the old entry
    assert sweep(store, RecordingDoorbell(), reconcile_days=7).reconciled == 0


def test_sites_sharing_a_server_and_a_prefix_sweep_independently(store, scratch_dbs):
    other = Store(Database(scratch_dbs.create_migrated()), PREFIX)
    try:
        with store.named_lock("formrelay_sweep") as held:
            assert held
            with other.named_lock("formrelay_sweep") as other_held:
                assert other_held  # another database: its own sweep lock
            with store.named_lock("formrelay_sweep") as again:
                assert not again  # the same site: one sweeper at a time
    finally:
        other.db.close()


def test_reconciliation_obeys_the_plugins_delivery_settings(wpforms_tables):
    from tests.integration.test_backfill import publish
    store = wpforms_tables
    add_form(store, 12)
    add_form(store, 14)
    add_entry(store, 1, 12, date="2026-01-01 00:00:00")  # before the plugin's activation
    add_entry(store, 2, 12)
    add_entry(store, 3, 14)  # a form that is not delivered
    add_entry(store, 4, 12)
    sql(store, "UPDATE {p}wpforms_entries SET date = UTC_TIMESTAMP() - INTERVAL 2 DAY"
               " WHERE entry_id = 1")
    since = sql(store, "SELECT DATE_FORMAT(UTC_TIMESTAMP() - INTERVAL 1 DAY,"
                       " '%Y-%m-%d %H:%i:%s.000') AS t")[0]["t"]

    publish(store, forms=[12], since=since, active=False)  # deactivated: nothing
    assert sweep(store, RecordingDoorbell(), reconcile_days=7).reconciled == 0

    publish(store, forms=[12], since=since,
            form_settings={"12": {"template": "intake.json.j2", "priority": 2}})
    bell = RecordingDoorbell()
    assert sweep(store, bell, reconcile_days=7).reconciled == 2
    jobs = sql(store, "SELECT reference, priority FROM {p}formrelay_jobs ORDER BY id")
    assert [(j["reference"], j["priority"]) for j in jobs] == [
        ("wpforms:12:2", 2), ("wpforms:12:4", 2)]
    assert len({job_id for _, job_id, _ in bell.rings}) == 2  # reconcile and ring_due ring


def test_reconciliation_waits_for_a_plugin_that_has_not_published(wpforms_tables):
    store = wpforms_tables
    add_form(store, 12)
    add_entry(store, 2, 12)
    with store.db.transaction() as cur:
        cur.execute(f"CREATE TABLE {PREFIX}options (option_name varchar(191) NOT NULL)")
        cur.execute(f"INSERT INTO {PREFIX}options VALUES ('formrelay_bridge_settings')")
    try:
        assert sweep(store, RecordingDoorbell(), reconcile_days=7).reconciled == 0
        sql(store, "DELETE FROM {p}options")  # no plugin at all: the fallback, every form
        assert sweep(store, RecordingDoorbell(), reconcile_days=7).reconciled == 1
    finally:
        sql(store, "DROP TABLE {p}options")
