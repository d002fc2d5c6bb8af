"""Named partners through the real engine: each job goes to the partner it names (the
default when it names none, recorded at its first claim), a fhir-r4 partner gets FHIR
resources, and a job naming a partner no longer configured waits without failing.

Real MariaDB, the partner simulators over HTTP (one default-profile, one FHIR), and the
clients the configuration builds (sidecar.partner_registry.make_client)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from devstack.samples import write_pdf
from sidecar.breaker import Breaker, Policy
from sidecar.errors import Category, PartnerConfigError
from sidecar.partner_registry import Partners, make_client
from sidecar.partner_sim import RunningSim
from sidecar.partners import PartnerConfig
from sidecar.pause import Pause, fingerprint
from sidecar.states import Status
from sidecar.store import Store
from sidecar.throttle import Limits, Throttle
from tests.integration.delivery import Delivery, build_delivery, snapshot, text_fields

pytest_plugins = ["tests.partner_sim_fixture"]
pytestmark = [pytest.mark.db, pytest.mark.sim]


@pytest.fixture
def fhir_sim(partner_sim_factory: Any) -> RunningSim:
    sim: RunningSim = partner_sim_factory(profile="fhir-r4", base="/fhir")
    return sim


def routed(store: Store, uploads: Path, *partners: PartnerConfig,
           protected: bool = False) -> Delivery:
    """The engine with these partners; `protected`: each its own pause and ceilings."""
    delivery = build_delivery(store, "http://127.0.0.1:9/unused", uploads)

    def protect(partner: PartnerConfig, key: str) -> tuple[Pause, Throttle]:
        return (Pause(store, Policy(3, 30, 300), fingerprint(partner.token), key),
                Throttle(store, Limits(partner.concurrency, partner.rps), key))

    delivery.engine.partners = Partners.build(partners, lambda p: make_client(p, 2),
                                              protect if protected else None)
    return delivery


def on(store: Store, job_id: int, partner: str) -> int:
    """As the bridge writes a form's chosen partner."""
    with store.db.transaction() as cur:
        cur.execute(f"UPDATE {store.t.jobs} SET partner = %s WHERE id = %s", (partner, job_id))
    return job_id


def two_pdfs(uploads: Path, n: int) -> list[Path]:
    return [write_pdf(uploads / "wpforms" / "12-abc" / f"scan-{n}-{i}.pdf", 4096)
            for i in range(2)]


def test_a_fhir_partner_gets_a_patient_its_answers_and_each_document_as_binary_and_reference(
        store: Store, fhir_sim: RunningSim, uploads: Path) -> None:
    delivery = routed(store, uploads, PartnerConfig("ehr", fhir_sim.url, profile="fhir-r4"))
    job_id = delivery.enqueue("wpforms:12:1", snapshot(12, 1, text_fields(), uploads,
                                                       two_pdfs(uploads, 1)), 1)
    delivery.drain()
    job = store.get_job(job_id)
    assert job is not None and job.status == Status.COMPLETED and job.partner == "ehr"
    made = fhir_sim.fhir(bodies=True)
    found = made["resources"]
    patients = [Patient.model_validate(r) for r in found["Patient"].values()]
    answers = [QuestionnaireResponse.model_validate(r)
               for r in found["QuestionnaireResponse"].values()]
    references = [DocumentReference.model_validate(r)
                  for r in found["DocumentReference"].values()]
    assert (len(patients), len(answers), len(references), len(made["binaries"])) == (1, 1, 2, 2)
    (patient,) = patients
    assert patient.id == job.partner_record_id
    assert patient.name[0].family == "Doe" and str(patient.birthDate) == "1980-02-01"
    assert {i.linkId for i in answers[0].item} == {"1", "2", "3"}  # file fields are documents
    for ref in references:
        attachment = ref.content[0].attachment
        assert ref.subject.reference == f"Patient/{patient.id}"
        assert attachment.size == 4096 and attachment.title == "Documents"  # the field label
    assert {d.partner_document_id for d in store.documents(job_id)} == {
        r.id for r in references}


def test_each_job_goes_to_the_partner_it_names_and_none_means_the_first(
        store: Store, sim: RunningSim, fhir_sim: RunningSim, uploads: Path) -> None:
    delivery = routed(store, uploads, PartnerConfig("intake", sim.url),
                      PartnerConfig("ehr", fhir_sim.url, profile="fhir-r4"))
    plain = delivery.enqueue("wpforms:12:2", snapshot(12, 2, text_fields(), uploads, []), 2)
    with store.db.transaction() as cur:  # as the bridge writes a form's chosen partner
        cur.execute(f"UPDATE {store.t.jobs} SET partner = 'ehr' WHERE id = %s",
                    (delivery.enqueue("wpforms:12:3", snapshot(12, 3, text_fields(), uploads,
                                                               []), 3),))
    delivery.drain()
    jobs = {j.reference: j for j in (store.get_job(plain), store.get_job(plain + 1)) if j}
    assert {r: (j.status, j.partner) for r, j in jobs.items()} == {
        "wpforms:12:2": (Status.COMPLETED, "intake"), "wpforms:12:3": (Status.COMPLETED, "ehr")}
    assert [r["body"]["external_reference"] for r in sim.records(bodies=True)] == [
        "wpforms:12:2"]
    assert fhir_sim.fhir()["created"]["Patient"] == 1


def test_a_job_naming_a_partner_no_longer_configured_waits_as_a_configuration_problem(
        store: Store, sim: RunningSim, uploads: Path) -> None:
    delivery = routed(store, uploads, PartnerConfig("intake", sim.url))
    job_id = delivery.enqueue("wpforms:12:4", snapshot(12, 4, text_fields(), uploads, []), 4)
    with store.db.transaction() as cur:
        cur.execute(f"UPDATE {store.t.jobs} SET partner = 'gone' WHERE id = %s", (job_id,))
    delivery.drain(max_steps=1)
    job = store.get_job(job_id)
    assert job is not None
    assert (job.status, job.attempts, job.error_category) == (
        Status.RETRYING, 0, Category.CONFIG)
    assert "'gone' is not configured" in (job.last_error or "")
    assert sim.records() == []


def test_the_partners_names_and_profiles_are_published_for_the_plugin(
        store: Store, tmp_path: Path) -> None:
    from sidecar import config
    from sidecar.partner_registry import publish_partners

    (tmp_path / "p.toml").write_text('[partners.intake]\nurl = "https://pm.example.org"\n'
                                     '[partners.ehr]\nurl = "https://ehr.example.org/fhir"\n'
                                     'profile = "fhir-r4"\n')
    cfg = config.load("web", {"WORDPRESS_DB_USER": "u", "WORDPRESS_DB_NAME": "d",
                              "FORMRELAY_SHARED_SECRET": "s" * 32,
                              "FORMRELAY_CONFIG": str(tmp_path / "p.toml")})
    publish_partners(store, cfg)
    assert json.loads(store.meta("partners") or "") == [
        {"name": "intake", "profile": "default"}, {"name": "ehr", "profile": "fhir-r4"}]


def test_a_wrong_credential_pauses_that_partner_only_while_the_other_keeps_delivering(
        store: Store, sim: RunningSim, partner_sim_factory: Any, uploads: Path) -> None:
    locked: RunningSim = partner_sim_factory(token="right")
    delivery = routed(store, uploads, PartnerConfig("intake", sim.url),
                      PartnerConfig("ehr", locked.url, token="wrong"), protected=True)
    refused = on(store, delivery.enqueue("wpforms:12:10", snapshot(
        12, 10, text_fields(), uploads, []), 10), "ehr")
    with pytest.raises(PartnerConfigError):  # as the task raises it: nothing wrong with the job
        delivery.drain()
    assert Breaker.from_json(store.shared("breaker:ehr")[0]).paused  # ehr's own row
    assert not Breaker.from_json(store.shared("breaker")[0]).paused  # the default's is not
    waiting = on(store, delivery.enqueue("wpforms:12:11", snapshot(
        12, 11, text_fields(), uploads, []), 11), "ehr")
    sent = delivery.enqueue("wpforms:12:12", snapshot(12, 12, text_fields(), uploads,
                                                      two_pdfs(uploads, 12)), 12)
    delivery.drain()
    jobs = {j: store.get_job(j) for j in (refused, waiting, sent)}
    assert jobs[sent] is not None and jobs[sent].status == Status.COMPLETED
    assert jobs[sent].partner == "intake" and len(sim.records()) == 1
    assert jobs[waiting] is not None and (jobs[waiting].status, jobs[waiting].attempts) == (
        Status.PENDING, 0)  # not even claimed: its partner is paused
    assert jobs[refused] is not None and jobs[refused].attempts == 0  # given back unspent
    assert jobs[refused].status == Status.RETRYING
    assert locked.records() == []


def test_a_smart_fhir_partner_through_the_engine_refreshes_an_expired_token_once(
        store: Store, partner_sim_factory: Any, uploads: Path, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    from tests.integration.test_smart_auth import jwk, pem

    key = ec.generate_private_key(ec.SECP384R1())
    (tmp_path / "ehr.pem").write_bytes(pem(key))
    ehr: RunningSim = partner_sim_factory(profile="fhir-r4", base="/fhir", client_id="clinic",
                                          jwks={"keys": [jwk(key, "k1")]})
    delivery = routed(store, uploads, PartnerConfig(
        "ehr", ehr.url, profile="fhir-r4", auth="smart-backend", smart_client_id="clinic",
        smart_token_url=f"{ehr.url}/token", smart_private_key_file=str(tmp_path / "ehr.pem"),
        smart_key_id="k1"), protected=True)
    first = delivery.enqueue("wpforms:12:20", snapshot(12, 20, text_fields(), uploads,
                                                       two_pdfs(uploads, 20)), 20)
    delivery.drain()
    assert ehr.tokens()["issued"] == 1  # one token for the record and both documents
    ehr.expire_tokens()
    second = delivery.enqueue("wpforms:12:21", snapshot(12, 21, text_fields(), uploads,
                                                        two_pdfs(uploads, 21)), 21)
    delivery.drain()
    for job_id in (first, second):
        job = store.get_job(job_id)
        assert job is not None and (job.status, job.attempts) == (Status.COMPLETED, 1)
    assert ehr.tokens()["issued"] == 2  # refreshed once, after the 401
    assert ehr.fhir()["created"]["Patient"] == 2
    assert not Breaker.from_json(store.shared("breaker")[0]).paused


def test_a_wrong_smart_key_pauses_that_partner_only_while_the_other_keeps_delivering(
        store: Store, sim: RunningSim, partner_sim_factory: Any, uploads: Path,
        tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    from tests.integration.test_smart_auth import jwk, pem

    registered, stranger = ec.generate_private_key(ec.SECP384R1()), ec.generate_private_key(
        ec.SECP384R1())
    (tmp_path / "wrong.pem").write_bytes(pem(stranger))  # not the key the partner knows
    ehr: RunningSim = partner_sim_factory(profile="fhir-r4", base="/fhir", client_id="clinic",
                                          jwks={"keys": [jwk(registered, "k1")]})
    delivery = routed(store, uploads, PartnerConfig("intake", sim.url), PartnerConfig(
        "ehr", ehr.url, profile="fhir-r4", auth="smart-backend", smart_client_id="clinic",
        smart_token_url=f"{ehr.url}/token", smart_private_key_file=str(tmp_path / "wrong.pem"),
        smart_key_id="k1"), protected=True)
    refused = on(store, delivery.enqueue("wpforms:12:30", snapshot(
        12, 30, text_fields(), uploads, []), 30), "ehr")
    with pytest.raises(PartnerConfigError) as caught:
        delivery.drain()
    assert "invalid_client" in str(caught.value)
    assert "PRIVATE KEY" not in str(caught.value)
    assert Breaker.from_json(store.shared("breaker:ehr")[0]).paused
    sent = delivery.enqueue("wpforms:12:31", snapshot(12, 31, text_fields(), uploads, []), 31)
    delivery.drain()
    done, waiting = store.get_job(sent), store.get_job(refused)
    assert done is not None and (done.status, done.partner) == (Status.COMPLETED, "intake")
    assert waiting is not None and (waiting.status, waiting.attempts) == (Status.RETRYING, 0)
    assert ehr.fhir()["created"].get("Patient", 0) == 0 and ehr.tokens()["issued"] == 0


def test_a_replay_through_the_engine_after_the_fhir_server_accepted_makes_no_second_patient(
        store: Store, fhir_sim: RunningSim, uploads: Path) -> None:
    delivery = routed(store, uploads, PartnerConfig("ehr", fhir_sim.url, profile="fhir-r4",
                                                    read_timeout=0.5))
    fhir_sim.script({"kind": "record", "accept_then_timeout": True, "hang_seconds": 30})
    job_id = delivery.enqueue("wpforms:12:40", snapshot(12, 40, text_fields(), uploads,
                                                        two_pdfs(uploads, 40)), 40)
    delivery.drain()  # attempt 1 times out after the server stored it; attempt 2 (due at
    job = store.get_job(job_id)  # once: no backoff here) is the replay
    assert job is not None and (job.status, job.attempts) == (Status.COMPLETED, 2)
    assert [r["event"] for r in store.job_log(job_id)][1:3] == ["record.retry", "record.sent"]
    made = fhir_sim.fhir()
    assert made["created"]["Patient"] == 1 and made["matched"]["Patient"] == 1
    assert made["created"]["QuestionnaireResponse"] == 1
    assert job.partner_record_id == made["ids"]["Patient"][0]
