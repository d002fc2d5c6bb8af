"""A submission as the sidecar delivers it, read from the job's snapshot or from WPForms.

The bridge's snapshot (JSON in the job row):
    {"version": 1, "form_id": 12, "entry_id": 34, "template": null,
     "fields": { ...WPForms' $fields exactly as the hook gave them... },
     "files": [{"field_id": "4", "position": 0, "name": "Referral.pdf",
                "path": "/abs/wp-content/uploads/wpforms/12-x/Referral-<hex>.pdf",
                "relative": "wpforms/12-x/Referral-<hex>.pdf", "url": "https://...",
                "attachment_id": 0, "size": 1234}]}
WPForms' own `fields` column holds the same field dicts, without "files":
there the files come from each file-upload field (modern style: `value_raw`
is a list, or "" when empty; classic style: the file keys on the field).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from sidecar.partner_profile import Answer

FILE_FIELD = "file-upload"


@dataclass(frozen=True)
class FileRef:
    field_id: str
    position: int
    name: str  # the person's own file name
    path: str = ""  # absolute, as WordPress saw it
    relative: str = ""  # relative to the uploads base directory
    url: str = ""
    attachment_id: int = 0
    size: int | None = None


@dataclass(frozen=True)
class Submission:
    form_id: int
    entry_id: int
    fields: tuple[dict[str, Any], ...]
    files: tuple[FileRef, ...]
    source: str  # "snapshot" or "wpforms"
    template: str | None = None

    def values(self) -> list[str]:
        """Every submitted value as text, to mask them wherever text leaves the job."""
        found: list[str] = []
        for field in self.fields:
            for key, value in field.items():
                if key not in ("id", "type", "name", "style", "visible") and isinstance(
                        value, str | int | float) and not isinstance(value, bool):
                    found.extend(str(value).splitlines())
        return found

    def label(self, field_id: str) -> str:
        """A field's label (the form's words), "" when the field is not found."""
        found = next((f for f in self.fields if str(f.get("id", "")) == field_id), None)
        return str(found.get("name") or "") if found else ""

    def answers(self) -> tuple[Answer, ...]:
        """Each field with a value, in form order, as a question and its answer; file
        fields are left out (their files are the documents)."""
        return tuple(
            Answer(str(f.get("id", "")), str(f.get("name") or ""), str(f.get("type") or ""),
                   str(f["value"]))
            for f in self.fields
            if not _is_file_field(f) and isinstance(f.get("value"), str | int | float)
            and not isinstance(f.get("value"), bool) and str(f["value"]).strip())


def decode_fields(raw: Any) -> tuple[dict[str, Any], ...]:
    """WPForms fields keyed by id, stored as a JSON object or (old forms) a list."""
    items = raw.values() if isinstance(raw, dict) else raw if isinstance(raw, list) else []
    return tuple(f for f in items if isinstance(f, dict))


def _is_file_field(field: dict[str, Any]) -> bool:
    return field.get("type") == FILE_FIELD


def _has_upload(field: dict[str, Any]) -> bool:
    return bool(field.get("value")) or bool(field.get("value_raw"))


def files_of_field(field: dict[str, Any]) -> list[FileRef]:
    """The files WPForms recorded on one file-upload field (modern list or classic keys)."""
    field_id = str(field.get("id", ""))
    raw = field.get("value_raw")
    entries = raw if isinstance(raw, list) else [field] if field.get("file") else []
    refs = []
    for position, item in enumerate(e for e in entries if isinstance(e, dict)):
        name = item.get("file_user_name") or item.get("file_original") or item.get("name") or ""
        refs.append(FileRef(field_id, position, str(name), url=str(item.get("value", "")),
                            attachment_id=int(item.get("attachment_id") or 0)))
    return refs


def from_snapshot(text: str | None) -> tuple[Submission | None, str]:
    """The submission in a job's snapshot, or (None, why it cannot be used)."""
    if not text:
        return None, "snapshot is empty"
    try:
        data = json.loads(text)
    except ValueError:
        return None, "snapshot is not valid JSON"
    if not isinstance(data, dict):
        return None, "snapshot is not a JSON object"
    fields = decode_fields(data.get("fields"))
    if not fields:
        return None, "snapshot has no fields"
    files = []
    for item in data.get("files") or []:
        # Every listed file becomes a document, even one whose place the plugin could not
        # tell: locate() still tries its attachment and URL, and a file found nowhere fails
        # as its own document with the reason, never vanishing from the job.
        if isinstance(item, dict):
            files.append(FileRef(
                str(item.get("field_id", "")), int(item.get("position", 0)),
                str(item.get("name", "")), str(item.get("path", "")),
                str(item.get("relative", "")), str(item.get("url", "")),
                int(item.get("attachment_id") or 0),
                int(item["size"]) if isinstance(item.get("size"), int) else None))
    with_files = {f.field_id for f in files}
    for field in fields:
        if _is_file_field(field) and _has_upload(field) and str(field.get("id")) not in with_files:
            return None, f"snapshot lists no file for file field {field.get('id')}"
    template = data.get("template") if isinstance(data.get("template"), str) else None
    return Submission(int(data.get("form_id") or 0), int(data.get("entry_id") or 0), fields,
                      tuple(files), "snapshot", template), ""


def from_wpforms(fields_json: str, form_id: int, entry_id: int) -> Submission:
    """A submission from wpforms_entries.fields; ValueError when it holds no fields."""
    fields = decode_fields(json.loads(fields_json))
    if not fields:
        raise ValueError("the WPForms entry has no fields")
    files = tuple(ref for f in fields if _is_file_field(f) for ref in files_of_field(f))
    return Submission(form_id, entry_id, fields, files, "wpforms")


def locate(ref: FileRef, uploads_dir: Path,
           attached_file: Callable[[int], str | None]) -> str:
    """Where the sidecar finds a file: a path to check, or "" when nothing says where.

    Snapshot files name their place relative to the uploads base (the sidecar
    may mount uploads elsewhere than WordPress) or absolutely. Files read from
    WPForms' tables are found by their media-library attachment, else by the
    part of their URL after /uploads/. The file checks refuse any result that
    resolves outside `uploads_dir`.
    """
    if ref.relative:
        return str(uploads_dir / ref.relative)
    if ref.path:
        return ref.path if Path(ref.path).is_relative_to(uploads_dir) else _after_uploads(
            ref.path, uploads_dir)
    if ref.attachment_id > 0:
        relative = attached_file(ref.attachment_id)
        if relative:
            return str(uploads_dir / relative)
    return _after_uploads(ref.url, uploads_dir)


def _after_uploads(location: str, uploads_dir: Path) -> str:
    _, found, rest = location.partition("/uploads/")
    return str(uploads_dir / unquote(rest.split("?")[0])) if found and rest else ""
