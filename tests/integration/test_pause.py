"""The outage pause, wired: the engine on MariaDB and the simulator over HTTP.

Time is let pass by moving the pause's next probe into the past (as make_due
does for retries), so nothing here waits for a probe interval.
"""

from __future__ import annotations

import subprocess
import threading
from dataclasses import replace
from typing import Any

import pytest

from sidecar.breaker import Breaker, Gate, Policy
from sidecar.errors import PartnerConfigError
from sidecar.partner_client import PartnerClient, PartnerSettings
from sidecar.pause import ROW, Pause, fingerprint
from sidecar.states import Status
from sidecar.store import Store
from tests.conftest import PREFIX
from tests.integration.delivery import Delivery, build_delivery, snapshot, text_fields
from tests.integration.processes import status, worker_env
from tests.integration.test_cli import formrelay_bin

pytestmark = [pytest.mark.db, pytest.mark.sim]
POLICY = Policy(threshold=3, probe_min=30, probe_max=300)


def delivery_log(store: Store) -> list[dict[str, Any]]:
    with store.db.transaction() as cur:
        cur.execute(f"SELECT event, level, message, actor FROM {PREFIX}formrelay_log"
                    " WHERE job_id IS NULL AND event LIKE 'delivery.%%' ORDER BY id")
        return list(cur.fetchall())


def probe_now(store: Store) -> None:
    """Let the probe wait pass."""
    store.change_shared(ROW, lambda v, now: (
        replace(Breaker.from_json(v), next_probe_at="").to_json(), None))


def enqueue(d: Delivery, n: int) -> list[int]:
    return [d.enqueue(f"FR-P{i}", snapshot(12, 0, text_fields(), d.uploads, []))
            for i in range(n)]


@pytest.fixture
def paused_delivery(delivery: Delivery) -> Delivery:
    delivery.engine.pause = Pause(delivery.store, POLICY)
    return delivery


def test_an_outage_pauses_delivery_without_spending_attempts_and_a_probe_resumes_it(
        paused_delivery, sim):
    d = paused_delivery
    sim.configure(outage=True)
    ids = enqueue(d, 5)
    d.drain()
    jobs = [d.store.get_job(i) for i in ids]
    assert [j.attempts for j in jobs] == [1, 1, 1, 0, 0]  # the 4th and 5th never left
    assert sim.stats()["requests_total"] == 3
    assert [(r["event"], r["level"]) for r in delivery_log(d.store)] == [
        ("delivery.paused", "warning")]
    assert "3 failures in a row" in delivery_log(d.store)[0]["message"]

    d.make_due()  # retries come due while paused: nothing is sent, nothing spent
    d.drain()
    assert sim.stats()["requests_total"] == 3
    assert [d.store.get_job(i).attempts for i in ids] == [1, 1, 1, 0, 0]

    probe_now(d.store)  # the probe goes out and fails: unspent, and the next wait doubles
    d.doorbell.rings.append(("record", ids[3], 0))
    d.drain()
    assert sim.stats()["requests_total"] == 4
    probe_job = d.store.get_job(ids[3])
    assert probe_job.status == Status.RETRYING and probe_job.attempts == 0
    assert Pause(d.store, POLICY).state().probe_wait == 60

    sim.configure(outage=False)
    probe_now(d.store)
    d.make_due()
    d.drain()
    assert {d.store.get_job(i).status for i in ids} == {Status.COMPLETED}
    assert sim.stats()["records_created"] == 5
    events = delivery_log(d.store)
    assert [e["event"] for e in events] == ["delivery.paused", "delivery.resumed"]
    assert "the partner answered again" in events[1]["message"]
    assert Pause(d.store, POLICY).state() == Breaker()


def test_the_resume_rings_the_backlog(paused_delivery, sim):
    d = paused_delivery
    sim.configure(outage=True)
    ids = enqueue(d, 4)
    d.drain()
    assert Pause(d.store, POLICY).state().paused
    sim.configure(outage=False)
    probe_now(d.store)
    d.doorbell.rings.clear()  # the rings are lost (say Redis was flushed)
    d.doorbell.rings.append(("record", ids[3], 0))  # one probe: the sweep's next ring
    d.drain(max_steps=1)
    rung = {item for kind, item, _ in d.doorbell.rings if kind == "record"}
    assert {ids[0], ids[1], ids[2]} <= rung
    d.make_due()
    d.drain()
    assert {d.store.get_job(i).status for i in ids} == {Status.COMPLETED}


def test_a_refused_token_holds_the_pause_until_the_token_changes(store, sim, uploads):
    sim.configure(token="right")
    wrong = build_delivery(store, sim.url, uploads, token="wrong", read_timeout=1.0)
    wrong.engine.pause = Pause(store, POLICY, fingerprint("wrong"))
    (job_id,) = enqueue(wrong, 1)
    with pytest.raises(PartnerConfigError):  # the task logs it: delivery is paused
        wrong.drain()
    job = store.get_job(job_id)
    assert job.status == Status.RETRYING and job.attempts == 0  # given back unspent
    state = Pause(store, POLICY).state()
    assert state.paused and state.sticky and "401" in state.cause
    assert "partner token" in delivery_log(store)[0]["message"]

    probe_now(store)
    wrong.make_due()
    wrong.drain()
    assert sim.stats()["requests_total"] == 1  # the same token is not tried again

    right = Pause(store, POLICY, fingerprint("right"))
    wrong.engine.pause = right
    wrong.engine.client = PartnerClient(PartnerSettings(sim.url, "right", read_timeout=1.0))
    wrong.make_due()
    wrong.drain()
    assert store.get_job(job_id).status == Status.COMPLETED
    assert right.state() == Breaker()


def test_only_one_worker_takes_the_probe(store):
    pause = Pause(store, POLICY)
    pause.refused("HTTP 503", auth=False)
    probe_now(store)
    verdicts: list[Gate] = []
    start = threading.Barrier(8)

    def ask() -> None:
        start.wait()
        verdicts.append(Pause(store, POLICY).gate())
        store.db.close()

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(verdicts) == sorted([Gate.PROBE] + [Gate.SHUT] * 7)


def test_pause_bookkeeping_never_stops_a_delivery(delivery, sim):
    delivery.engine.pause = Pause(Store(delivery.store.db, "missing_"), POLICY)
    (job_id,) = enqueue(delivery, 1)
    delivery.drain()
    assert delivery.store.get_job(job_id).status == Status.COMPLETED


def test_formrelay_resume_ends_a_pause_and_status_shows_it(store, migrated_db, uploads,
                                                          tmp_path):
    Pause(store, POLICY, fingerprint("old")).refused("HTTP 401 (check the token)", auth=True)
    env = worker_env(migrated_db.database, "http://127.0.0.1:9/api", uploads, tmp_path)
    assert "delivery: PAUSED since" in status(env) and "formrelay resume" in status(env)
    done = subprocess.run([formrelay_bin(), "resume", "--actor", "alice"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "delivery resumed" in done.stdout and "HTTP 401" in done.stdout
    resumed = delivery_log(store)[-1]
    assert resumed["event"] == "delivery.resumed" and resumed["actor"] == "alice"
    assert "resumed by alice" in resumed["message"]
    assert "delivery: running" in status(env)
    again = subprocess.run([formrelay_bin(), "resume"], env=env, capture_output=True,
                           text=True, timeout=60)
    assert again.returncode == 0 and "was not paused" in again.stdout


def test_a_ring_that_finds_nothing_due_leaves_the_probe_for_real_work(paused_delivery, sim):
    d = paused_delivery
    Pause(d.store, POLICY).refused("HTTP 503", auth=False)
    probe_now(d.store)
    d.engine.deliver_record(999_999)  # a stale ring: no such job, nothing claimed
    assert Pause(d.store, POLICY).gate(take=False) is Gate.PROBE
    assert sim.stats()["requests_total"] == 0


def test_a_permanent_refusal_also_ends_a_pause_and_rings_the_backlog(paused_delivery, sim):
    d = paused_delivery
    Pause(d.store, POLICY).refused("HTTP 503", auth=False)
    probe_now(d.store)
    sim.script({"kind": "record", "status": 422, "body": {"error": "bad postcode"}})
    ids = enqueue(d, 3)
    d.doorbell.rings = d.doorbell.rings[:1]  # only the first is rung: the probe
    d.drain()
    assert [d.store.get_job(i).status for i in ids] == [
        Status.FAILED, Status.COMPLETED, Status.COMPLETED]
    assert [e["event"] for e in delivery_log(d.store)] == ["delivery.paused", "delivery.resumed"]


def test_a_pause_between_two_documents_gives_the_next_one_back_unspent(paused_delivery, sim):
    """The chain reads the pause with each upload's outcome: paused after the first
    document, the second is released (no request, no attempt) and the resume sends it."""
    from devstack.samples import write_pdf

    d = paused_delivery
    files = [write_pdf(d.uploads / "2026" / "12" / f"mid{i}.pdf", 2000) for i in range(2)]
    upload = d.engine.client.upload_document
    uploads_seen: list[str] = []

    def upload_then_pause(*args: Any, **kwargs: Any) -> Any:
        accepted = upload(*args, **kwargs)
        uploads_seen.append(accepted.id)
        if len(uploads_seen) == 1:  # another worker saw the partner fail meanwhile
            for _ in range(POLICY.threshold):
                Pause(d.store, POLICY).failed("HTTP 503 server", probe=False)
        return accepted

    d.engine.client.upload_document = upload_then_pause  # type: ignore[method-assign]
    (job_id,) = [d.enqueue("FR-MID", snapshot(12, 0, text_fields(), d.uploads, files))]
    d.drain()
    first, second = d.store.documents(job_id)
    assert (first.status, second.status) == (Status.UPLOADED, Status.RETRYING)
    assert second.attempts == 0 and second.lease_owner is None  # given back unspent
    assert sim.stats()["documents_created"] == 1 and len(uploads_seen) == 1
    assert d.store.get_job(job_id).status == Status.PROCESSING
    assert any(r["event"] == "document.paused" and "paused or busy" in r["message"]
               for r in d.store.job_log(job_id))

    Pause(d.store, POLICY).resume("admin")
    d.make_due()  # its retry comes due and is rung
    d.drain()
    assert d.store.get_document(second.id).status == Status.UPLOADED
    assert d.store.get_job(job_id).status == Status.COMPLETED
    assert sim.stats()["documents_created"] == 2


def test_with_named_partners_status_and_resume_go_partner_by_partner(
        store, migrated_db, uploads, tmp_path):
    (tmp_path / "partners.toml").write_text(
        '[partners.intake]\nurl = "http://127.0.0.1:9/api"\n'
        '[partners.ehr]\nurl = "http://127.0.0.1:9/fhir"\nprofile = "fhir-r4"\n')
    Pause(store, POLICY, partner="ehr").refused("HTTP 401 (check the token)", auth=True)
    env = worker_env(migrated_db.database, "", uploads, tmp_path,
                     FORMRELAY_CONFIG=str(tmp_path / "partners.toml"))
    del env["FORMRELAY_PARTNER_URL"]
    shown = status(env)
    assert "delivery to intake: running" in shown
    assert "delivery to ehr: PAUSED since" in shown
    wrong = subprocess.run([formrelay_bin(), "resume", "--partner", "billing"], env=env,
                           capture_output=True, text=True, timeout=60)
    assert wrong.returncode != 0 and "no such partner" in wrong.stderr
    done = subprocess.run([formrelay_bin(), "resume", "--partner", "ehr"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "delivery to ehr resumed" in done.stdout and "intake" not in done.stdout
    assert "delivery to ehr: running" in status(env)


def test_health_and_alerts_see_a_named_partners_pause_and_name_it(store):
    from sidecar.health import read_state

    assert not read_state(store).paused
    Pause(store, POLICY, partner="ehr").refused("HTTP 401 auth", auth=True)
    state = read_state(store)
    assert state.paused and state.needs_person and state.cause == "partner ehr: HTTP 401 auth"
    Pause(store, POLICY).failed("HTTP 503 server", probe=False)  # the default: not paused yet
    assert read_state(store).cause == "partner ehr: HTTP 401 auth"
