"""Sealed submissions on real parts: a form POSTed to WordPress (PHP 8.2, the bridge with
FORMRELAY_SEAL_PUBLIC_KEY in wp-config.php, the WPForms emulator), `formrelay run` holding
the private key, the partner simulator over HTTP, and `mysqldump` of FormRelay's tables
grepped for every submitted value and the file's name, before and after delivery."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator

import pytest

from devstack import wpforms
from devstack.samples import write_pdf
from sidecar import seal
from tests.conftest import wait_until
from tests.integration.test_cli import formrelay_bin
from tests.wordpress.stack import Stack, open_stack

pytestmark = [pytest.mark.wordpress, pytest.mark.db, pytest.mark.sim, pytest.mark.slow]

PAIR = seal.generate()
# Seven characters or more each: a needle this long is never in base64 by chance.
VALUES = {"1": {"first": "Janelle", "last": "Okonkwo-Brightwater"},
          "2": "janelle.okonkwo@example.org", "3": "1979-11-23"}
FILE_NAME = "Okonkwo-intake-letter.pdf"
NEEDLES = ("Janelle", "Okonkwo", "Brightwater", "janelle.okonkwo@example.org", "1979-11-23",
           "intake-letter")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with open_stack(tmp_path_factory.mktemp("sealed"),
                    FORMRELAY_SEAL_PUBLIC_KEY=PAIR.public) as running:
        running.env["FORMRELAY_SEAL_PRIVATE_KEYS"] = PAIR.private
        yield running


def dump(stack: Stack, *tables: str) -> str:
    """mysqldump of the named tables (default: every FormRelay table)."""
    wp = stack.wp
    with wp.db() as conn:
        cur = conn.cursor()
        cur.execute("SHOW TABLES LIKE %s", (f"{wp.table_prefix}formrelay%",))
        names = list(tables) or [str(r[0]) for r in cur.fetchall()]
    host, _, port = wp.db_host_port.partition(":")
    out = subprocess.run(["mysqldump", "-h", host, "-P", port or "3306", "-u", wp.db_user,
                          f"--password={wp.db_password}", "--skip-extended-insert",
                          wp.db_name, *names], capture_output=True, text=True, check=True)
    assert "INSERT INTO" in out.stdout  # a dump of something
    return out.stdout


def test_a_dump_of_formrelay_tables_holds_no_value_and_no_file_name(stack, tmp_path):
    pdf = write_pdf(tmp_path / FILE_NAME, 3000)
    sent = wpforms.submit(stack.wp.url, stack.form, VALUES, files={"4": [pdf]})
    reference = f"wpforms:{stack.form}:{sent.entry_id}"
    (job,) = stack.jobs("reference = %s", reference)
    assert job["seal_key"] == PAIR.key_id and job["status"] == "pending"
    opened = json.loads(seal.Opener([base64.b64decode(PAIR.private)]).open_snapshot(
        job["seal_key"], job["snapshot"]) or "")
    assert opened["fields"]["2"]["value"] == VALUES["2"]  # the values are there, sealed
    assert opened["files"][0]["name"] == FILE_NAME
    _assert_clean(dump(stack))

    stack.start()
    try:
        done = wait_until(lambda: stack.completed(reference), 30, "the sealed job to complete")
    finally:
        output = stack.stop()
    (record,) = [r for r in stack.sim.records(bodies=True) if r["id"] == done["partner_record_id"]]
    assert record["body"]["fields"]["Email"] == VALUES["2"]
    assert [d["name"] for d in record["documents"]] == [FILE_NAME]
    _assert_clean(dump(stack))  # the document rows the sidecar wrote are sealed too
    _assert_clean(output)
    # WPForms' own entry keeps them in plaintext (README says so): the grep can find them.
    entries = dump(stack, f"{stack.wp.table_prefix}wpforms_entries")
    assert "janelle.okonkwo@example.org" in entries


def _assert_clean(text: str) -> None:
    found = [n for n in NEEDLES if n.lower() in text.lower()]
    assert found == [], f"in clear: {found}"


def test_captures_sealed_to_key_a_deliver_after_rotation_after_reseal_and_once_a_is_added(
        stack):
    """WordPress seals to A throughout (PAIR); the sidecar's keys change around it."""
    new = seal.generate()

    def capture() -> str:
        sent = wpforms.submit(stack.wp.url, stack.form, VALUES)
        reference = f"wpforms:{stack.form}:{sent.entry_id}"
        (job,) = stack.jobs("reference = %s", reference)
        assert job["seal_key"] == PAIR.key_id
        return reference

    def deliver(keys: str, reference: str) -> None:
        stack.env["FORMRELAY_SEAL_PRIVATE_KEYS"] = keys
        stack.start()
        try:
            wait_until(lambda: stack.completed(reference), 30, f"{reference} to complete")
        finally:
            stack.stop()

    try:
        # Rotation: B is the newest key, A kept as an old one.
        deliver(f"{new.private},{PAIR.private}", capture())

        # `keys reseal` moves the waiting job to B; then A leaves the sidecar.
        waiting = capture()
        stack.env["FORMRELAY_SEAL_PRIVATE_KEYS"] = f"{new.private},{PAIR.private}"
        resealed = subprocess.run([formrelay_bin(), "keys", "reseal"], env=stack.env,
                                  capture_output=True, text=True, timeout=60)
        assert resealed.returncode == 0, resealed.stderr
        assert stack.jobs("reference = %s", waiting)[0]["seal_key"] == new.key_id
        deliver(new.private, waiting)

        # A key the sidecar lacks: the job waits, with the reason, spending no attempt.
        lacking = capture()
        stack.env["FORMRELAY_SEAL_PRIVATE_KEYS"] = new.private
        stack.start()
        try:
            job = wait_until(lambda: _waiting_on_key(stack, lacking), 30,
                             "the job to wait for its key")
        finally:
            stack.stop()
        assert job["attempts"] == 0 and job["error_category"] == "config"
        assert PAIR.key_id in job["last_error"]
        deliver(f"{new.private},{PAIR.private}", lacking)  # the key is added
    finally:
        stack.env["FORMRELAY_SEAL_PRIVATE_KEYS"] = PAIR.private


def _waiting_on_key(stack: Stack, reference: str) -> dict[str, object] | None:
    (job,) = stack.jobs("reference = %s", reference)
    return job if job["last_error"] and PAIR.key_id in job["last_error"] else None
