"""Structured log lines, one per log row the store commits.

Text: `event=record.retry job=12 attempt=2 http_status=503 duration_ms=812 message="..."`;
JSON (FORMRELAY_LOG_FORMAT=json, sidecar.logs): the same facts as keys of one
object: `{"event": "record.retry", "job": 12, "attempt": 2, ...}`. Both hold
the log table's facts (ids, counts, status codes, and messages the engine has
already masked), in a shape log shippers parse without help.
`message` is the log row's: a failure's reason is the status, the category
and the partner's text masked with the job's values (sidecar.failures); no
caller passes a value, a file name or raw partner text here.
"""

from __future__ import annotations

import logging

from sidecar.logs import FIELDS_ATTR

logger = logging.getLogger("formrelay.events")
LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def emit(event: str, level: str, message: str, job_id: int | None = None,
         document_id: int | None = None, attempt: int | None = None,
         http_status: int | None = None, duration_ms: int | None = None) -> None:
    facts = {"event": event, "job": job_id, "document": document_id, "attempt": attempt,
             "http_status": http_status, "duration_ms": duration_ms}
    present = {k: v for k, v in facts.items() if v is not None}
    line = " ".join(f"{k}={v}" for k, v in present.items())
    quoted = message.replace("\\", "\\\\").replace('"', '\\"')
    logger.log(LEVELS.get(level, logging.INFO), '%s message="%s"', line, quoted,
               extra={FIELDS_ATTR: {**present, "message": message}})
