"""Log lines: JSON objects with the event's fields, safe exceptions, Huey's per-task lines."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator

import pytest

from sidecar import events, logs
from sidecar.errors import PermanentError

pytestmark = pytest.mark.unit
VALUE = "Jane Doe 1970-01-01"  # stands for a submitted value


@pytest.fixture
def captured() -> Iterator[tuple[io.StringIO, Callable[[str, str], None]]]:
    buffer = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    yield buffer, lambda level, fmt: logs.setup(level, fmt, buffer)
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def lines(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_an_event_is_one_json_object_with_its_fields_as_keys(captured):
    buffer, setup = captured
    setup("info", "json")
    events.emit("record.retry", "warning", "HTTP 503 server", job_id=12, attempt=2,
                http_status=503, duration_ms=812)
    (line,) = lines(buffer)
    assert line["ts"].endswith("Z") and line["ts"][:2] == "20" and "T" in line["ts"]
    assert {k: line[k] for k in ("level", "logger", "event", "job", "attempt", "http_status",
                                 "duration_ms", "message")} == {
        "level": "warning", "logger": "formrelay.events", "event": "record.retry", "job": 12,
        "attempt": 2, "http_status": 503, "duration_ms": 812, "message": "HTTP 503 server"}
    assert "document" not in line  # absent facts are left out, as in the text form


def test_the_text_form_of_an_event_is_unchanged(captured):
    buffer, setup = captured
    setup("info", "text")
    events.emit("document.uploaded", "info", 'said "ok"', job_id=3, document_id=9)
    assert buffer.getvalue().rstrip().endswith(
        'INFO formrelay.events event=document.uploaded job=3 document=9 message="said \\"ok\\""')


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_exceptions_keep_their_type_and_place_but_not_their_values(captured, fmt):
    buffer, setup = captured
    setup("info", fmt)
    log = logging.getLogger("formrelay.test")
    try:
        try:
            {}[VALUE]
        except KeyError as exc:
            raise ValueError(f"bad value {VALUE}") from exc
    except ValueError:
        log.exception("step failed")
    try:
        raise PermanentError("HTTP 422 validation", 422)
    except PermanentError:
        log.exception("step failed")
    out = buffer.getvalue()
    assert VALUE not in out
    if fmt == "json":
        first, second = lines(buffer)
        assert first["exception"]["type"] == "ValueError" and first["exception"]["message"] == ""
        assert "test_logs.py" in first["exception"]["where"]
        assert second["exception"]["message"] == "HTTP 422 validation"  # FormRelay's own: safe
    else:
        assert "KeyError\n" in out and "ValueError\n" in out and "test_logs.py" in out
        assert "PermanentError: HTTP 422 validation" in out


@pytest.mark.parametrize(("level", "shown"), [("info", False), ("debug", True)])
def test_huey_per_task_lines_only_at_debug_its_warnings_always(captured, level, shown):
    buffer, setup = captured
    setup(level, "json")
    huey = logging.getLogger("huey")
    huey.info("Executing %s", "sidecar.tasks.deliver_record: 1234")
    huey.info("%s executed in %0.3fs", "sidecar.tasks.deliver_record: 1234", 0.5)
    huey.warning("Task %s raised an error", "abc")
    got = lines(buffer)
    per_task = [g for g in got if g["message"].startswith(("Executing", "sidecar.tasks"))]
    assert bool(per_task) == shown and all(g["level"] == "debug" for g in per_task)
    assert any(g["level"] == "warning" and g["logger"] == "huey" for g in got)
