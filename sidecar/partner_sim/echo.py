"""Scripted answers that echo what was sent, as careless real partners do.

A script item with `"echo": true` answers its status (422 unless given) with
`{"error": ...}` quoting the request: for a record every text value of the
JSON body, whole, HTML-escaped, upper-cased and in part (its first two
words); for a document the uploaded file's name. Tests use it to prove that
none of it reaches FormRelay's errors, log rows, event lines or dashboard.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from typing import Any


def _texts(body: Any) -> Iterator[str]:
    if isinstance(body, str):
        if body.strip():
            yield body
    elif isinstance(body, dict):
        for value in body.values():
            yield from _texts(value)
    elif isinstance(body, list):
        for value in body:
            yield from _texts(value)


def record_echo(raw: bytes) -> str:
    """The error text for a record: every text value, in four shapes."""
    try:
        body = json.loads(raw)
    except ValueError:
        return "body is not valid JSON"
    parts = []
    for text in _texts(body):
        first = " ".join(text.split()[:2])
        parts.append(f"'{text}' ({html.escape(text)}, {text.upper()}, starting {first!r})")
    return "invalid values: " + "; ".join(parts) if parts else "invalid record"


def document_echo(filename: str) -> str:
    """The error text for a document: its name, as the partner saw it."""
    return (f"file {filename} rejected: this document needs a signed consent form"
            f" (got {html.escape(filename)})")
