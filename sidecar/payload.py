"""The record sent to the partner: a form's Jinja2 template, rendered and checked.

Templates live in `<templates_dir>/payloads/`. A form's template is the one its
snapshot names (the bridge's per-form setting when it captured the entry), else
the form's template in the plugin's published delivery settings (jobs without a
snapshot: backfill, reconciliation), else FORMRELAY_FORM_TEMPLATES when the
plugin has published none (a site without it), else `default.json.j2`.
The sandbox keeps a template from reaching Python internals; StrictUndefined
turns a misspelt name into an error, not a hole.
HTML autoescaping is off because this is JSON: values go through `tojson`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from sidecar.delivery_settings import DeliverySettings
from sidecar.errors import FormRelayError
from sidecar.redact import Masker
from sidecar.submission import FILE_FIELD, Submission

DEFAULT_TEMPLATE = "default.json.j2"
TEMPLATE_NAME = re.compile(r"^[A-Za-z0-9_.-]+\.j2$")


class PayloadError(FormRelayError):
    """The form's template cannot make a valid record; the job fails with this reason."""


class PayloadRenderer:
    def __init__(self, templates_dir: Path, form_templates: dict[int, str] | None = None) -> None:
        self.form_templates = form_templates or {}
        self.env = ImmutableSandboxedEnvironment(
            loader=jinja2.FileSystemLoader(templates_dir / "payloads"),
            undefined=jinja2.StrictUndefined, autoescape=False)  # JSON: see above

    def template_for(self, submission: Submission,
                     settings: DeliverySettings | None = None) -> str:
        if submission.template:
            return submission.template
        if settings is not None and settings.source == "plugin":  # the plugin decides
            return settings.template(submission.form_id) or DEFAULT_TEMPLATE
        return self.form_templates.get(submission.form_id) or DEFAULT_TEMPLATE

    def render(self, submission: Submission, job: dict[str, Any],
               settings: DeliverySettings | None = None) -> dict[str, Any]:
        """The record as a JSON object, or PayloadError naming the template and the problem."""
        name = self.template_for(submission, settings)
        if not TEMPLATE_NAME.match(name):
            raise PayloadError(f"payload template name {name!r} is not allowed")
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
            payload = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PayloadError(f"payload template {name} made invalid JSON"
                               f" (line {exc.lineno} column {exc.colno}: {exc.msg})") from None
        if not isinstance(payload, dict):
            raise PayloadError(f"payload template {name} must make a JSON object")
        return payload
