"""The record sent to the partner: a form's Jinja2 template, rendered and checked.

Templates live in `<templates_dir>/payloads/`. A form's template is the one its
snapshot names (the bridge's per-form setting when it captured the entry), else
the form's template in the plugin's published delivery settings (jobs without a
snapshot: backfill, reconciliation), else FORMRELAY_FORM_TEMPLATES when the
plugin has published none (a site without it), else `default.json.j2`.
The sandbox keeps a template from reaching Python internals; StrictUndefined
turns a misspelt name into an error, not a hole.

Every `{{ ... }}` writes JSON: a `finalize` JSON-encodes each output, so a
template writes `"name": {{ values.Name }}` (no quotes) and a value can never
close a string and add keys of its own. Why this and not "refuse output that
did not go through `tojson`": a forgotten filter then still makes safe JSON
instead of a refused job or, worse, a hole, and the rule needs no parsing of
template source. `tojson` still works (its output is marked as JSON already and
left alone), so templates written for `| tojson` render the same record. A
quoted expression (`"{{ values.Name }}"`) makes invalid JSON and fails the job
with a reason rather than sending anything. Literal template text is not
encoded, so punctuation between items is written as text:
`{% if not loop.last %},{% endif %}`. HTML autoescaping is off: this is JSON.

The rendered text is parsed with duplicate keys refused (a JSON parser would
keep the last one silently): the reason names the key when it is template
text, never a submitted value.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import htmlsafe_json_dumps

from sidecar.delivery_settings import DeliverySettings
from sidecar.errors import FormRelayError
from sidecar.redact import Masker
from sidecar.submission import FILE_FIELD, Submission

DEFAULT_TEMPLATE = "default.json.j2"
TEMPLATE_NAME = re.compile(r"[A-Za-z0-9_.-]+\.j2")  # a plain file name; always fullmatch


def is_template_name(name: str) -> bool:
    """A plain file name in payloads/ (no path, no newline): the one rule for every source."""
    return TEMPLATE_NAME.fullmatch(name) is not None


class _Json(str):
    """Text that is JSON already (the output of `tojson`): `finalize` leaves it alone."""


def _tojson(value: Any, indent: int | None = None) -> _Json:
    return _Json(htmlsafe_json_dumps(value, dumps=json.dumps, indent=indent))


def _finalize(value: Any) -> str:
    if isinstance(value, jinja2.Undefined):
        value = str(value)  # StrictUndefined raises here: "'x' is undefined", as before
    return value if isinstance(value, _Json) else json.dumps(value)


class DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise DuplicateKey(key)
        seen[key] = value
    return seen


class PayloadError(FormRelayError):
    """The form's template cannot make a valid record; the job fails with this reason."""


class PayloadRenderer:
    def __init__(self, templates_dir: Path, form_templates: dict[int, str] | None = None) -> None:
        self.form_templates = form_templates or {}
        self.env = ImmutableSandboxedEnvironment(
            loader=jinja2.FileSystemLoader(templates_dir / "payloads"),
            undefined=jinja2.StrictUndefined, autoescape=False,  # JSON: see above
            finalize=_finalize)
        self.env.filters["tojson"] = _tojson

    def template_for(self, submission: Submission, settings: DeliverySettings | None = None,
                     default: str = DEFAULT_TEMPLATE) -> str:
        """The form's template; else `default`, the partner's profile's own."""
        if submission.template:
            return submission.template
        if settings is not None and settings.source == "plugin":  # the plugin decides
            return settings.template(submission.form_id) or default
        return self.form_templates.get(submission.form_id) or default

    def render(self, submission: Submission, job: dict[str, Any],
               settings: DeliverySettings | None = None,
               default: str = DEFAULT_TEMPLATE) -> dict[str, Any]:
        """The record as a JSON object, or PayloadError naming the template and the problem."""
        name = self.template_for(submission, settings, default)
        if not is_template_name(name):
            raise PayloadError(f"payload template name {name!r} is not allowed"
                               " (a file name in payloads/ ending .j2)")
        context = {
            "job": job,
            "fields": [dict(f) for f in submission.fields],
            "values": {str(f.get("name") or f"field {f.get('id')}"): f.get("value", "")
                       for f in submission.fields if f.get("type") != FILE_FIELD},
            "documents": [{"field_id": d.field_id, "name": d.name} for d in submission.files],
        }
        try:
            text = self.env.get_template(name).render(context)
        except jinja2.TemplateNotFound:
            raise PayloadError(f"payload template {name} does not exist") from None
        except jinja2.TemplateError as exc:  # its message may quote a value: mask them all
            line = getattr(exc, "lineno", None)
            where = f" (line {line})" if line else ""
            masker = Masker([*submission.values(), *(f.name for f in submission.files)])
            raise PayloadError(f"payload template {name}{where}: "
                               f"{masker.mask(str(exc.message or ''))}") from None
        except Exception as exc:  # a filter failing on a value: say what, never the value
            raise PayloadError(f"payload template {name} failed: {type(exc).__name__}") from None
        try:
            payload = json.loads(text, object_pairs_hook=_no_duplicates)
        except json.JSONDecodeError as exc:
            raise PayloadError(f"payload template {name} made invalid JSON"
                               f" (line {exc.lineno} column {exc.colno}: {exc.msg})") from None
        except DuplicateKey as exc:
            raise PayloadError(f"payload template {name} made a JSON object with the key"
                               f" {self._key_shown(name, exc.key)} twice") from None
        if not isinstance(payload, dict):
            raise PayloadError(f"payload template {name} must make a JSON object")
        return payload

    def _key_shown(self, name: str, key: str) -> str:
        """The key as the template writes it; a key made from a value is not shown."""
        source = self.env.loader.get_source(self.env, name)[0] if self.env.loader else ""
        if json.dumps(key) in source or json.dumps(key, ensure_ascii=False) in source:
            return json.dumps(key, ensure_ascii=False)
        return "(made from a submitted value, not shown)"
