"""Capture: `wpforms_process_complete` becomes exactly one job row with the sidecar's snapshot.

Each test fires the hook inside a real WordPress with arguments shaped like
WPForms Pro 1.9 builds them (see /work/shared/wpforms-reference.md), with real
files under wp-content/uploads, and reads the row back from MariaDB. No
sidecar URL is configured here, so no notify is attempted (test_bridge_notify.py).
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import pytest

from devstack.wordpress.logs import log_size, read_log
from devstack.wordpress.php import php_literal
from tests.conftest import wait_until
from tests.wordpress.bridge_fixtures import (
    CARD_PNG,
    PDF,
    PNG,
    Submission,
    capture,
    expected_file,
    jobs,
    make_form,
    media_upload,
    plugin_problems,
    update_settings,
    upload,
)

pytestmark = [pytest.mark.wordpress, pytest.mark.db]

UUID4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


@pytest.fixture(scope="module")
def form(bridge_site):
    return make_form(bridge_site, "Intake")


def assert_clean(run) -> None:
    """Nothing printed by the capture, no PHP problem in the plugin's files."""
    assert run.stdout == "captured"
    assert plugin_problems(run.stderr) == []


def test_modern_classic_and_media_library_files(wp, form):
    m1 = upload(wp, form, "Referral.pdf", PDF)
    m2 = upload(wp, form, "scan.png", PNG)
    card = upload(wp, form, "card.png", CARD_PNG)
    letter = media_upload(wp, "letter.pdf", PDF + b"more")
    sub = (
        Submission.basic(form, 34)
        .with_modern_files(4, [m1, m2])
        .with_classic_file(5, card)
        .with_modern_files(7, [letter], name="Letter")
    )

    run = capture(wp, sub)

    assert_clean(run)
    [job] = jobs(wp)
    assert job["reference"] == f"wpforms:{form.id}:34"
    assert (job["source"], job["form_id"], job["entry_id"]) == ("wpforms", form.id, 34)
    assert (job["status"], job["phase"], job["priority"]) == ("pending", "record", 10)
    assert (job["attempts"], job["max_attempts"], job["key_generation"]) == (0, 10, 1)
    assert job["next_attempt_at"] is not None and job["lease_owner"] is None
    # Unicode is \u-escaped: the INSERT is plain ASCII (no charset round trip in wpdb).
    assert job["snapshot_text"].isascii()

    uploads = wp.uploads_dir.resolve()
    folder = uploads / "wpforms" / form.folder
    expected_files = [
        expected_file(wp, 4, 0, m1, folder / m1["file"]),
        expected_file(wp, 4, 1, m2, folder / m2["file"]),
        expected_file(wp, 5, 0, card, folder / card["file"]),
        expected_file(wp, 7, 0, letter, uploads / "2024" / "05" / letter["file"]),
    ]
    assert job["snapshot"] == {
        "version": 1,
        "form_id": form.id,
        "entry_id": 34,
        "template": None,
        "fields": sub.fields,
        "files": expected_files,
    }
    for item in job["snapshot"]["files"]:
        path = Path(item["path"])
        assert path.is_absolute() and path.is_file()
        assert (uploads / item["relative"]).samefile(path)
        assert item["size"] == path.stat().st_size > 0
    # The media-library file was found through its attachment, not its URL.
    assert job["snapshot"]["files"][3]["attachment_id"] > 0
    assert job["snapshot"]["files"][3]["relative"].startswith("2024/05/letter-")


# Records the queries run by wpforms_process_complete callbacks (the bridge's is at 20).
COUNT_QUERIES = """
add_action( 'wpforms_process_complete', function () {
    add_filter( 'query', 'fr_record_query' );
}, -1000 );
add_action( 'wpforms_process_complete', function () {
    remove_filter( 'query', 'fr_record_query' );
}, 1000 );
function fr_record_query( $query ) {
    $GLOBALS['fr_queries'][] = $query;
    return $query;
}
register_shutdown_function( function () {
    echo "\n[queries:" . wp_json_encode( $GLOBALS['fr_queries'] ?? array() ) . "]";
} );
"""


def test_the_insert_is_the_only_query(wp, form):
    """Nothing but the INSERT on the submission's critical path (no charset checks, no reads)."""
    files = [upload(wp, form, "a.pdf", PDF), upload(wp, form, "b.png", PNG)]
    sub = Submission.basic(form, 80).with_modern_files(4, files).with_classic_file(
        5, upload(wp, form, "c.png", PNG))

    run = capture(wp, sub, setup=COUNT_QUERIES)

    queries = json.loads(re.search(r"\[queries:(.*)\]", run.stdout).group(1))
    assert len(queries) == 1, queries
    assert queries[0].startswith(f"INSERT INTO {wp.table_prefix}formrelay_jobs (reference,")
    assert len(jobs(wp)) == 1


def test_a_form_without_files_and_empty_file_fields(wp, form):
    sub = (
        Submission.basic(form, 35)
        .with_modern_files(4, [])  # modern style, nothing uploaded: value_raw ""
        .with_classic_file(5, None)  # classic style, nothing uploaded
    )
    assert sub.fields["4"]["value_raw"] == ""

    assert_clean(capture(wp, sub))

    [job] = jobs(wp)
    assert job["reference"] == f"wpforms:{form.id}:35"
    assert job["snapshot"] == {
        "version": 1, "form_id": form.id, "entry_id": 35, "template": None,
        "fields": sub.fields, "files": [],
    }


def test_lite_mode_entry_id_0_gets_a_uuid_reference(wp, form):
    first, second = Submission.basic(form, 0), Submission.basic(form, 0, name="Ann Lee")

    assert_clean(capture(wp, first, second))

    rows = jobs(wp)
    assert len(rows) == 2
    for row, sub in zip(rows, (first, second), strict=True):
        assert re.fullmatch(rf"wpforms:{form.id}:{UUID4}", row["reference"]), row["reference"]
        assert row["entry_id"] == 0 and row["form_id"] == form.id
        # The hook's arguments are the only copy of a Lite submission: all of it is kept.
        assert row["snapshot"]["entry_id"] == 0
        assert row["snapshot"]["fields"] == sub.fields
    assert rows[0]["reference"] != rows[1]["reference"]


def test_fields_keyed_by_id_with_repeater_children_and_old_numbering(wp, form):
    keyed = Submission.basic(form, 36)
    keyed.fields["3_1"] = {"name": "Child (1)", "value": "Sam", "id": "3_1", "type": "text"}
    keyed.fields["3_2"] = {"name": "Child (2)", "value": "Kim", "id": "3_2", "type": "text"}
    # Old forms numbered fields from 0: PHP has a list, stored as a JSON list.
    old = Submission(form, 37, {
        "0": {"name": "Name", "value": "Old Form", "id": 0, "type": "text"},
        "1": {"name": "Email", "value": "old@example.com", "id": 1, "type": "email"},
    })

    assert_clean(capture(wp, keyed, old))

    first, second = jobs(wp)
    assert first["snapshot"]["fields"] == keyed.fields
    assert list(first["snapshot"]["fields"]) == list(keyed.fields)  # order kept
    assert second["snapshot"]["fields"] == [old.fields["0"], old.fields["1"]]


def test_capturing_the_same_entry_twice_keeps_one_row(wp, form):
    sub = Submission.basic(form, 38)
    offset = log_size(wp.debug_log)

    assert_clean(capture(wp, sub, sub))  # twice in one request
    assert_clean(capture(wp, sub))  # and again later

    rows = jobs(wp)
    assert [r["reference"] for r in rows] == [f"wpforms:{form.id}:38"]
    # A duplicate is expected, not an error.
    assert "FormRelay" not in read_log(wp.debug_log, offset)


def test_only_selected_forms_are_captured(wp, form):
    other = make_form(wp, "Newsletter")
    update_settings(wp, forms=[form.id])

    assert_clean(capture(wp, Submission.basic(form, 40), Submission.basic(other, 41)))
    assert [r["reference"] for r in jobs(wp)] == [f"wpforms:{form.id}:40"]

    update_settings(wp, forms=[])  # "only the ticked forms", none ticked
    assert_clean(capture(wp, Submission.basic(form, 42), Submission.basic(other, 43)))
    assert [r["reference"] for r in jobs(wp)] == [f"wpforms:{form.id}:40"]

    update_settings(wp, forms="all")
    assert_clean(capture(wp, Submission.basic(other, 44)))
    assert [r["reference"] for r in jobs(wp)][-1] == f"wpforms:{other.id}:44"


def test_per_form_priority_and_template(wp, form):
    other = make_form(wp, "Referral")
    stored = update_settings(
        wp, form_settings={str(form.id): {"template": "intake.json.j2", "priority": 3}}
    )
    assert stored["form_settings"] == {str(form.id): {"template": "intake.json.j2", "priority": 3,
                                                      "partner": ""}}

    assert_clean(capture(wp, Submission.basic(form, 50), Submission.basic(other, 51)))

    mine, theirs = jobs(wp)
    assert (mine["priority"], mine["snapshot"]["template"]) == (3, "intake.json.j2")
    assert mine["due_priority"] == 3  # the claim index sees it
    assert (theirs["priority"], theirs["snapshot"]["template"]) == (10, None)
    assert mine["partner"] == theirs["partner"] == ""  # no partner chosen: the default's


def test_the_forms_partner_is_written_with_the_insert_and_no_other_query(wp, form):
    """A form's partner (the autoloaded settings: no query to read it) goes into the job
    row's `partner`; other forms' jobs get '' (the default partner, named at the claim)."""
    other = make_form(wp, "Referral")
    update_settings(wp, form_settings={str(form.id): {"template": "", "priority": 10,
                                                      "partner": "ehr"}})
    run = capture(wp, Submission.basic(form, 60), Submission.basic(other, 61),
                  setup=COUNT_QUERIES)
    queries = json.loads(re.search(r"\[queries:(.*)\]", run.stdout).group(1))
    assert [q.split(" (")[0] for q in queries] == [
        f"INSERT INTO {wp.table_prefix}formrelay_jobs"] * 2, queries
    assert "'ehr'" in queries[0]
    mine, theirs = jobs(wp)
    assert (mine["partner"], theirs["partner"]) == ("ehr", "")


def test_the_upload_root_filter_moves_where_files_are_found(wp, form):
    outside = wp.dir / "private-uploads"
    (outside / "wpforms" / form.folder).mkdir(parents=True)
    item = upload(wp, form, "moved.pdf", PDF)
    # WPForms stored it under the filtered root; the URL still says uploads/wpforms.
    real = outside / "wpforms" / form.folder / item["file"]
    (wp.uploads_dir / "wpforms" / form.folder / item["file"]).rename(real)
    sub = Submission.basic(form, 60).with_classic_file(5, item)
    moved = f"add_filter( 'wpforms_upload_root', fn() => {php_literal(str(outside / 'wpforms'))} );"

    assert_clean(capture(wp, sub, setup=moved))

    [file] = jobs(wp)[0]["snapshot"]["files"]
    assert file["path"] == str(real.resolve())
    assert file["relative"] == ""  # outside uploads: the sidecar uses the path
    assert file["size"] == len(PDF)

    # A filtered root that is not a directory is ignored, as WPForms ignores it.
    back = upload(wp, form, "back.pdf", PDF)
    gone = "add_filter( 'wpforms_upload_root', fn() => '/nonexistent/wpforms' );"
    assert_clean(capture(wp, Submission.basic(form, 61).with_classic_file(5, back), setup=gone))
    [file] = jobs(wp)[1]["snapshot"]["files"]
    assert file["relative"] == f"wpforms/{form.folder}/{back['file']}"
    assert Path(file["path"]).is_file()


def test_a_file_missing_on_disk_is_listed_without_a_size(wp, form):
    item = upload(wp, form, "gone.pdf", PDF)
    (wp.uploads_dir / "wpforms" / form.folder / item["file"]).unlink()

    assert_clean(capture(wp, Submission.basic(form, 62).with_modern_files(4, [item])))

    [file] = jobs(wp)[0]["snapshot"]["files"]
    assert file["relative"] == f"wpforms/{form.folder}/{item['file']}"
    assert file["size"] is None


def test_a_database_failure_never_fails_the_submission_or_logs_values(wp, form):
    item = upload(wp, form, "Secret-Diagnosis.pdf", PDF)
    sub = Submission.basic(form, 70, name="Zebulon Quartermaine").with_modern_files(4, [item])
    table = f"{wp.table_prefix}formrelay_jobs"
    offset = log_size(wp.debug_log)
    with wp.db() as conn:
        conn.cursor().execute(f"RENAME TABLE `{table}` TO `{table}_away`")
    try:
        run = capture(wp, sub)
    finally:
        with wp.db() as conn:
            conn.cursor().execute(f"RENAME TABLE `{table}_away` TO `{table}`")

    assert_clean(run)  # the form's request goes on, nothing printed
    assert run.stderr == ""
    log = read_log(wp.debug_log, offset)
    assert f"FormRelay Bridge: could not queue form {form.id} entry 70 (MySQL error 1146)" in log
    for value in ("Zebulon", "Quartermaine", "jane.doe@example.com", "1980-02-01",
                  "Secret-Diagnosis", "100% sure", "INSERT INTO"):
        assert value not in log, value
    assert jobs(wp) == []

    # Once the table is back, the same entry is captured normally.
    assert_clean(capture(wp, sub))
    assert [r["reference"] for r in jobs(wp)] == [f"wpforms:{form.id}:70"]


# ------------------------------------------------ deadlocks and lock wait timeouts
# InnoDB refreshes its innodb_trx view only after 0.1 s without a read: poll slower.
LOCK_POLL_SECONDS = 0.25


def lock_waits(wp) -> int:
    with wp.db() as conn:
        cur = conn.cursor()
        cur.execute("SELECT COUNT(*) FROM information_schema.innodb_trx"
                    " WHERE trx_state = 'LOCK WAIT'")
        return int(cur.fetchone()[0])


def capture_in_thread(wp, sub, setup: str = "") -> tuple[threading.Thread, dict]:
    out: dict = {}
    thread = threading.Thread(target=lambda: out.update(run=capture(wp, sub, setup=setup)))
    thread.start()
    return thread, out


def hold_reference(conn, table: str, reference: str, weight: int = 0) -> int:
    """In `conn`'s open transaction, the job row of `reference`, not committed: an INSERT
    of the same reference waits for this transaction. `weight` log rows first make this
    transaction the heavier one, so InnoDB picks the other as a deadlock's victim."""
    cur = conn.cursor()
    conn.start_transaction()
    if weight:
        cur.executemany(f"INSERT INTO {table.replace('jobs', 'log')} (level, event, message,"
                        " created_at) VALUES ('info', 'test.weight', '', UTC_TIMESTAMP(3))",
                        [()] * weight)
    cur.execute(f"INSERT INTO {table} (reference, source, form_id, entry_id, snapshot, status,"
                " phase, priority, attempts, max_attempts, next_attempt_at, created_at,"
                " updated_at) VALUES (%s, 'test', 1, 1, '', 'pending', 'record', 10, 0, 10,"
                " UTC_TIMESTAMP(3), UTC_TIMESTAMP(3), UTC_TIMESTAMP(3))", (reference,))
    return int(cur.lastrowid)


def test_a_deadlocked_capture_insert_is_tried_once_more_and_stored(wp, form):
    sub = Submission.basic(form, 71, name="Zebulon Quartermaine")
    table, reference = f"{wp.table_prefix}formrelay_jobs", f"wpforms:{form.id}:71"
    offset = log_size(wp.debug_log)
    with wp.db() as other:
        held = hold_reference(other, table, reference, weight=50)
        thread, out = capture_in_thread(wp, sub)
        # The capture's INSERT has written its row and waits on the held reference...
        wait_until(lambda: lock_waits(wp) >= 1, 60, "the capture's INSERT waiting",
                   interval=LOCK_POLL_SECONDS)
        # ...and the other transaction now asks for that row: a deadlock, the capture its victim.
        cur = other.cursor()
        cur.execute(f"SELECT id FROM {table} WHERE id > %s FOR UPDATE", (held,))
        cur.fetchall()
        other.rollback()  # the held reference goes; the capture's second INSERT goes through
    thread.join(timeout=120)
    assert not thread.is_alive()
    assert_clean(out["run"])
    log = read_log(wp.debug_log, offset)
    assert f"FormRelay Bridge: form {form.id} entry 71: MySQL error 1213; retrying once" in log
    assert "could not queue" not in log and "Zebulon" not in log
    assert [r["reference"] for r in jobs(wp)] == [reference]


def test_a_capture_insert_that_keeps_waiting_on_a_lock_never_fails_the_form(wp, form):
    sub = Submission.basic(form, 72, name="Zebulon Quartermaine")
    table, reference = f"{wp.table_prefix}formrelay_jobs", f"wpforms:{form.id}:72"
    offset = log_size(wp.debug_log)
    lock_wait = ("global $wpdb;"  # this request's session only: each attempt waits 1 s
                 " $wpdb->query( 'SET SESSION innodb_lock_wait_timeout = 1' );")
    with wp.db() as other:
        hold_reference(other, table, reference)
        try:
            run = capture(wp, sub, setup=lock_wait)
        finally:
            other.rollback()
    assert_clean(run)
    log = read_log(wp.debug_log, offset)
    assert f"form {form.id} entry 72: MySQL error 1205; retrying once" in log
    assert f"could not queue form {form.id} entry 72 (MySQL error 1205)" in log
    assert "Zebulon" not in log and "INSERT INTO" not in log
    assert jobs(wp) == []
