"""Sealed submissions through the real engine on MariaDB, the simulator over HTTP: key
rotation, `formrelay keys reseal` with the old key removed, a key the sidecar lacks
(the job waits, then delivers once the key is added), Reveal, retention and the
doctor's sealing check.

The snapshots here are sealed the way the bridge seals them (sidecar.seal.seal is the
same libsodium box as PHP's sodium_crypto_box_seal; tests/unit/test_seal.py opens one
PHP made); tests/wordpress/ covers the plugin's own capture."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from devstack.samples import write_pdf
from sidecar import config, keys_command, seal
from sidecar.cli import main
from sidecar.doctor import Level
from sidecar.doctor_seal import plugin_check, rows_check
from sidecar.errors import Category
from sidecar.seal import KeyPair, Opener
from sidecar.states import Status
from sidecar.store import DbSettings, NewJob, Store
from sidecar.web import create_app
from tests.conftest import PREFIX
from tests.integration.delivery import Delivery, snapshot, text_fields
from tests.integration.test_admin_api import SECRET as ADMIN_SECRET
from tests.integration.test_admin_api import Signed
from tests.integration.test_admin_views import view

pytestmark = [pytest.mark.db, pytest.mark.sim]

A, B, C = seal.generate(), seal.generate(), seal.generate()


def opener(*pairs: KeyPair) -> Opener:
    return Opener([base64.b64decode(p.private) for p in pairs])


def enqueue_sealed(delivery: Delivery, reference: str, snap: str, pair: KeyPair | None) -> int:
    """A job as the bridge stores it: the snapshot sealed to `pair` (None: in clear)."""
    text, key = snap, None
    if pair is not None:
        key, box = seal.seal(pair.public, snap.encode())
        text = base64.b64encode(box).decode()
    job, _ = delivery.store.enqueue(NewJob(reference, 12, 0, text, seal_key=key))
    delivery.doorbell.ring_record(job.id, job.priority)
    return job.id


def referral(uploads: Path, name: str = "Jane-Doe-referral.pdf") -> list[Path]:
    return [write_pdf(uploads / "wpforms" / "12-abc" / name, 4096)]


def raw_rows(store: Store, job_id: int) -> str:
    """Every stored column of the job and its documents, as one text to grep."""
    with store.db.transaction() as cur:
        cur.execute(f"SELECT * FROM {store.t.jobs} WHERE id = %s", (job_id,))
        rows = cur.fetchall()
        cur.execute(f"SELECT * FROM {store.t.documents} WHERE job_id = %s", (job_id,))
        rows += cur.fetchall()
    return json.dumps(rows, default=str)


def test_a_job_sealed_to_the_old_key_is_delivered_after_rotation(delivery, sim, uploads):
    docs = referral(uploads)
    job_id = enqueue_sealed(delivery, "wpforms:12:1", snapshot(12, 1, text_fields(), uploads,
                                                                docs), A)
    delivery.engine.opener = opener(B, A)  # rotated: B is new, A kept as an old key
    delivery.drain()
    job = delivery.store.get_job(job_id)
    assert job.status == Status.COMPLETED
    (record,) = sim.records(bodies=True)
    assert record["body"]["fields"]["Email"] == "jane@example.com"
    assert [d["name"] for d in record["documents"]] == ["Jane-Doe-referral.pdf"]
    (doc,) = delivery.store.documents(job_id)
    # The sidecar seals what it writes to the newest key: no name, no path in clear.
    assert doc.seal_key == B.key_id and doc.original_name == ""
    stored = raw_rows(delivery.store, job_id)
    for value in ("Jane", "jane@example.com", "1980-02-01", "Jane-Doe-referral", "12-abc"):
        assert value not in stored


def test_reseal_moves_every_row_to_the_newest_key_and_the_old_one_can_go(
        delivery, sim, uploads, migrated_db):
    sealed_a = enqueue_sealed(delivery, "wpforms:12:2", snapshot(12, 2, text_fields(), uploads,
                                                                 referral(uploads)), A)
    clear = enqueue_sealed(delivery, "wpforms:12:3", snapshot(12, 3, text_fields(), uploads,
                                                              []), None)
    unknown = enqueue_sealed(delivery, "wpforms:12:4", snapshot(12, 4, text_fields(), uploads,
                                                                []), C)
    cfg = config.load("keys", environ=_env(migrated_db, B, A),
                      required=config.DATABASE)
    assert keys_command.reseal(cfg, batch=1) == 1  # one row is sealed to C, held nowhere
    keys = {j: delivery.store.get_job(j).seal_key for j in (sealed_a, clear, unknown)}
    assert keys == {sealed_a: B.key_id, clear: B.key_id, unknown: C.key_id}

    delivery.engine.opener = opener(B)  # A removed
    delivery.doorbell.rings = [r for r in delivery.doorbell.rings if r[1] != unknown]
    delivery.drain()
    assert delivery.store.get_job(sealed_a).status == Status.COMPLETED
    assert delivery.store.get_job(clear).status == Status.COMPLETED
    assert sorted(r["body"]["external_reference"] for r in sim.records(bodies=True)) == [
        "wpforms:12:2", "wpforms:12:3"]


def test_documents_written_in_clear_are_sealed_by_reseal(delivery, sim, uploads, migrated_db):
    sim.script({"kind": "document", "status": 422})  # the document fails: its place stays
    job_id = enqueue_sealed(delivery, "wpforms:12:5", snapshot(12, 5, text_fields(), uploads,
                                                               referral(uploads)), None)
    delivery.drain()  # sealing off: the document row holds its name and path in clear
    (doc,) = delivery.store.documents(job_id)
    assert doc.seal_key is None and doc.original_name == "Jane-Doe-referral.pdf"
    assert keys_command.reseal(config.load("keys", environ=_env(migrated_db, B),
                                           required=config.DATABASE), batch=50) == 0
    (doc,) = delivery.store.documents(job_id)
    assert doc.seal_key == B.key_id and "Jane" not in raw_rows(delivery.store, job_id)
    assert opener(B).open_place(doc.seal_key, doc.original_name, doc.path)[0] == (
        "Jane-Doe-referral.pdf")


def test_a_job_sealed_to_a_key_not_held_waits_then_delivers_once_it_is_added(
        delivery, sim, uploads):
    job_id = enqueue_sealed(delivery, "wpforms:12:6", snapshot(12, 6, text_fields(), uploads,
                                                                []), C)
    delivery.engine.opener = opener(A)
    delivery.engine.deliver_record(job_id)
    job = delivery.store.get_job(job_id)
    assert job.status in (Status.PENDING, Status.RETRYING)
    assert job.attempts == 0 and job.error_category == str(Category.CONFIG)
    assert C.key_id in (job.last_error or "") and "FORMRELAY_SEAL_PRIVATE_KEYS" in (
        job.last_error or "")
    assert sim.records() == []

    delivery.engine.opener = opener(A, C)  # the operator adds the key
    delivery.make_due()
    delivery.doorbell.rings = [("record", job_id, 0)]
    delivery.drain()
    job = delivery.store.get_job(job_id)
    assert (job.status, job.attempts) == (Status.COMPLETED, 1)


def test_a_document_sealed_to_a_key_no_longer_held_waits_without_spending_attempts(
        delivery, sim, uploads):
    sim.script({"kind": "document", "status": 503})  # the first upload fails: retried later
    job_id = enqueue_sealed(delivery, "wpforms:12:7", snapshot(12, 7, text_fields(), uploads,
                                                                referral(uploads)), A)
    delivery.engine.opener = opener(A)
    delivery.engine.deliver_record(job_id)
    (doc,) = delivery.store.documents(job_id)
    assert doc.status == Status.RETRYING and doc.seal_key == A.key_id
    delivery.engine.opener = opener(B)  # A dropped too early (no reseal)
    delivery.make_due()
    delivery.engine.deliver_document(doc.id)
    held = delivery.store.get_document(doc.id)
    assert held.attempts == doc.attempts and held.error_category == str(Category.CONFIG)
    assert A.key_id in (held.last_error or "")


def test_reveal_opens_a_sealed_snapshot_and_says_which_key_it_lacks(delivery, uploads):
    job_id = enqueue_sealed(delivery, "wpforms:12:8", snapshot(12, 8, text_fields(), uploads,
                                                                []), A)
    other = enqueue_sealed(delivery, "wpforms:12:9", snapshot(12, 9, text_fields(), uploads,
                                                               []), C)
    admin = Signed(create_app(delivery.store, ADMIN_SECRET, delivery.doorbell,
                              opener=opener(A)).test_client())
    shown = admin.post(f"/jobs/{job_id}/fields")
    assert shown.status_code == 200, shown.get_json()
    values = {f["name"]: f["value"] for f in shown.get_json()["fields"]}
    assert values["Email"] == "jane@example.com"
    refused = admin.post(f"/jobs/{other}/fields")
    assert refused.status_code == 404 and C.key_id in refused.get_json()["error"]


def test_retention_removes_the_ciphertext_with_its_key_id(delivery, sim, uploads):
    delivery.engine.opener = opener(A)
    job_id = enqueue_sealed(delivery, "wpforms:12:10", snapshot(12, 10, text_fields(), uploads,
                                                                 referral(uploads)), A)
    delivery.drain()
    assert delivery.store.get_job(job_id).status == Status.COMPLETED
    assert delivery.store.drop_ended_values("completed", 0) == (1, 1)
    with delivery.store.db.transaction() as cur:
        cur.execute(f"SELECT snapshot, seal_key FROM {PREFIX}formrelay_jobs WHERE id = %s",
                    (job_id,))
        assert cur.fetchone() == {"snapshot": None, "seal_key": None}
        cur.execute(f"SELECT path, seal_key FROM {PREFIX}formrelay_documents WHERE job_id = %s",
                    (job_id,))
        assert cur.fetchone() == {"path": "", "seal_key": None}
    assert delivery.store.sealed_keys() == {}


def test_the_doctor_names_keys_not_held_and_rows_in_clear(delivery, uploads):
    off = rows_check(delivery.store, Opener([]))
    assert off.level == Level.OK and "stored in clear" in off.detail
    enqueue_sealed(delivery, "wpforms:12:11", snapshot(12, 11, text_fields(), uploads, []), A)
    enqueue_sealed(delivery, "wpforms:12:12", snapshot(12, 12, text_fields(), uploads, []), None)
    missing = rows_check(delivery.store, opener(B))
    assert missing.level == Level.FAIL and A.key_id in missing.detail
    clear = rows_check(delivery.store, opener(B, A))
    assert clear.level == Level.WARN and "1 jobs hold their values in clear" in clear.detail
    assert "keys reseal" in clear.fix
    for line in (off, missing, clear):  # ids and counts only
        assert "jane" not in line.line().lower() and A.private not in line.line()


def test_the_doctor_checks_the_key_wordpress_seals_with():
    assert plugin_check(opener(A), {"version": "1"}) is None  # an older plugin: no line
    assert plugin_check(opener(A), {"seal_key": A.key_id}).level == Level.OK
    wrong = plugin_check(opener(A), {"seal_key": C.key_id})
    assert wrong.level == Level.FAIL and C.key_id in wrong.detail
    older = plugin_check(opener(B, A), {"seal_key": A.key_id})
    assert older.level == Level.WARN and B.public in older.fix  # the public half, to paste
    none = plugin_check(opener(A), {"seal_key": ""})
    assert none.level == Level.WARN and "stored in clear" in none.detail
    assert plugin_check(Opener([]), {"seal_key": ""}).level == Level.OK


def _env(db: DbSettings, *pairs: KeyPair) -> dict[str, str]:
    return {"WORDPRESS_DB_HOST": f"{db.host}:{db.port}", "WORDPRESS_DB_USER": db.user,
            "WORDPRESS_DB_PASSWORD": db.password, "WORDPRESS_DB_NAME": db.database,
            "WORDPRESS_TABLE_PREFIX": PREFIX,
            "FORMRELAY_SEAL_PRIVATE_KEYS": ",".join(p.private for p in pairs)}


def test_formrelay_keys_reseal_needs_a_key_and_prints_counts_only(
        delivery, uploads, migrated_db, monkeypatch, capsys):
    enqueue_sealed(delivery, "wpforms:12:13", snapshot(12, 13, text_fields(), uploads, []), A)
    for name, value in _env(migrated_db).items():
        monkeypatch.setenv(name, value)
    assert main(["keys", "reseal"]) == 78  # EX_CONFIG: nothing to seal to
    assert "FORMRELAY_SEAL_PRIVATE_KEYS" in capsys.readouterr().err
    monkeypatch.setenv("FORMRELAY_SEAL_PRIVATE_KEYS", f"{B.private},{A.private}")
    assert main(["keys", "reseal", "--batch", "2"]) == 0
    out = capsys.readouterr().out
    assert f"jobs: 1 resealed to key {B.key_id}" in out and "documents: 0" in out
    assert "jane" not in out.lower() and B.private not in out


def test_the_overview_says_values_are_in_clear_without_a_key_and_the_job_view_what_it_is(
        delivery, uploads):
    job_id = enqueue_sealed(delivery, "wpforms:12:14", snapshot(12, 14, text_fields(), uploads,
                                                                 []), A)
    for keys, in_clear in ((Opener([]), True), (opener(A), False)):
        admin = Signed(create_app(delivery.store, ADMIN_SECRET, delivery.doorbell,
                                  opener=keys).test_client())
        page = view(admin, "overview")
        assert bool(page.find("div", class_="notice notice-info inline formrelay-sealing-off")) \
            is in_clear
        assert ("Submitted values are stored in clear" in page.words) is in_clear
        assert f"Sealed (key {A.key_id})" in view(admin, "job", id=job_id).words
