"""Reading the site's logs (server.log, debug.log) for error messages."""

from __future__ import annotations

import os
from pathlib import Path


def log_size(path: Path) -> int:
    """Where ``path`` ends now (0 if it does not exist): an offset for :func:`read_log`."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def read_log(path: Path, offset: int = 0, max_bytes: int = 8000) -> str:
    """What ``path`` holds from ``offset`` on, at most its last ``max_bytes`` bytes."""
    try:
        with path.open("rb") as fh:
            start = max(offset, fh.seek(0, os.SEEK_END) - max_bytes)
            fh.seek(start)
            data = fh.read()
    except OSError:
        return ""
    text = data.decode("utf-8", "replace")
    return "…" + text if start > offset else text
