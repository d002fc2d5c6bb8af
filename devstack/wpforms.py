"""Drive the WPForms emulator (tests/wordpress/wpforms-emulator) from Python.

The emulator is a WordPress plugin that reproduces WPForms Pro 1.9.1.4 (and
Lite 1.8.9.6) where FormRelay touches it. This module makes forms and reads
entries through PHP run inside the site (``site.php(...)``), and submits forms
the way a browser does: a real multipart POST to the site's front end (or to
admin-ajax.php, like a form with AJAX submission)::

    from devstack import wpforms
    site = LocalWordPress(plugins=[wpforms.plugin()])   # or site.activate_plugin(...)
    form_id = wpforms.create_form(site, "Intake", fields=[
        wpforms.name_field(1), wpforms.email_field(2),
        wpforms.text_field(3, "Date of birth"), wpforms.file_field(4)])
    sent = wpforms.submit(site.url, form_id,
                          {1: {"first": "Jane", "last": "Doe"}, 2: "jane@example.com",
                           3: "1980-02-01"},
                          files={4: [Path("referral.pdf"), ("scan.jpg", b"...")]})
    sent.entry_id  # 0 when nothing was stored (Lite, entries disabled, spam not kept)
    wpforms.entries(site)[-1].fields["4"]["value_raw"]

Every helper that takes ``site`` needs only its ``php(code, *args) -> str``
(:class:`devstack.wordpress.LocalWordPress` has it).
"""

from __future__ import annotations

import json
import mimetypes
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, Protocol
from urllib.parse import unquote

import requests

PLUGIN_SLUG = "wpforms-emulator"
PLUGIN_DIR = Path(__file__).resolve().parents[1] / "tests" / "wordpress" / "wpforms-emulator"
PLUGIN_FILE = f"{PLUGIN_SLUG}/wpforms-emulator.php"

Mode = Literal["pro", "lite"]
EntryStatus = Literal["", "spam", "trash", "partial", "abandoned"]
FieldSpec = dict[str, str]
#: A field's submitted value: a string, or the parts of a name field (first/middle/last).
FieldValue = str | Mapping[str, str]
#: An uploaded file: a path (sent under its own name) or (file name, content).
FileInput = Path | tuple[str, bytes]

_MARK = "WPFORMS_EMULATOR_JSON:"
_HEADER_RESULT = "X-WPForms-Emulator-Result"
_HEADER_ENTRY = "X-WPForms-Emulator-Entry"
_HEADER_ERROR = "X-WPForms-Emulator-Error"


class Site(Protocol):
    """What the helpers need of a site: PHP run inside it (LocalWordPress.php)."""

    def php(self, code: str, *args: str) -> str: ...


class EmulatorError(RuntimeError):
    """The emulator refused a request (bad form, unknown entry, Lite mode, ...)."""


class SubmissionError(EmulatorError):
    """WPForms did not accept a submission (validation error, invalid form, ...)."""

    def __init__(self, message: str, submitted: Submitted) -> None:
        super().__init__(message)
        self.submitted = submitted


@dataclass(frozen=True)
class Submitted:
    """The outcome of one POST.

    ``result`` is ``complete`` (wpforms_process_complete fired), ``spam`` (the
    honeypot caught it; stored with status spam when the form keeps spam, else
    dropped) or ``error`` (not submitted: ``error`` says why). ``entry_id`` is
    the stored entry, 0 when none was stored.
    """

    entry_id: int
    status_code: int
    elapsed_s: float
    result: str
    error: str = ""


@dataclass(frozen=True)
class Entry:
    """A row of {prefix}wpforms_entries, its fields decoded, its entry_fields rows by field id."""

    entry_id: int
    form_id: int
    status: str
    fields: Any  # the decoded `fields` JSON: an object, or a list for forms numbered from 0
    fields_json: str
    values: dict[str, str]  # entry_fields: field_id -> value (non-empty values only)
    date: str
    date_modified: str
    user_id: int
    post_id: int
    type: str
    viewed: int
    starred: int
    meta: str
    ip_address: str
    user_agent: str
    user_uuid: str


def plugin() -> tuple[str, Path]:
    """The plugin spec for ``LocalWordPress(plugins=[...])`` or ``activate_plugin(*...)``."""
    return PLUGIN_SLUG, PLUGIN_DIR


# --------------------------------------------------------------------- fields
def name_field(field_id: int | str, label: str = "Name", *, format: str = "first-last",
               required: bool = False) -> FieldSpec:
    """A name field; ``format`` is ``simple``, ``first-last`` or ``first-middle-last``."""
    return _field(field_id, "name", label, required, format=format)


def email_field(field_id: int | str, label: str = "Email", *, required: bool = False) -> FieldSpec:
    return _field(field_id, "email", label, required)


def text_field(field_id: int | str, label: str = "Text", *, required: bool = False) -> FieldSpec:
    return _field(field_id, "text", label, required)


def textarea_field(field_id: int | str, label: str = "Message", *,
                   required: bool = False) -> FieldSpec:
    return _field(field_id, "textarea", label, required)


def file_field(field_id: int | str, label: str = "Documents", *,
               style: Literal["modern", "classic"] = "modern", media_library: bool = False,
               max_file_number: int = 5, extensions: str = "", max_size_mb: float | None = None,
               required: bool = False) -> FieldSpec:
    """A file-upload field (Pro only).

    ``modern`` takes up to ``max_file_number`` files (WPForms' own default is 1;
    5 here so a demo submission can carry several documents); ``classic`` takes
    one. ``media_library`` stores the files as attachments. ``extensions`` is
    WPForms' comma-separated allow-list ('' = whatever WordPress allows).
    """
    if style not in ("modern", "classic"):
        raise ValueError(f"style must be 'modern' or 'classic', not {style!r}")
    spec = _field(field_id, "file-upload", label, required, style=style,
                  max_file_number=str(max_file_number),
                  media_library="1" if media_library else "0", extensions=extensions)
    if max_size_mb is not None:
        spec["max_size"] = str(max_size_mb)
    return spec


def _field(field_id: int | str, type_: str, label: str, required: bool, **extra: str) -> FieldSpec:
    if not str(field_id).isdigit():
        raise ValueError(f"field ids are whole numbers, not {field_id!r}")
    spec = {"id": str(field_id), "type": type_, "label": label, "required": "1" if required else ""}
    spec.update(extra)
    return spec


# ---------------------------------------------------------------- site (PHP)
def _call(site: Site, function: str, *args: Any) -> Any:
    """Call one of the emulator's PHP helpers with JSON arguments; WP_Error raises."""
    code = f"""
    if ( ! function_exists( 'wpforms_emulator_mode' ) ) {{
        $out = array( 'error' => 'the WPForms emulator is not active' );
        echo "\\n{_MARK}" . json_encode( $out ) . "\\n";
        return;
    }}
    $args   = json_decode( $snippet_args[0], true );
    $result = {function}( ...$args );
    $out    = is_wp_error( $result )
        ? array( 'error' => $result->get_error_message() )
        : array( 'result' => $result );
    echo "\\n{_MARK}" . wp_json_encode( $out ) . "\\n";
    """
    out = site.php(code, json.dumps(list(args)))
    lines = [line for line in out.splitlines() if line.startswith(_MARK)]
    if not lines:
        raise EmulatorError(f"{function}: no answer from PHP; output: {out[-1000:]!r}")
    answer = json.loads(lines[-1][len(_MARK):])
    if "error" in answer:
        raise EmulatorError(f"{function}: {answer['error']}")
    return answer["result"]


def create_form(site: Site, title: str, fields: Sequence[Mapping[str, str]] = (), *,
                disable_entries: bool = False, store_spam: bool = True,
                status: Literal["publish", "draft"] = "publish",
                ajax_submit: bool = False) -> int:
    """Create a form (a ``wpforms`` post with WPForms' JSON) and return its id."""
    args = {"title": title, "fields": [dict(f) for f in fields],
            "disable_entries": disable_entries, "store_spam": store_spam,
            "ajax_submit": ajax_submit, "status": status}
    return int(_call(site, "wpforms_emulator_create_form", args))


def set_mode(site: Site, mode: Mode) -> None:
    """Emulate WPForms Pro or Lite (Lite: no entries, entry_id 0, no file field)."""
    if mode not in ("pro", "lite"):
        raise ValueError(f"mode must be 'pro' or 'lite', not {mode!r}")
    _call(site, "wpforms_emulator_set_mode", mode)


def get_mode(site: Site) -> Mode:
    mode = _call(site, "wpforms_emulator_mode")
    return "lite" if mode == "lite" else "pro"


def set_strict_file_types(site: Site, strict: bool) -> None:
    """Strict: uploads must pass WordPress's content check (an HTML page named .pdf
    is refused, as real WPForms does). Off by default, like a site with a
    mime-relaxing plugin: then only the extension counts."""
    _call(site, "wpforms_emulator_set_strict_file_types", strict)


def set_entry_status(site: Site, entry_id: int, status: EntryStatus) -> None:
    """Set a stored entry's status, like wp-admin's Trash / Mark as Spam."""
    _call(site, "wpforms_emulator_set_entry_status", int(entry_id), status)


def delete_entry(site: Site, entry_id: int) -> None:
    """Delete a stored entry with its field rows, meta and files."""
    _call(site, "wpforms_emulator_delete_entry", int(entry_id))


def entries(site: Site, form_id: int = 0) -> list[Entry]:
    """Stored entries, oldest first: of ``form_id``, or of every form."""
    return [_entry(row) for row in _call(site, "wpforms_emulator_get_entries", int(form_id))]


def entry(site: Site, entry_id: int) -> Entry | None:
    row = _call(site, "wpforms_emulator_get_entry", int(entry_id))
    return _entry(row) if row else None


def _entry(row: Mapping[str, Any]) -> Entry:
    return Entry(
        entry_id=int(row["entry_id"]),
        form_id=int(row["form_id"]),
        status=str(row["status"]),
        fields=json.loads(row["fields"]) if row["fields"] else None,
        fields_json=str(row["fields"]),
        values={str(r["field_id"]): str(r["value"]) for r in row["entry_fields"]},
        date=str(row["date"]),
        date_modified=str(row["date_modified"]),
        user_id=int(row["user_id"]),
        post_id=int(row["post_id"]),
        type=str(row["type"]),
        viewed=int(row["viewed"] or 0),
        starred=int(row["starred"] or 0),
        meta=str(row["meta"]),
        ip_address=str(row["ip_address"]),
        user_agent=str(row["user_agent"]),
        user_uuid=str(row["user_uuid"]),
    )


# ---------------------------------------------------------------- submitting
def submit(site_url: str, form_id: int, values: Mapping[int | str, FieldValue],
           files: Mapping[int | str, Sequence[FileInput]] | None = None, *, spam: bool = False,
           session: requests.Session | None = None, timeout: float = 30, ajax: bool = False,
           check: bool = True) -> Submitted:
    """POST a form submission to WordPress, multipart, as a browser does.

    ``values``: field id -> a string, or a name's parts (``{"first": ..., "last": ...}``).
    ``files``: field id -> files; one file goes as ``wpforms_<form>_<field>``,
    several as ``wpforms_<form>_<field>[]`` (the modern style).
    ``spam`` fills WPForms' honeypot (``wpforms[hp]``). ``ajax`` posts to
    admin-ajax.php (action ``wpforms_submit``) instead of the front page.
    ``elapsed_s`` is the request's wall time, upload included. With ``check``,
    a submission WPForms refused raises :class:`SubmissionError` (spam does not).
    """
    parts: list[tuple[str, tuple[str | None, Any] | tuple[str, Any, str]]] = []

    def field(name: str, value: str) -> None:
        parts.append((name, (None, value)))

    if ajax:
        field("action", "wpforms_submit")
    for fid, value in values.items():
        if isinstance(value, Mapping):
            for key, part in value.items():
                field(f"wpforms[fields][{fid}][{key}]", str(part))
        else:
            field(f"wpforms[fields][{fid}]", str(value))
    field("wpforms[hp]", "https://spam.example/buy-now" if spam else "")
    field("wpforms[id]", str(int(form_id)))
    field("wpforms[author]", "1")
    field("wpforms[submit]", "wpforms-submit")

    url = site_url.rstrip("/") + ("/wp-admin/admin-ajax.php" if ajax else "/")
    own_session = session is None
    http = session or requests.Session()
    try:
        with ExitStack() as stack:
            for fid, items in (files or {}).items():
                name = f"wpforms_{int(form_id)}_{fid}" + ("[]" if len(items) > 1 else "")
                for item in items:
                    filename, content = _file_part(item, stack)
                    mime = mimetypes.guess_type(filename)[0] or "application/octet-stream"
                    parts.append((name, (filename, content, mime)))
            started = time.perf_counter()
            resp = http.post(url, files=parts, timeout=timeout, allow_redirects=False)
            elapsed = time.perf_counter() - started
    finally:
        if own_session:
            http.close()

    result = resp.headers.get(_HEADER_RESULT)
    if resp.status_code != 200 or result is None:
        raise EmulatorError(
            f"POST {url} answered HTTP {resp.status_code} without the emulator's result header"
            f" (is the WPForms emulator active, form {form_id} real?): {resp.text[:500]!r}")
    submitted = Submitted(
        entry_id=int(resp.headers.get(_HEADER_ENTRY, "0")),
        status_code=resp.status_code,
        elapsed_s=elapsed,
        result=result,
        error=unquote(resp.headers.get(_HEADER_ERROR, "")),
    )
    if check and result == "error":
        raise SubmissionError(f"form {form_id} was not submitted: {submitted.error}", submitted)
    return submitted


def _file_part(item: FileInput, stack: ExitStack) -> tuple[str, bytes | IO[bytes]]:
    if isinstance(item, tuple):
        filename, data = item
        return filename, data
    path = Path(item)
    return path.name, stack.enter_context(path.open("rb"))
