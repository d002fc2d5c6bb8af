"""What is delivered: the plugin's delivery settings, as it publishes them.

FormRelay Bridge writes its settings (which forms, each form's template,
priority and partner, whether the plugin is active and since when) as versioned JSON into
`{prefix}formrelay_meta`, row `delivery_settings`, on every change. Capture,
reconciliation, `formrelay backfill`, rendering and the dashboard all read
this one definition. Three states:

- `plugin`: the row is there and readable (active or deactivated);
- `unknown`: no readable row, but WordPress has the plugin's option: the plugin
  has not published yet, so no job is created until it does;
- `fallback`: no row and no option: a site without the plugin, every form is
  delivered, templates from FORMRELAY_FORM_TEMPLATES.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from sidecar.partner_profile import PARTNER_NAME

META_NAME = "delivery_settings"
VERSION = 1
DEFAULT_PRIORITY = 10
UNPUBLISHED = ("FormRelay Bridge has not published its delivery settings yet: open wp-admin"
               " once (or save Settings > FormRelay) so that it does; until then no job is"
               " created for stored entries")

Source = Literal["plugin", "unknown", "fallback"]


@dataclass(frozen=True)
class FormSetting:
    template: str | None = None
    priority: int = DEFAULT_PRIORITY
    partner: str | None = None  # a partner's name; None: the default partner


@dataclass(frozen=True)
class DeliverySettings:
    source: Source
    active: bool = True
    active_since: datetime | None = None
    forms: tuple[int, ...] | None = None  # None: every form
    form_settings: Mapping[int, FormSetting] = field(default_factory=dict)
    problem: str = ""  # why the state is unknown
    # When each form's delivery began: form id, or "*" for forms delivered as "all forms".
    selected_since: Mapping[str, datetime] = field(default_factory=dict)

    @property
    def creates_jobs(self) -> bool:
        """Whether reconciliation and backfill may create jobs at all."""
        return self.source != "unknown" and self.active

    def refusal(self) -> str:
        """Why no job is created ('' when jobs are created)."""
        if self.source == "unknown":
            return self.problem
        return "" if self.active else "the FormRelay Bridge plugin is deactivated"

    def selected(self, form_id: int) -> tuple[bool, str]:
        """Whether the form's entries are delivered, and why (or why not)."""
        if not self.creates_jobs:
            return False, self.refusal()
        if self.forms is None:
            return True, "every form is delivered" + (
                " (no FormRelay Bridge plugin: the sidecar's fallback)"
                if self.source == "fallback" else "")
        if form_id in self.forms:
            return True, f"form {form_id} is among the delivered forms"
        return False, (f"form {form_id} is not among the delivered forms ("
                       + (", ".join(map(str, self.forms)) or "none") + ")")

    def since(self, form_id: int) -> datetime | None:
        """Since when the form's entries are delivered: the later of the plugin's
        activation and the form's selection (None: no limit, e.g. the fallback)."""
        chosen = self.selected_since.get(str(form_id))
        if chosen is None and self.forms is None:
            chosen = self.selected_since.get("*")
        found = [t for t in (self.active_since, chosen) if t is not None]
        return max(found) if found else None

    def template(self, form_id: int) -> str | None:
        one = self.form_settings.get(form_id)
        return one.template if one else None

    def priority(self, form_id: int) -> int:
        one = self.form_settings.get(form_id)
        return one.priority if one else DEFAULT_PRIORITY

    def partner(self, form_id: int) -> str:
        """The partner the form's new jobs go to, as the jobs table holds it ('': the default)."""
        one = self.form_settings.get(form_id)
        return (one.partner or "") if one else ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for the dashboard's stats and `formrelay status`."""
        return {
            "source": self.source, "active": self.active, "creates_jobs": self.creates_jobs,
            "active_since": self.active_since.isoformat(timespec="milliseconds")
            if self.active_since else None,
            "forms": "all" if self.forms is None else list(self.forms),
            "form_settings": {str(k): {"template": v.template, "priority": v.priority,
                                       "partner": v.partner}
                              for k, v in sorted(self.form_settings.items())},
            "problem": self.refusal(),
        }


def describe(rules: DeliverySettings, waiting: int) -> list[str]:
    """Plain lines saying what is delivered (`formrelay status`)."""
    if not rules.creates_jobs:
        return [f"delivered forms: NONE: {rules.refusal()}: no new jobs are created;"
                f" {waiting} queued jobs finish"]
    forms = ("all forms" if rules.forms is None
             else "forms " + (", ".join(map(str, rules.forms)) or "none"))
    origin = ("the plugin's settings" if rules.source == "plugin"
              else "no FormRelay Bridge plugin: the sidecar's fallback, FORMRELAY_FORM_TEMPLATES")
    since = (f", active since {rules.active_since:%Y-%m-%d %H:%M:%S} UTC"
             if rules.active_since else "")
    lines = [f"delivered forms: {forms} ({origin}{since})"]
    lines += [f"  form {form}: template {one.template or 'default'}, priority {one.priority},"
              f" partner {one.partner or 'default'}"
              for form, one in sorted(rules.form_settings.items())]
    return lines


def fallback(templates: Mapping[int, str] | None = None) -> DeliverySettings:
    """A site without the plugin: every form, templates from the environment."""
    return DeliverySettings("fallback", form_settings={
        k: FormSetting(v) for k, v in (templates or {}).items()})


def unknown(problem: str = UNPUBLISHED) -> DeliverySettings:
    return DeliverySettings("unknown", active=False, problem=problem)


def parse(text: str) -> DeliverySettings:
    """The published row; anything unreadable is `unknown` (create no job), never a guess."""
    try:
        doc = json.loads(text)
        if not isinstance(doc, dict) or doc.get("version") != VERSION:
            raise ValueError(f"version {doc.get('version') if isinstance(doc, dict) else None}"
                             f" (this sidecar reads {VERSION})")
        active = doc["active"]
        if not isinstance(active, bool):
            raise ValueError("active is not true or false")
        since = datetime.fromisoformat(doc["active_since"]) if doc.get("active_since") else None
        forms = doc["forms"]
        if forms != "all" and not (isinstance(forms, list) and all(
                isinstance(f, int) and not isinstance(f, bool) and f > 0 for f in forms)):
            raise ValueError("forms is neither 'all' nor a list of form ids")
        chosen = {str(k): datetime.fromisoformat(v)
                   for k, v in (doc.get("selected_since") or {}).items()}
        settings: dict[int, FormSetting] = {}
        for key, one in (doc.get("form_settings") or {}).items():
            template, priority = one.get("template"), one.get("priority", DEFAULT_PRIORITY)
            partner = one.get("partner") or None  # absent: a plugin from before partner names
            if not (template is None or isinstance(template, str)) or not isinstance(priority, int):
                raise ValueError(f"form_settings of form {int(key)} are not valid")
            if not (partner is None or (isinstance(partner, str) and PARTNER_NAME.match(partner))):
                raise ValueError(f"the partner of form {int(key)} is not a partner name")
            settings[int(key)] = FormSetting(template or None, priority, partner or None)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        return unknown("the plugin's delivery settings cannot be read"
                       f" ({type(exc).__name__}: {exc}); open wp-admin once so that it"
                       " publishes them again; until then no job is created")
    return DeliverySettings("plugin", active, since,
                            None if forms == "all" else tuple(sorted(set(forms))), settings,
                            selected_since=chosen)


class SettingsStore(Protocol):
    def meta(self, name: str) -> str | None: ...

    def bridge_option_exists(self) -> bool: ...


def load(store: SettingsStore, templates: Mapping[int, str] | None = None) -> DeliverySettings:
    """The settings now in force (`templates`: FORMRELAY_FORM_TEMPLATES, for the fallback)."""
    text = store.meta(META_NAME)
    if text is not None:
        return parse(text)
    return unknown() if store.bridge_option_exists() else fallback(templates)


class Cached:
    """`load(store)` read at most once per `ttl` seconds (the engine renders many jobs:
    a settings change reaches rendering within `ttl`, without a query per job)."""

    def __init__(self, store: SettingsStore, ttl: float = 5.0) -> None:
        self.store, self.ttl = store, ttl
        self._lock = threading.Lock()
        self._value: DeliverySettings | None = None
        self._read_at = 0.0

    def get(self) -> DeliverySettings:
        with self._lock:
            now = time.monotonic()
            if self._value is None or now - self._read_at >= self.ttl:
                self._value, self._read_at = load(self.store), now
            return self._value
