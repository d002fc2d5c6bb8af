"""Keep submitted values out of text that goes to logs, errors and the dashboard.

A partner's error message often echoes what it rejected ("email jane@x.org
is invalid"). Before such text is stored, the job's own field values are
replaced, and so is anything shaped like an e-mail address or a long number.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "[redacted]"
_SHAPES = re.compile(
    r"[\w.+-]+@[\w-]+(\.[\w-]+)+"  # e-mail addresses
    r"|\+?\d[\d\s().-]{3,}\d"  # phone, id and card numbers, dates written with digits
)


def redact(text: str, values: Iterable[str] = (), limit: int = 300) -> str:
    """`text` with every value of `values` (3+ characters) and PII-shaped run masked."""
    for value in sorted({v.strip() for v in values if len(v.strip()) >= 3}, key=len,
                        reverse=True):
        text = re.sub(re.escape(value), MASK, text, flags=re.IGNORECASE)
    text = _SHAPES.sub(MASK, text)
    text = " ".join(text.split())  # no multi-line bodies in a one-line reason
    return text if len(text) <= limit else text[: limit - 1] + "…"
