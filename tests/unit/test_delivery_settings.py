"""The delivery settings the plugin publishes, as the sidecar reads them: the contract
fixtures (shared with the plugin's test), the three states, and the template rule."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from sidecar import delivery_settings as ds
from sidecar.payload import DEFAULT_TEMPLATE, PayloadRenderer
from sidecar.submission import Submission

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "delivery_settings"
CASES = sorted(FIXTURES.glob("*.json"))
SINCE = "2026-12-05 09:00:00.250"


def published(doc: dict[str, Any], **changes: Any) -> str:
    return json.dumps({**doc, "active_since": SINCE, **changes})


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_the_contract_fixtures(case):
    spec = json.loads(case.read_text())
    rules = ds.parse(published(spec["published"]))
    assert rules.source == "plugin" and rules.creates_jobs
    assert rules.active_since == datetime(2026, 12, 5, 9, 0, 0, 250000)
    for form, want in spec["expect"]["selected"].items():
        assert rules.selected(int(form))[0] is want, form
    for form, want in spec["expect"]["template"].items():
        assert rules.template(int(form)) == want, form
    for form, want in spec["expect"]["priority"].items():
        assert rules.priority(int(form)) == want, form
    for form, want in spec["expect"].get("partner", {}).items():
        assert rules.partner(int(form)) == want, form


def test_a_partner_that_is_not_a_name_makes_the_row_unreadable():
    """A published partner must be a name as sidecar.partners writes them (or null/absent)."""
    for bad in ("EHR", "ehr\n", "../x", "", 3):
        rules = ds.parse(published({"version": 1, "active": True, "forms": "all",
                                    "form_settings": {"12": {"template": None, "priority": 10,
                                                             "partner": bad}}}))
        assert rules.source == ("plugin" if bad == "" else "unknown"), bad
    older = ds.parse(published({"version": 1, "active": True, "forms": "all",
                                "form_settings": {"12": {"template": None, "priority": 4}}}))
    assert older.partner(12) == "" and older.partner(99) == ""


def test_since_is_the_later_of_activation_and_the_forms_selection():
    listed = ds.parse(published({"version": 1, "active": True, "forms": [12, 14],
                                 "form_settings": {},
                                 "selected_since": {"12": "2026-12-01 08:00:00.000",
                                                    "14": "2026-12-06 10:00:00.500"}}))
    assert listed.since(12) == datetime(2026, 12, 5, 9, 0, 0, 250000)  # activation is later
    assert listed.since(14) == datetime(2026, 12, 6, 10, 0, 0, 500000)  # chosen later
    everything = ds.parse(published({"version": 1, "active": True, "forms": "all",
                                     "form_settings": {},
                                     "selected_since": {"*": "2026-12-07 00:00:00.000",
                                                        "12": "2026-12-05 10:00:00.000"}}))
    assert everything.since(12) == datetime(2026, 12, 5, 10)  # delivered before "all"
    assert everything.since(99) == datetime(2026, 12, 7)  # covered by "all" since then
    older = ds.parse(published({"version": 1, "active": True, "forms": [12],
                                "form_settings": {}}))  # a row without selected_since
    assert older.since(12) == older.active_since
    assert ds.fallback().since(12) is None


def test_reasons_name_the_delivered_forms():
    rules = ds.parse(published({"version": 1, "active": True, "forms": [12, 14],
                                "form_settings": {}}))
    assert rules.selected(12) == (True, "form 12 is among the delivered forms")
    assert rules.selected(99) == (False, "form 99 is not among the delivered forms (12, 14)")
    none = ds.parse(published({"version": 1, "active": True, "forms": [], "form_settings": {}}))
    assert none.selected(1) == (False, "form 1 is not among the delivered forms (none)")


def test_a_deactivated_plugin_creates_no_job_but_keeps_its_templates():
    rules = ds.parse(published({"version": 1, "active": False, "forms": "all",
                                "form_settings": {"12": {"template": "a.j2", "priority": 2}}}))
    assert not rules.creates_jobs
    assert rules.selected(12) == (False, "the FormRelay Bridge plugin is deactivated")
    assert rules.template(12) == "a.j2" and rules.priority(12) == 2  # queued jobs still render
    (line,) = ds.describe(rules, 3)
    assert line == ("delivered forms: NONE: the FormRelay Bridge plugin is deactivated:"
                    " no new jobs are created; 3 queued jobs finish")


@pytest.mark.parametrize("text", [
    "not json", "[]", '{"version": 2, "active": true, "forms": "all"}',
    '{"version": 1, "active": "yes", "forms": "all"}',
    '{"version": 1, "active": true, "forms": "some"}',
    '{"version": 1, "active": true, "forms": [0]}',
    '{"version": 1, "active": true, "forms": "all", "form_settings": {"x": {}}}',
    '{"version": 1, "active": true, "forms": "all", "form_settings":'
    ' {"1": {"priority": "5"}}}',
    '{"version": 1, "forms": "all"}',
])
def test_an_unreadable_row_creates_no_job(text):
    rules = ds.parse(text)
    assert rules.source == "unknown" and not rules.creates_jobs
    assert "cannot be read" in rules.refusal() and "open wp-admin" in rules.refusal()


class FakeStore:
    def __init__(self, row: str | None, option: bool) -> None:
        self.row, self.option = row, option

    def meta(self, name: str) -> str | None:
        assert name == ds.META_NAME
        return self.row

    def bridge_option_exists(self) -> bool:
        return self.option


def test_loading_the_three_states():
    row = published({"version": 1, "active": True, "forms": [3], "form_settings": {}})
    assert ds.load(FakeStore(row, True)).forms == (3,)
    waiting = ds.load(FakeStore(None, True))  # the plugin is there, has not published
    assert waiting.source == "unknown" and not waiting.creates_jobs
    assert "open wp-admin once" in waiting.refusal()
    alone = ds.load(FakeStore(None, False), {12: "env.json.j2"})  # no plugin at all
    assert alone.source == "fallback" and alone.creates_jobs
    assert alone.selected(99)[0] and alone.template(12) == "env.json.j2"
    assert alone.priority(12) == ds.DEFAULT_PRIORITY


def test_as_dict_and_describe():
    rules = ds.parse(published({"version": 1, "active": True, "forms": [14, 12],
                                "form_settings": {"12": {"template": "i.j2", "priority": 5},
                                                  "14": {"template": None, "priority": 10,
                                                         "partner": "ehr"}}}))
    assert rules.as_dict() == {
        "source": "plugin", "active": True, "creates_jobs": True,
        "active_since": "2026-12-05T09:00:00.250", "forms": [12, 14],
        "form_settings": {"12": {"template": "i.j2", "priority": 5, "partner": None},
                          "14": {"template": None, "priority": 10, "partner": "ehr"}},
        "problem": ""}
    assert ds.describe(rules, 0) == [
        "delivered forms: forms 12, 14 (the plugin's settings, active since"
        " 2026-12-05 09:00:00 UTC)", "  form 12: template i.j2, priority 5, partner default",
        "  form 14: template default, priority 10, partner ehr"]


def sub(form_id: int, template: str | None = None) -> Submission:
    return Submission(form_id, 1, (), (), "wpforms", template)


def test_the_template_rule(tmp_path):
    renderer = PayloadRenderer(tmp_path, {12: "env.json.j2", 14: "env14.json.j2"})
    plugin = ds.parse(published({"version": 1, "active": True, "forms": "all",
                                 "form_settings": {"12": {"template": "p.j2", "priority": 1}}}))
    assert renderer.template_for(sub(12, "snap.j2"), plugin) == "snap.j2"  # the snapshot's
    assert renderer.template_for(sub(12), plugin) == "p.j2"  # else the plugin's
    assert renderer.template_for(sub(14), plugin) == DEFAULT_TEMPLATE  # env: fallback only
    assert renderer.template_for(sub(14), ds.fallback()) == "env14.json.j2"
    assert renderer.template_for(sub(14), ds.unknown()) == "env14.json.j2"
    assert renderer.template_for(sub(99), None) == DEFAULT_TEMPLATE


class CountingStore:
    def __init__(self, text: str | None) -> None:
        self.text, self.reads = text, 0

    def meta(self, name: str) -> str | None:
        self.reads += 1
        return self.text

    def bridge_option_exists(self) -> bool:
        return True


def test_the_engines_copy_reads_the_row_once_per_ttl():
    store = CountingStore(published({"version": 1, "active": True, "forms": [12],
                                     "form_settings": {}}))
    cached = ds.Cached(store, ttl=3600)
    assert [cached.get().forms for _ in range(5)] == [(12,)] * 5
    assert store.reads == 1
    store.text = published({"version": 1, "active": True, "forms": [14], "form_settings": {}})
    fresh = ds.Cached(store, ttl=0)  # no caching: every call reads the row
    assert fresh.get().forms == (14,) and fresh.get().forms == (14,) and store.reads == 3
