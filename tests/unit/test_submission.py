"""Snapshots and WPForms' field shapes: completeness, files, and where files are found."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sidecar.partner_profile import Answer
from sidecar.submission import files_of_field, from_snapshot, from_wpforms, locate

pytestmark = pytest.mark.unit

MODERN = {"name": "Documents", "id": 4, "type": "file-upload", "style": "modern",
          "visible": True, "value": "https://s/wp-content/uploads/wpforms/12-x/A-1.pdf",
          "value_raw": [{"name": "A.pdf", "value":
                         "https://s/wp-content/uploads/wpforms/12-x/A-1.pdf", "file": "A-1.pdf",
                         "file_original": "A.pdf", "file_user_name": "A.pdf", "ext": "pdf",
                         "attachment_id": 0, "id": 4, "type": "application/pdf"}]}
CLASSIC = {"name": "ID card", "id": 5, "type": "file-upload", "visible": True,
           "value": "https://s/wp-content/uploads/wpforms/12-x/card%20front-2.png",
           "file": "card front-2.png", "file_original": "card front.png",
           "file_user_name": "card front.png", "ext": "png", "attachment_id": 77}
NAME = {"name": "Name", "value": "Jane Doe", "id": 1, "type": "name"}


def test_modern_and_classic_upload_fields():
    (modern,) = files_of_field(MODERN)
    assert (modern.field_id, modern.position, modern.name, modern.attachment_id) == (
        "4", 0, "A.pdf", 0)
    (classic,) = files_of_field(CLASSIC)
    assert (classic.field_id, classic.name, classic.attachment_id) == ("5", "card front.png", 77)
    empty = dict(MODERN, value="", value_raw="")  # no upload: value_raw is "" not []
    assert files_of_field(empty) == []


def test_fields_stored_as_an_object_or_a_list():
    as_object = from_wpforms(json.dumps({"1": NAME, "4": MODERN}), 12, 34)
    as_list = from_wpforms(json.dumps([NAME, MODERN]), 12, 34)
    assert as_object.fields == as_list.fields and len(as_list.files) == 1
    with pytest.raises(ValueError):
        from_wpforms("[]", 12, 34)


@pytest.mark.parametrize("text,why", [
    (None, "snapshot is empty"), ("{oops", "not valid JSON"), ("[1]", "not a JSON object"),
    ('{"fields": {}}', "has no fields"),
    (json.dumps({"fields": {"1": NAME, "4": MODERN}, "files": []}),
     "lists no file for file field 4"),
])
def test_incomplete_snapshots_say_why(text, why):
    submission, reason = from_snapshot(text)
    assert submission is None and why in reason


def test_a_complete_snapshot():
    text = json.dumps({"form_id": 12, "entry_id": 34, "template": "intake.json.j2",
                       "fields": {"1": NAME, "4": MODERN},
                       "files": [{"field_id": "4", "position": 0, "name": "A.pdf",
                                  "path": "/var/www/html/wp-content/uploads/wpforms/12-x/A-1.pdf",
                                  "relative": "wpforms/12-x/A-1.pdf", "size": 2048}]})
    submission, reason = from_snapshot(text)
    assert reason == "" and submission is not None
    assert (submission.form_id, submission.template, submission.source) == (
        12, "intake.json.j2", "snapshot")
    assert submission.files[0].size == 2048
    assert "Jane Doe" in submission.values()


def test_answers_are_the_fields_with_a_value_in_form_order_without_file_fields():
    fields = {"2": {"name": "Age", "value": 42, "id": 2, "type": "number"}, "1": NAME,
              "4": MODERN, "3": {"name": "Notes", "value": "  ", "id": 3, "type": "textarea"},
              "6": {"name": "Consent", "value": True, "id": 6, "type": "checkbox"}}
    submission = from_wpforms(json.dumps(fields), 12, 34)
    assert submission.answers() == (Answer("2", "Age", "number", "42"),
                                    Answer("1", "Name", "name", "Jane Doe"))


def test_locate_prefers_the_relative_path_then_attachment_then_url(tmp_path):
    uploads = tmp_path / "uploads"
    snap_file = from_snapshot(json.dumps({"fields": {"4": MODERN}, "files": [
        {"field_id": "4", "name": "A.pdf", "path": "/elsewhere/uploads/wpforms/12-x/A-1.pdf",
         "relative": "wpforms/12-x/A-1.pdf"}]}))[0].files[0]
    assert locate(snap_file, uploads, lambda _: None) == str(uploads / "wpforms/12-x/A-1.pdf")
    (classic,) = files_of_field(CLASSIC)
    assert locate(classic, uploads, {77: "2026/11/card.png"}.get) == str(
        uploads / "2026/11/card.png")
    assert locate(classic, uploads, lambda _: None) == str(
        uploads / "wpforms/12-x/card front-2.png")  # from the URL, decoded
    (modern,) = files_of_field(MODERN)
    assert locate(modern, uploads, lambda _: None) == str(uploads / "wpforms/12-x/A-1.pdf")
    nowhere = files_of_field(dict(CLASSIC, value="https://s/elsewhere.png", attachment_id=0))[0]
    assert locate(nowhere, uploads, lambda _: None) == ""


def test_an_absolute_snapshot_path_outside_uploads_is_mapped_by_its_uploads_part(tmp_path):
    uploads = tmp_path / "uploads"
    ref = from_snapshot(json.dumps({"fields": {"4": MODERN}, "files": [
        {"field_id": "4", "name": "A.pdf",
         "path": "/var/www/html/wp-content/uploads/wpforms/12-x/A-1.pdf"}]}))[0].files[0]
    assert Path(locate(ref, uploads, lambda _: None)) == uploads / "wpforms/12-x/A-1.pdf"


def test_a_listed_file_without_a_path_is_kept_and_located_by_its_url(tmp_path):
    """One of a field's two files with no path recorded: still two files, never one."""
    uploads = tmp_path / "uploads"
    submission, reason = from_snapshot(json.dumps({"fields": {"4": MODERN}, "files": [
        {"field_id": "4", "position": 0, "name": "A.pdf", "relative": "wpforms/12-x/A-1.pdf"},
        {"field_id": "4", "position": 1, "name": "B.pdf", "path": "", "relative": "",
         "url": "https://site.test/wp-content/uploads/wpforms/12-x/B-1.pdf"},
        {"field_id": "4", "position": 2, "name": "C.pdf", "path": "", "relative": ""}]}))
    assert reason == "" and submission is not None
    assert [f.position for f in submission.files] == [0, 1, 2]
    assert locate(submission.files[1], uploads, lambda _: None) == str(
        uploads / "wpforms/12-x/B-1.pdf")
    assert locate(submission.files[2], uploads, lambda _: None) == ""
