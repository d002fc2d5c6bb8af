"""Logging set-up for every command: FORMRELAY_LOG_LEVEL and FORMRELAY_LOG_FORMAT.

text (default): `2026-01-02 10:00:00,123 INFO formrelay.events event=... message="..."`.
json: one object per line, `ts` (UTC, ISO 8601), `level`, `logger`, `event`
(`events.emit`'s name, or "log" for other lines), `message`, and the
structured fields `events.emit` passes (job, document, attempt, http_status,
duration_ms) as keys of their own.

Huey's per-task lines ("Executing ...", "... executed in ...") are DEBUG here:
FormRelay's own event lines already say what each step did. Huey's warnings
and errors stay.

Exceptions never print their message unless it is one of FormRelay's own
(sidecar.errors: value-free by design): a database error can quote a
duplicate value, an OSError the person's file name, a KeyError the key. What
remains is the type, the errno where there is one, and the frames (file,
line, function; code, never variables). docs/logging.md.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TextIO

from sidecar.errors import FormRelayError

FIELDS_ATTR = "formrelay_fields"  # events.emit puts its structured fields here (extra=)
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR}
# Huey's INFO lines written once per task run (huey/api.py, huey/consumer.py).
HUEY_PER_TASK = frozenset({"Executing %s", "%s executed in %0.3fs", "Enqueueing periodic task %s.",
                           "Added task %s to schedule, eta %s", "Task %s expired, not executing."})
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def safe_message(exc: BaseException) -> str:
    """What an exception may say in a log: FormRelay's own message, else an errno, else
    nothing (the type is printed beside it)."""
    if isinstance(exc, FormRelayError):
        return str(exc)
    errno = getattr(exc, "errno", None)
    return f"errno {errno}" if isinstance(errno, int) else ""


def _chain(exc: BaseException | None) -> list[BaseException]:
    found: list[BaseException] = []
    while exc is not None and exc not in found:
        found.append(exc)
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return list(reversed(found))  # the first cause first, as Python prints them


def _where(tb: TracebackType | None) -> str:
    frames = traceback.extract_tb(tb)
    return f"{frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name}" if frames else ""


def describe_exception(exc_info: ExcInfo) -> dict[str, str]:
    """{"type", "message", "where"} of the exception logged (JSON)."""
    exc = exc_info[1]
    return {"type": type(exc).__qualname__, "message": safe_message(exc),
            "where": _where(exc.__traceback__)}


def format_exception(exc_info: ExcInfo) -> str:
    """A traceback with every exception's message made safe (text)."""
    lines: list[str] = []
    for exc in _chain(exc_info[1]):
        if lines:
            lines.append("During handling of the above exception, another exception occurred:\n")
        lines.append("Traceback (most recent call last):\n")
        lines.extend(traceback.format_tb(exc.__traceback__))
        message = safe_message(exc)
        lines.append(f"{type(exc).__qualname__}{': ' + message if message else ''}\n")
    return "".join(lines).rstrip("\n")


class TextFormatter(logging.Formatter):
    def formatException(self, ei: Any) -> str:
        return format_exception(ei)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(), "logger": record.name}
        fields = getattr(record, FIELDS_ATTR, None)
        if isinstance(fields, dict):
            out.update(fields)
        else:
            out.update(event="log", message=record.getMessage())
        if record.exc_info and record.exc_info[1] is not None:
            out["exception"] = describe_exception(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class HueyPerTask(logging.Filter):
    """Huey's per-task INFO lines become DEBUG, shown only when the level is debug."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if (record.name == "huey" or record.name.startswith("huey.")) and \
                record.levelno == logging.INFO and record.msg in HUEY_PER_TASK:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return self.level <= logging.DEBUG
        return True


def setup(level: str = "info", fmt: str = "text", stream: TextIO | None = None) -> None:
    """Configure the root logger on stdout (called by `main()` once the settings are read)."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter(TEXT_FORMAT))
    number = LEVELS.get(level, logging.INFO)
    handler.addFilter(HueyPerTask(number))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(number)
    # The driver's own debug lines can quote statements with their parameters.
    logging.getLogger("mysql.connector").setLevel(max(number, logging.WARNING))
