"""Payload templates: the default record, per-form choice, and errors that quote no value."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

from sidecar.config import DEFAULT_TEMPLATES
from sidecar.payload import PayloadError, PayloadRenderer
from sidecar.submission import FileRef, Submission

pytestmark = pytest.mark.unit

JOB = {"reference": "wpforms:12:34", "form_id": 12, "entry_id": 34, "key_generation": 1,
       "source": "wpforms"}


def submission(template: str | None = None, form_id: int = 12) -> Submission:
    fields = ({"id": 1, "name": "Name", "type": "name", "value": 'Jane "JD" Doe'},
              {"id": 2, "name": "Email", "type": "email", "value": "jane@example.com"},
              {"id": 4, "name": "Documents", "type": "file-upload", "value": "https://x/a.pdf"})
    return Submission(form_id, 34, fields, (FileRef("4", 0, "a.pdf", "/u/a.pdf"),), "snapshot",
                      template)


@pytest.fixture
def templates(tmp_path):
    (tmp_path / "payloads").mkdir()
    for path in (DEFAULT_TEMPLATES / "payloads").glob("*.j2"):
        (tmp_path / "payloads" / path.name).write_text(path.read_text())
    return tmp_path


def write(templates, name: str, text: str) -> None:
    (templates / "payloads" / name).write_text(text)


def test_the_default_template_makes_the_record_without_file_fields(templates):
    payload = PayloadRenderer(templates).render(submission(), JOB)
    assert payload == {"external_reference": "wpforms:12:34", "form_id": 12, "entry_id": 34,
                       "fields": {"Name": 'Jane "JD" Doe', "Email": "jane@example.com"},
                       "document_count": 1}


def test_a_form_uses_its_snapshot_template_then_the_configured_one(templates):
    write(templates, "intake.json.j2", '{"who": {{ values["Name"] | tojson }}}')
    write(templates, "other.json.j2", '{"kind": "other"}')
    renderer = PayloadRenderer(templates, {12: "other.json.j2"})
    assert renderer.render(submission(), JOB) == {"kind": "other"}
    assert renderer.render(submission("intake.json.j2"), JOB) == {"who": 'Jane "JD" Doe'}
    assert renderer.render(submission(form_id=13), JOB)["form_id"] == 12  # default template


@pytest.mark.parametrize("text,reason", [
    ('{"a": {{ nope }}}', r"payload template t.json.j2: 'nope' is undefined"),
    ('{"a": {% if %}}', r"payload template t.json.j2 \(line 1\): "),
    ('{"a": "{{ values["Name"] }}"}', r"made invalid JSON \(line 1 column 9"),
    ("[1, 2]", "must make a JSON object"),
    ('{"a": {{ "%d" | format(values["Name"]) }}}', "failed: TypeError"),
])
def test_template_errors_fail_with_a_reason(templates, text, reason):
    write(templates, "t.json.j2", text)
    with pytest.raises(PayloadError, match=reason) as err:
        PayloadRenderer(templates, {12: "t.json.j2"}).render(submission(), JOB)
    assert "Jane" not in str(err.value) and "jane@example.com" not in str(err.value)


def test_an_error_quoting_a_value_is_masked(templates):
    write(templates, "t.json.j2", '{{ values[values["Email"]] }}')
    with pytest.raises(PayloadError) as err:
        PayloadRenderer(templates, {12: "t.json.j2"}).render(submission(), JOB)
    assert "jane@example.com" not in str(err.value) and "[redacted]" in str(err.value)


def test_missing_and_unsafe_template_names(templates):
    with pytest.raises(PayloadError, match="does not exist"):
        PayloadRenderer(templates, {12: "absent.json.j2"}).render(submission(), JOB)
    with pytest.raises(PayloadError, match="is not allowed"):
        PayloadRenderer(templates).render(submission("../../etc/passwd"), JOB)


def test_the_sandbox_keeps_templates_from_python_internals(templates):
    write(templates, "t.json.j2", '{"x": {{ job.__class__.__mro__ | tojson }}}')
    with pytest.raises(PayloadError):
        PayloadRenderer(templates, {12: "t.json.j2"}).render(submission(), JOB)


def test_values_with_quotes_and_newlines_stay_valid_json(templates):
    sub = Submission(12, 34, ({"id": 1, "name": "Notes", "type": "textarea",
                               "value": 'a "quote"\nand </script> \\ backslash'},), (),
                     "snapshot")
    payload = PayloadRenderer(templates).render(sub, JOB)
    assert payload["fields"]["Notes"] == 'a "quote"\nand </script> \\ backslash'
    assert json.dumps(payload)


def test_an_error_quoting_part_of_a_value_is_masked(templates):
    write(templates, "t.json.j2", '{{ values[values["Name"].split()[0] ~ "_x"] }}')
    with pytest.raises(PayloadError) as err:
        PayloadRenderer(templates, {12: "t.json.j2"}).render(submission(), JOB)
    assert "Jane" not in str(err.value) and "[redacted]" in str(err.value)


INJECTION = 'x", "role": "admin", "consent": "yes'


def named(value: str) -> Submission:
    return Submission(12, 34, ({"id": 1, "name": "Name", "type": "name", "value": value},), (),
                      "snapshot")


def test_a_value_cannot_add_keys_to_the_record(templates):
    """Issue 11 item 6: every {{ }} is JSON-encoded, so the value stays one string."""
    write(templates, "t.json.j2", '{"name": {{ values.Name }}, "role": "patient"}')
    payload = PayloadRenderer(templates, {12: "t.json.j2"}).render(named(INJECTION), JOB)
    assert payload == {"name": INJECTION, "role": "patient"}


def test_a_quoted_expression_is_refused_not_injected(templates):
    """The template as the issue found it: quotes around {{ }} now make invalid JSON."""
    write(templates, "t.json.j2", '{"name": "{{ values.Name }}", "role": "patient"}')
    with pytest.raises(PayloadError, match="made invalid JSON") as err:
        PayloadRenderer(templates, {12: "t.json.j2"}).render(named(INJECTION), JOB)
    assert "admin" not in str(err.value) and "consent" not in str(err.value)


def test_tojson_is_not_encoded_twice_and_text_between_items_stays_text(templates):
    write(templates, "t.json.j2", '{"a": {{ values.Name | tojson }}, "n": {{ job.entry_id }},'
          ' "list": [{% for f in fields %}{{ f.id }}{% if not loop.last %},{% endif %}'
          '{% endfor %}], "none": {{ none }}, "yes": {{ true }}}')
    sub = Submission(12, 34, ({"id": 1, "name": "Name", "type": "name", "value": "<b>&"},
                              {"id": 2, "name": "B", "type": "text", "value": ""}), (),
                     "snapshot")
    payload = PayloadRenderer(templates, {12: "t.json.j2"}).render(sub, JOB)
    assert payload == {"a": "<b>&", "n": 34, "list": [1, 2], "none": None, "yes": True}


@pytest.mark.parametrize("text", [
    '{"role": "patient", "name": {{ values.Name }}, "role": "admin"}',
    '{"outer": {"role": 1, "role": 2}}',
])
def test_a_duplicate_key_is_refused_naming_the_key(templates, text):
    write(templates, "t.json.j2", text)
    with pytest.raises(PayloadError, match='the key "role" twice'):
        PayloadRenderer(templates, {12: "t.json.j2"}).render(named("Jane Doe"), JOB)


def test_a_duplicate_key_made_from_a_value_is_not_shown(templates):
    write(templates, "t.json.j2", '{ {{ values.Name }}: 1, "a": {"b": 2}, {{ values.Name }}: 2}')
    with pytest.raises(PayloadError, match="twice") as err:
        PayloadRenderer(templates, {12: "t.json.j2"}).render(named("Jane Doe"), JOB)
    assert "Jane" not in str(err.value) and "not shown" in str(err.value)


@pytest.mark.parametrize("name", ["default.json/../x", "default.json.j2\n", "a\n",
                                  "../default.json.j2", "sub/default.json.j2", "x.j2\n.j2",
                                  " default.json.j2"])
def test_a_template_name_must_be_a_plain_file_name(templates, name):
    """Snapshot and plugin settings alike: the whole name must match (fullmatch)."""
    with pytest.raises(PayloadError, match="is not allowed"):
        PayloadRenderer(templates).render(submission(name), JOB)


def test_the_shipped_templates_render_the_same_record_as_with_tojson(templates):
    """The shipped templates dropped `| tojson`: the record is what the old text made."""
    for path in (DEFAULT_TEMPLATES / "payloads").glob("*.j2"):
        old = re.sub(r"\{\{ (.+?) \}\}", lambda m: "{{ (" + m[1] + ") | tojson }}",
                     path.read_text())
        write(templates, "old-" + path.name, old)
        for sub in (submission(), named(INJECTION)):
            renderer = PayloadRenderer(templates)
            new_payload = renderer.render(replace(sub, template=path.name), JOB)
            old_payload = renderer.render(replace(sub, template="old-" + path.name), JOB)
            assert new_payload == old_payload
