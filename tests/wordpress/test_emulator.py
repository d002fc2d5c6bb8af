"""The WPForms emulator reproduces WPForms Pro 1.9.1.4 where FormRelay touches it.

Everything goes through a real WordPress over real HTTP: forms are posted
multipart to the front end (or admin-ajax.php), like a browser does; the
expected shapes are those of /work/shared/wpforms-reference.md (WPForms'
sources). One site for the module; each test makes its own forms.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from devstack import wpforms
from devstack.samples import write_html_as_pdf, write_jpeg, write_pdf, write_png
from devstack.wordpress import LocalWordPress
from tests.wordpress.conftest import server_connection

# The fixtures: emulator_site, recorder, lite_mode, strict_file_types, no_emulator_php_notices.
from tests.wordpress.emulator_fixtures import *  # noqa: F403

pytestmark = [pytest.mark.wordpress, pytest.mark.db]

HASHED_NAME = r"-[0-9a-f]{32}\."

# The reference's DDL, word for word (rewrapped to the line length).
REFERENCE_DDL = """
CREATE TABLE {prefix}wpforms_entries (
 entry_id bigint(20) NOT NULL AUTO_INCREMENT, form_id bigint(20) NOT NULL,
 post_id bigint(20) NOT NULL,
 user_id bigint(20) NOT NULL, status varchar(30) NOT NULL, type varchar(30) NOT NULL,
 viewed tinyint(1) DEFAULT 0, starred tinyint(1) DEFAULT 0, fields longtext NOT NULL,
 meta longtext NOT NULL,
 date datetime NOT NULL, date_modified datetime NOT NULL, ip_address varchar(128) NOT NULL,
 user_agent varchar(256) NOT NULL, user_uuid varchar(36) NOT NULL,
 PRIMARY KEY (entry_id), KEY form_id (form_id));
CREATE TABLE {prefix}wpforms_entry_fields (
 id bigint(20) NOT NULL AUTO_INCREMENT, entry_id bigint(20) NOT NULL, form_id bigint(20) NOT NULL,
 field_id varchar(16) NOT NULL, value longtext NOT NULL, date datetime NOT NULL,
 PRIMARY KEY (id), KEY entry_id (entry_id), KEY form_id (form_id), KEY field_id (field_id));
CREATE TABLE {prefix}wpforms_entry_meta (
 id bigint(20) NOT NULL AUTO_INCREMENT, entry_id bigint(20) NOT NULL, form_id bigint(20) NOT NULL,
 user_id bigint(20) NOT NULL, status varchar(30) NOT NULL, type varchar(255) NOT NULL,
 data longtext NOT NULL, date datetime NOT NULL, PRIMARY KEY (id), KEY entry_id (entry_id));
"""
TABLES = ("wpforms_entries", "wpforms_entry_fields", "wpforms_entry_meta")

# The hooks FormRelay relies on, in the reference's order ({id}: the form id).
DOCUMENTED_ORDER = (
    "wpforms_process_before", "wpforms_process_before_{id}",
    "wpforms_process", "wpforms_process_{id}",
    "wpforms_process_after_filter",
    "wpforms_process_entry_save", "wpforms_process_entry_saved",
    "wpforms_process_complete", "wpforms_process_complete_{id}",
    "wpforms_process_after",
)
ARGC = {
    "wpforms_process_before": 2, "wpforms_process_before_{id}": 2,
    "wpforms_process": 3, "wpforms_process_{id}": 3,
    "wpforms_process_after_filter": 3,
    "wpforms_process_entry_save": 4, "wpforms_process_entry_saved": 5,
    "wpforms_process_complete": 4, "wpforms_process_complete_{id}": 4,
    "wpforms_process_after": 3,
}


# ------------------------------------------------------------------ helpers
def php_json(wp: LocalWordPress, code: str, *args: str) -> Any:
    return json.loads(wp.php(code, *args).strip().splitlines()[-1])


def sanitize_file_name(wp: LocalWordPress, name: str) -> str:
    return str(php_json(wp, "echo wp_json_encode( sanitize_file_name( $snippet_args[0] ) );", name))


def form_post(wp: LocalWordPress, form_id: int) -> dict[str, Any]:
    with wp.db() as conn:
        cur = conn.cursor(dictionary=True)
        cur.execute(
            f"SELECT post_type, post_status, post_title, post_content, post_date"
            f" FROM `{wp.table_prefix}posts` WHERE ID = %s", (form_id,))
        row = cur.fetchone()
    assert row is not None, f"no post {form_id}"
    row["post_date"] = row["post_date"].strftime("%Y-%m-%d %H:%M:%S")
    return dict(row)


def form_folder(wp: LocalWordPress, form_id: int) -> Path:
    """<uploads>/wpforms/{form_id}-{md5(form_id . post_date)}, computed here from the reference."""
    post_date = form_post(wp, form_id)["post_date"]
    digest = hashlib.md5(f"{form_id}{post_date}".encode()).hexdigest()  # noqa: S324
    return wp.uploads_dir / "wpforms" / f"{form_id}-{digest}"


def folder_url(wp: LocalWordPress, folder: Path) -> str:
    return f"{wp.url}/wp-content/uploads/wpforms/{folder.name}"


def rows(wp: LocalWordPress, sql: str, *params: Any) -> list[dict[str, Any]]:
    with wp.db() as conn:
        cur = conn.cursor(dictionary=True)
        cur.execute(sql.replace("{p}", wp.table_prefix), params)
        return list(cur.fetchall())


def entry_count(wp: LocalWordPress, form_id: int) -> int:
    return len(rows(wp, "SELECT entry_id FROM `{p}wpforms_entries` WHERE form_id = %s", form_id))


def contact_form(wp: LocalWordPress, title: str = "Contact", **kwargs: Any) -> int:
    return wpforms.create_form(wp, title, fields=[
        wpforms.name_field(1), wpforms.email_field(2), wpforms.text_field(3, "Date of birth"),
    ], **kwargs)


def documents_form(wp: LocalWordPress, title: str = "Documents", **kwargs: Any) -> int:
    return wpforms.create_form(wp, title, fields=[
        wpforms.name_field(1), wpforms.email_field(2),
        wpforms.file_field(4, "Documents", style="modern", max_file_number=5),
    ], **kwargs)


JANE = {1: {"first": "Jane", "last": "Doe"}, 2: "jane@example.com", 3: "1980-02-01"}


def assert_exactly(actual: Any, expected: Any, path: str = "$") -> None:
    """Equal, and of the same JSON types all the way down (1 is not true, "4" is not 4)."""
    assert type(actual) is type(expected), f"{path}: {actual!r} is not of the type of {expected!r}"
    if isinstance(expected, dict):
        assert set(actual) == set(expected), f"{path}: keys {sorted(actual)} != {sorted(expected)}"
        for key in expected:
            assert_exactly(actual[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), f"{path}: {len(actual)} items, not {len(expected)}"
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_exactly(a, e, f"{path}[{i}]")
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


def backdate(wp: LocalWordPress, form_id: int, when: str = "2021-06-15 10:20:30") -> str:
    """Make the form look old: its post_date (what WPForms calls `created`) becomes ``when``."""
    with wp.db() as conn:
        conn.cursor().execute(
            f"UPDATE `{wp.table_prefix}posts` SET post_date = %s WHERE ID = %s", (when, form_id))
    return when


def expect_name(value: str, first: str, last: str, label: str = "Name") -> dict[str, Any]:
    return {"name": label, "value": value, "id": 1, "type": "name",
            "first": first, "middle": "", "last": last}


# ------------------------------------------------------------------- schema
def test_activation_creates_the_reference_tables_exactly(emulator_site, scratch_database):
    reference_db = scratch_database()
    with server_connection(reference_db) as conn:
        cur = conn.cursor()
        for statement in REFERENCE_DDL.format(prefix="wp_").split(";"):
            if statement.strip():
                cur.execute(statement)

    def columns(db: str, table: str) -> list[tuple[Any, ...]]:
        with server_connection() as conn:
            cur = conn.cursor()
            cur.execute(
                "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA"
                " FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s"
                " ORDER BY ORDINAL_POSITION", (db, table))
            return cur.fetchall()

    def indexes(db: str, table: str) -> list[tuple[Any, ...]]:
        with server_connection() as conn:
            cur = conn.cursor()
            cur.execute(
                "SELECT INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME"
                " FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s"
                " ORDER BY INDEX_NAME, SEQ_IN_INDEX", (db, table))
            return cur.fetchall()

    for table in TABLES:
        name = f"wp_{table}"
        assert columns(reference_db, name), f"the reference DDL made no {name}"
        assert columns(emulator_site.db_name, name) == columns(reference_db, name), name
        assert indexes(emulator_site.db_name, name) == indexes(reference_db, name), name

    # dbDelta over the existing tables (a re-activation) finds nothing to change.
    again = php_json(emulator_site, "echo wp_json_encode( WPForms_Emulator_Schema::install() );")
    assert again == []


# -------------------------------------------------------------------- forms
def test_forms_are_wpforms_posts_with_wpforms_json(emulator_site):
    form_id = wpforms.create_form(emulator_site, "Patient intake", fields=[
        wpforms.name_field(1), wpforms.email_field(2, required=True),
        wpforms.file_field(4, style="classic", media_library=True),
    ], disable_entries=True, store_spam=False)
    post = form_post(emulator_site, form_id)
    assert (post["post_type"], post["post_status"], post["post_title"]) == (
        "wpforms", "publish", "Patient intake")
    assert json.loads(post["post_content"]) == {
        "id": form_id,
        "field_id": 5,
        "fields": {
            "1": {"id": "1", "type": "name", "label": "Name", "required": "",
                  "format": "first-last"},
            "2": {"id": "2", "type": "email", "label": "Email", "required": "1"},
            "4": {"id": "4", "type": "file-upload", "label": "Documents", "required": "",
                  "style": "classic", "max_file_number": "5", "media_library": "1",
                  "extensions": ""},
        },
        "settings": {"form_title": "Patient intake", "disable_entries": "1",
                     "store_spam_entries": "0", "ajax_submit": "0"},
    }
    draft = contact_form(emulator_site, status="draft")
    assert form_post(emulator_site, draft)["post_status"] == "draft"


def test_only_published_forms_are_processed(emulator_site, recorder):
    draft = contact_form(emulator_site, "Draft", status="draft")
    with pytest.raises(wpforms.SubmissionError, match="Invalid form"):
        wpforms.submit(emulator_site.url, draft, JANE, session=recorder.session)
    assert entry_count(emulator_site, draft) == 0
    assert recorder.hooks() == ["wpforms_process_after"]  # fired even for a failed submission


def test_the_response_carries_the_entry_id_in_a_header_and_a_comment(emulator_site):
    form_id = contact_form(emulator_site)
    resp = requests.post(emulator_site.url + "/", files={
        "wpforms[id]": (None, str(form_id)),
        "wpforms[fields][1][first]": (None, "Jane"), "wpforms[fields][1][last]": (None, "Doe"),
        "wpforms[fields][2]": (None, "jane@example.com")}, timeout=30)
    assert resp.status_code == 200
    entry_id = int(resp.headers["X-WPForms-Emulator-Entry"])
    assert entry_id > 0
    assert resp.headers["X-WPForms-Emulator-Result"] == "complete"
    assert f"<!-- wpforms-emulator result=complete entry_id={entry_id} -->" in resp.text
    assert [e.entry_id for e in wpforms.entries(emulator_site, form_id)] == [entry_id]


# ------------------------------------------------------------------ entries
def test_a_submission_stores_an_entry_with_the_documented_fields(emulator_site):
    form_id = wpforms.create_form(emulator_site, "Contact", fields=[
        wpforms.name_field(1), wpforms.email_field(2), wpforms.text_field(3, "Code"),
        wpforms.textarea_field(5, "Notes"),
    ])
    before = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    sent = wpforms.submit(emulator_site.url, form_id, {
        1: {"first": "Jane", "middle": "Q", "last": "Doe"}, 2: "jane@example.com",
        3: "0", 5: ""})
    after = datetime.now(UTC).replace(tzinfo=None)
    assert (sent.result, sent.status_code) == ("complete", 200)

    [entry] = wpforms.entries(emulator_site, form_id)
    assert entry.entry_id == sent.entry_id > 0
    assert entry.status == ""
    assert_exactly(entry.fields, {
        "1": {"name": "Name", "value": "Jane Q Doe", "id": 1, "type": "name",
              "first": "Jane", "middle": "Q", "last": "Doe"},
        "2": {"name": "Email", "value": "jane@example.com", "id": 2, "type": "email"},
        "3": {"name": "Code", "value": "0", "id": 3, "type": "text"},
        "5": {"name": "Notes", "value": "", "id": 5, "type": "textarea"},
    })
    # One entry_fields row per non-empty value: "0" is a value, "" is not.
    assert entry.values == {"1": "Jane Q Doe", "2": "jane@example.com", "3": "0"}
    field_rows = rows(emulator_site, "SELECT form_id, date FROM `{p}wpforms_entry_fields`"
                                     " WHERE entry_id = %s", entry.entry_id)
    assert {r["form_id"] for r in field_rows} == {form_id}
    assert (entry.post_id, entry.user_id, entry.type, entry.viewed, entry.starred,
            entry.meta) == (0, 0, "", 0, 0, "")
    assert entry.ip_address == "127.0.0.1"
    assert entry.user_agent.startswith("python-requests/")
    stored = datetime.strptime(entry.date, "%Y-%m-%d %H:%M:%S")
    assert before <= stored <= after, "entries are dated in UTC"
    assert entry.date_modified == entry.date


def test_fields_numbered_from_zero_are_stored_as_a_json_list(emulator_site):
    form_id = wpforms.create_form(emulator_site, "Old form", fields=[
        wpforms.name_field(0, format="simple"), wpforms.email_field(1)])
    sent = wpforms.submit(emulator_site.url, form_id, {0: "Jane Doe", 1: "jane@example.com"})
    entry = wpforms.entry(emulator_site, sent.entry_id)
    assert entry is not None
    assert entry.fields_json.startswith("[")
    assert_exactly(entry.fields, [
        {"name": "Name", "value": "Jane Doe", "id": 0, "type": "name",
         "first": "", "middle": "", "last": ""},
        {"name": "Email", "value": "jane@example.com", "id": 1, "type": "email"},
    ])


def test_a_submission_that_fails_validation_stores_nothing(emulator_site, recorder):
    form_id = wpforms.create_form(emulator_site, "Required", fields=[
        wpforms.name_field(1), wpforms.email_field(2, required=True)])
    with pytest.raises(wpforms.SubmissionError, match="field 2: This field is required"):
        wpforms.submit(emulator_site.url, form_id, {1: "Jane"}, session=recorder.session)
    bad_email = wpforms.submit(emulator_site.url, form_id, {2: "not-an-email"}, check=False)
    assert (bad_email.result, bad_email.entry_id) == ("error", 0)
    assert "valid email" in bad_email.error
    assert entry_count(emulator_site, form_id) == 0
    hooks = recorder.hooks()
    assert "wpforms_process" not in hooks and "wpforms_process_complete" not in hooks
    assert hooks[-1] == "wpforms_process_after"


# -------------------------------------------------------------------- files
def test_modern_files_land_in_the_form_folder_with_hashed_names(emulator_site, tmp_path):
    form_id = documents_form(emulator_site)
    backdate(emulator_site, form_id)  # the folder's hash follows the form's post_date
    long_name = "A-very-long-referral-letter-name-" + "x" * 60 + ".PDF"
    uploads = [
        write_pdf(tmp_path / "Referral letter (final).pdf", 5_000),
        write_jpeg(tmp_path / "scan.jpg", 3_000),
        write_pdf(tmp_path / long_name, 2_500),
    ]
    sent = wpforms.submit(emulator_site.url, form_id, JANE, files={4: uploads})
    entry = wpforms.entry(emulator_site, sent.entry_id)
    assert entry is not None
    folder = form_folder(emulator_site, form_id)
    field = entry.fields["4"]
    assert set(field) == {"name", "value", "value_raw", "id", "type", "style", "visible"}
    assert_exactly({k: field[k] for k in ("name", "id", "type", "style", "visible")}, {
        "name": "Documents", "id": 4, "type": "file-upload", "style": "modern", "visible": True})

    raw = field["value_raw"]
    assert isinstance(raw, list) and len(raw) == len(uploads)
    for item, upload in zip(raw, uploads, strict=True):
        sanitized = sanitize_file_name(emulator_site, upload.name)
        stem, ext = sanitized.rsplit(".", 1)
        assert re.fullmatch(re.escape(stem[:64]) + HASHED_NAME + ext.lower(), item["file"]), item
        assert_exactly(item, {
            "name": sanitized, "value": f"{folder_url(emulator_site, folder)}/{item['file']}",
            "file": item["file"], "file_original": sanitized, "file_user_name": upload.name,
            "ext": ext.lower(), "attachment_id": 0, "id": 4,
            "type": {"pdf": "application/pdf", "jpg": "image/jpeg"}[ext.lower()],
        })
        on_disk = folder / item["file"]
        assert on_disk.read_bytes() == upload.read_bytes()
        served = requests.get(item["value"], timeout=30)
        assert served.status_code == 200 and served.content == upload.read_bytes()
    assert raw[2]["file"].startswith("A-very-long-referral-letter-name-" + "x" * 31 + "-")
    assert field["value"] == "\n".join(item["value"] for item in raw)
    assert entry.values["4"] == field["value"]
    assert (folder / "index.html").is_file()
    assert (folder.parent / ".htaccess").is_file()


def test_a_modern_field_without_files_has_an_empty_string_value_raw(emulator_site):
    form_id = wpforms.create_form(emulator_site, "Optional files", fields=[
        wpforms.name_field(1), wpforms.file_field(4, style="modern"),
        wpforms.file_field(5, "ID card", style="classic")])
    sent = wpforms.submit(emulator_site.url, form_id, {1: {"first": "Jo", "last": "Ng"}})
    entry = wpforms.entry(emulator_site, sent.entry_id)
    assert entry is not None
    assert_exactly(entry.fields["4"], {"name": "Documents", "value": "", "value_raw": "", "id": 4,
                                       "type": "file-upload", "style": "modern", "visible": True})
    assert_exactly(entry.fields["5"], {"name": "ID card", "value": "", "file": "",
                                       "file_original": "", "ext": "", "id": 5,
                                       "type": "file-upload", "visible": True})
    assert entry.values == {"1": "Jo Ng"}


def test_a_classic_field_puts_the_file_keys_on_the_field(emulator_site, tmp_path):
    form_id = wpforms.create_form(emulator_site, "Classic", fields=[
        wpforms.name_field(1), wpforms.file_field(5, "ID card", style="classic")])
    backdate(emulator_site, form_id, "2019-12-31 23:59:59")
    card = write_png(tmp_path / "ID card.PNG", 4_000)
    sent = wpforms.submit(emulator_site.url, form_id, JANE, files={5: [card]})
    entry = wpforms.entry(emulator_site, sent.entry_id)
    assert entry is not None
    field = entry.fields["5"]
    folder = form_folder(emulator_site, form_id)
    sanitized = sanitize_file_name(emulator_site, card.name)
    assert re.fullmatch(re.escape(sanitized[:-4]) + HASHED_NAME + "png", field["file"])
    assert_exactly(field, {
        "name": "ID card", "value": f"{folder_url(emulator_site, folder)}/{field['file']}",
        "file": field["file"], "file_original": sanitized, "ext": "PNG", "id": 5,
        "type": "file-upload", "visible": True, "file_user_name": "ID card.PNG",
        "attachment_id": 0,
    })
    assert "style" not in field and "value_raw" not in field
    assert (folder / field["file"]).read_bytes() == card.read_bytes()
    assert entry.values["5"] == field["value"]


def test_media_library_files_are_attachments(emulator_site, tmp_path):
    form_id = wpforms.create_form(emulator_site, "Media", fields=[
        wpforms.name_field(1),
        wpforms.file_field(4, "Documents", style="modern", media_library=True),
        wpforms.file_field(5, "ID card", style="classic", media_library=True)])
    doc = write_pdf(tmp_path / "referral.pdf", 3_000)
    card = write_jpeg(tmp_path / "card.jpg", 2_000)
    sent = wpforms.submit(emulator_site.url, form_id, JANE, files={4: [doc], 5: [card]})
    entry = wpforms.entry(emulator_site, sent.entry_id)
    assert entry is not None
    files = [(entry.fields["4"]["value_raw"][0], doc), (entry.fields["5"], card)]
    for item, upload in files:
        attachment_id = item["attachment_id"]
        assert isinstance(attachment_id, int) and attachment_id > 0
        [meta] = rows(emulator_site, "SELECT meta_value FROM `{p}postmeta`"
                                     " WHERE post_id = %s AND meta_key = '_wp_attached_file'",
                      attachment_id)
        relative = meta["meta_value"]
        assert re.fullmatch(r"\d{4}/\d{2}/" + re.escape(item["file"]), relative), relative
        assert item["value"] == f"{emulator_site.url}/wp-content/uploads/{relative}"
        path = php_json(emulator_site,
                        "echo wp_json_encode( get_attached_file( (int) $snippet_args[0] ) );",
                        str(attachment_id))
        assert Path(path) == emulator_site.uploads_dir / relative
        assert Path(path).read_bytes() == upload.read_bytes()
        [post] = rows(emulator_site, "SELECT post_type, post_mime_type FROM `{p}posts`"
                                     " WHERE ID = %s", attachment_id)
        assert post["post_type"] == "attachment"
        assert post["post_mime_type"] == ("application/pdf" if upload is doc else "image/jpeg")
    assert not form_folder(emulator_site, form_id).exists(), "media files skip the wpforms folder"


def test_too_many_files_and_disallowed_types_are_refused(emulator_site, tmp_path):
    form_id = wpforms.create_form(emulator_site, "Limits", fields=[
        wpforms.file_field(4, style="modern", max_file_number=2),
        wpforms.file_field(5, style="classic")])
    pdfs = [write_pdf(tmp_path / f"d{i}.pdf", 2_000) for i in range(3)]
    too_many = wpforms.submit(emulator_site.url, form_id, {}, files={4: pdfs}, check=False)
    assert too_many.result == "error" and "maximum number allowed (2)" in too_many.error
    two_classic = wpforms.submit(emulator_site.url, form_id, {}, files={5: pdfs[:2]}, check=False)
    assert two_classic.result == "error" and "one file" in two_classic.error
    script = wpforms.submit(emulator_site.url, form_id, {},
                            files={4: [("shell.php", b"<?php echo 1;")]}, check=False)
    assert script.result == "error" and "File type is not allowed" in script.error
    assert entry_count(emulator_site, form_id) == 0
    assert not form_folder(emulator_site, form_id).exists()


def test_an_html_page_named_pdf_passes_unless_file_types_are_strict(emulator_site, tmp_path):
    page = write_html_as_pdf(tmp_path / "referral.pdf", 3_000)
    form_id = documents_form(emulator_site)
    sent = wpforms.submit(emulator_site.url, form_id, JANE, files={4: [page]})
    entry = wpforms.entry(emulator_site, sent.entry_id)
    assert entry is not None
    [item] = entry.fields["4"]["value_raw"]
    assert item["type"] == "application/pdf"  # WPForms names the type after the extension
    assert (form_folder(emulator_site, form_id) / item["file"]).read_bytes() == page.read_bytes()


def test_strict_file_types_refuse_an_html_page_named_pdf(emulator_site, strict_file_types,
                                                         tmp_path):
    page = write_html_as_pdf(tmp_path / "referral.pdf", 3_000)
    real = write_pdf(tmp_path / "real.pdf", 3_000)
    form_id = documents_form(emulator_site)
    refused = wpforms.submit(emulator_site.url, form_id, JANE, files={4: [page]}, check=False)
    assert refused.result == "error" and "File type is not allowed" in refused.error
    accepted = wpforms.submit(emulator_site.url, form_id, JANE, files={4: [real]})
    assert accepted.result == "complete" and accepted.entry_id > 0


def test_deleting_an_entry_deletes_its_files(emulator_site, tmp_path):
    form_id = documents_form(emulator_site)
    sent = wpforms.submit(emulator_site.url, form_id, JANE,
                          files={4: [write_pdf(tmp_path / "a.pdf", 2_000)]})
    entry = wpforms.entry(emulator_site, sent.entry_id)
    assert entry is not None
    on_disk = form_folder(emulator_site, form_id) / entry.fields["4"]["value_raw"][0]["file"]
    assert on_disk.is_file()
    wpforms.delete_entry(emulator_site, sent.entry_id)
    assert not on_disk.exists()
    assert wpforms.entry(emulator_site, sent.entry_id) is None
    assert rows(emulator_site, "SELECT id FROM `{p}wpforms_entry_fields` WHERE entry_id = %s",
                sent.entry_id) == []


# -------------------------------------------------------------------- hooks
def test_hooks_fire_in_wpforms_order_with_the_documented_arguments(emulator_site, recorder,
                                                                   tmp_path):
    form_id = documents_form(emulator_site, "Hooks")
    created = backdate(emulator_site, form_id)
    uploads = [write_pdf(tmp_path / "Referral.pdf", 3_000),
               write_jpeg(tmp_path / "scan.jpg", 2_000)]
    values = {1: {"first": "Jane", "last": "Doe"}, 2: "jane@example.com"}
    sent = wpforms.submit(emulator_site.url, form_id, values, files={4: uploads},
                          session=recorder.session)
    [stored] = wpforms.entries(emulator_site, form_id)
    assert sent.entry_id == stored.entry_id > 0

    documented = [h.replace("{id}", str(form_id)) for h in DOCUMENTED_ORDER]
    assert [h for h in recorder.hooks() if h in documented] == documented
    # Every wpforms_process* hook, the per-field ones included, in WPForms' order.
    assert recorder.hooks() == [
        "wpforms_process_before_form_data", "wpforms_process_before_filter",
        "wpforms_process_before", f"wpforms_process_before_{form_id}",
        "wpforms_process_validate_name", "wpforms_process_validate_email",
        "wpforms_process_validate_file-upload", "wpforms_process_initial_errors",
        "wpforms_process_format_name", "wpforms_process_format_email",
        "wpforms_process_format_file-upload", "wpforms_process_format_after",
        "wpforms_process_filter", "wpforms_process", f"wpforms_process_{form_id}",
        "wpforms_process_after_filter", "wpforms_process_entry_save",
        "wpforms_process_entry_saved", "wpforms_process_complete",
        f"wpforms_process_complete_{form_id}", "wpforms_process_after",
    ]
    for hook, argc in ARGC.items():
        assert recorder.only(hook.replace("{id}", str(form_id)))["argc"] == argc, hook

    entry = {"fields": {"1": {"first": "Jane", "last": "Doe"}, "2": "jane@example.com"},
             "hp": "", "id": str(form_id), "author": "1", "submit": "wpforms-submit"}
    before = recorder.only("wpforms_process_before")["args"]
    assert before[0] == entry
    assert before[1]["id"] == form_id and "created" not in before[1]

    # The capture point: (fields, entry, form_data, entry_id), entry_id as stored.
    complete = recorder.only("wpforms_process_complete")
    assert complete["types"] == ["array", "array", "array", "integer"]
    fields, hook_entry, form_data, entry_id = complete["args"]
    assert entry_id == stored.entry_id
    assert_exactly(fields, stored.fields)
    assert fields["4"]["visible"] is True
    assert hook_entry == entry
    assert form_data["id"] == form_id
    assert form_data["created"] == created == form_post(emulator_site, form_id)["post_date"]
    assert form_data["settings"]["form_title"] == "Hooks"
    assert "spam_reason" not in form_data
    assert recorder.only(f"wpforms_process_complete_{form_id}")["args"] == complete["args"]

    # Files are moved on wpforms_process_after_filter at PHP_INT_MAX: the filter gets
    # them unmoved, whatever runs after it sees their final URLs.
    after_filter_in = recorder.only("wpforms_process_after_filter")["args"][0]["4"]
    assert (after_filter_in["value"], after_filter_in["value_raw"]) == ("", "")
    assert "visible" not in after_filter_in
    just_before_max = recorder.only("probe:wpforms_process_after_filter@PHP_INT_MAX-1")
    assert just_before_max["args"][0]["4"] == after_filter_in
    save = recorder.only("wpforms_process_entry_save")
    assert save["types"] == ["array", "array", "integer", "array"]
    assert save["args"][0] == fields and save["args"][2] == form_id
    assert fields["4"]["value"].count("\n") == 1

    saved = recorder.only("wpforms_process_entry_saved")["args"]
    assert saved[3] == stored.entry_id and saved[4] == 0
    after = recorder.only("wpforms_process_after")
    assert after["types"] == ["array", "integer", "array"]
    assert after["args"][1] == stored.entry_id


def test_ajax_submissions_are_processed_like_page_posts(emulator_site, recorder):
    form_id = contact_form(emulator_site, "AJAX", ajax_submit=True)
    sent = wpforms.submit(emulator_site.url, form_id, JANE, ajax=True, session=recorder.session)
    assert sent.result == "complete" and sent.entry_id > 0
    complete = recorder.only("wpforms_process_complete")["args"]
    assert complete[3] == sent.entry_id
    assert [e.entry_id for e in wpforms.entries(emulator_site, form_id)] == [sent.entry_id]


# --------------------------------------------------------------------- spam
def test_spam_is_stored_as_spam_and_never_completes(emulator_site, recorder, tmp_path):
    form_id = documents_form(emulator_site, "Spam kept", store_spam=True)
    sent = wpforms.submit(emulator_site.url, form_id, JANE, spam=True, session=recorder.session,
                          files={4: [write_pdf(tmp_path / "a.pdf", 2_000)]})
    assert sent.result == "spam" and sent.entry_id > 0
    hooks = recorder.hooks()
    assert "wpforms_process_complete" not in hooks
    assert f"wpforms_process_complete_{form_id}" not in hooks
    assert hooks[-3:] == ["wpforms_process_entry_save", "wpforms_process_entry_saved",
                          "wpforms_process_after"]
    [entry] = wpforms.entries(emulator_site, form_id)
    assert (entry.entry_id, entry.status) == (sent.entry_id, "spam")
    assert rows(emulator_site, "SELECT type, data FROM `{p}wpforms_entry_meta` WHERE entry_id = %s",
                entry.entry_id) == [{"type": "spam", "data": "Honeypot"}]
    assert recorder.only("wpforms_process_entry_saved")["args"][2]["spam_reason"] == "Honeypot"


def test_spam_is_dropped_when_the_form_does_not_keep_it(emulator_site, recorder, tmp_path):
    form_id = documents_form(emulator_site, "Spam dropped", store_spam=False)
    sent = wpforms.submit(emulator_site.url, form_id, JANE, spam=True, session=recorder.session,
                          files={4: [write_pdf(tmp_path / "a.pdf", 2_000)]})
    assert (sent.result, sent.entry_id) == ("spam", 0)
    hooks = recorder.hooks()
    assert f"wpforms_process_{form_id}" in hooks
    for never in ("wpforms_process_after_filter", "wpforms_process_entry_save",
                  "wpforms_process_complete"):
        assert never not in hooks
    assert hooks[-1] == "wpforms_process_after"
    assert entry_count(emulator_site, form_id) == 0
    assert not form_folder(emulator_site, form_id).exists()


# ----------------------------------------------------- entry_id 0: disabled, Lite
def test_disabled_entries_complete_with_entry_id_zero_and_store_nothing(emulator_site, recorder,
                                                                       tmp_path):
    form_id = documents_form(emulator_site, "No entries", disable_entries=True)
    sent = wpforms.submit(emulator_site.url, form_id, JANE, session=recorder.session,
                          files={4: [write_pdf(tmp_path / "a.pdf", 2_000)]})
    assert (sent.result, sent.entry_id) == ("complete", 0)
    fields, _entry, form_data, entry_id = recorder.only("wpforms_process_complete")["args"]
    assert entry_id == 0 and form_data["settings"]["disable_entries"] == "1"
    assert entry_count(emulator_site, form_id) == 0
    # The hook's arguments are the only copy; the files are in place all the same.
    [item] = fields["4"]["value_raw"]
    assert (form_folder(emulator_site, form_id) / item["file"]).is_file()


def test_lite_mode_stores_nothing_and_completes_with_entry_id_zero(emulator_site, lite_mode,
                                                                  recorder):
    assert emulator_site.php("echo WPFORMS_VERSION;") == "1.8.9.6"
    form_id = contact_form(emulator_site, "Lite")
    sent = wpforms.submit(emulator_site.url, form_id, JANE, session=recorder.session)
    assert (sent.result, sent.entry_id) == ("complete", 0)
    assert recorder.only("wpforms_process_entry_save")["argc"] == 4
    fields, _entry, _form_data, entry_id = recorder.only("wpforms_process_complete")["args"]
    assert entry_id == 0
    assert fields["1"] == expect_name("Jane Doe", "Jane", "Doe")
    assert entry_count(emulator_site, form_id) == 0


def test_lite_mode_has_no_file_field(emulator_site, tmp_path):
    pro_form = documents_form(emulator_site, "Made in Pro")
    wpforms.set_mode(emulator_site, "lite")
    try:
        assert wpforms.get_mode(emulator_site) == "lite"
        with pytest.raises(wpforms.EmulatorError, match="Lite has no file-upload field"):
            documents_form(emulator_site, "Lite with files")
        refused = wpforms.submit(emulator_site.url, pro_form, JANE, check=False,
                                 files={4: [write_pdf(tmp_path / "a.pdf", 2_000)]})
        assert (refused.result, refused.entry_id) == ("error", 0)
        assert "Lite" in refused.error
    finally:
        wpforms.set_mode(emulator_site, "pro")
    assert emulator_site.php("echo WPFORMS_VERSION;") == "1.9.1.4"


# -------------------------------------------------------------- admin helpers
def test_entries_can_be_trashed_and_marked_spam_with_the_helper(emulator_site):
    form_id = contact_form(emulator_site, "Statuses")
    first = wpforms.submit(emulator_site.url, form_id, JANE).entry_id
    second = wpforms.submit(emulator_site.url, form_id, JANE).entry_id
    wpforms.set_entry_status(emulator_site, first, "trash")
    wpforms.set_entry_status(emulator_site, second, "spam")
    assert [(e.entry_id, e.status) for e in wpforms.entries(emulator_site, form_id)] == [
        (first, "trash"), (second, "spam")]
    assert rows(emulator_site, "SELECT status FROM `{p}wpforms_entries` WHERE entry_id = %s",
                first) == [{"status": "trash"}]
    wpforms.set_entry_status(emulator_site, first, "")
    assert [e.status for e in wpforms.entries(emulator_site, form_id)] == ["", "spam"]
    with pytest.raises(wpforms.EmulatorError, match="unknown entry status"):
        wpforms.set_entry_status(emulator_site, first, "deleted")  # type: ignore[arg-type]
    with pytest.raises(wpforms.EmulatorError, match="no entry"):
        wpforms.set_entry_status(emulator_site, 10**9, "trash")


def test_field_helpers_refuse_what_wpforms_cannot_store(emulator_site):
    with pytest.raises(ValueError, match="whole numbers"):
        wpforms.text_field("3_1")
    with pytest.raises(ValueError, match="style"):
        wpforms.file_field(4, style="fancy")  # type: ignore[arg-type]
    with pytest.raises(wpforms.EmulatorError, match="duplicate field id 1"):
        wpforms.create_form(emulator_site, "Twice", fields=[wpforms.name_field(1),
                                                            wpforms.email_field(1)])
