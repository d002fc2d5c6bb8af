"""Rewriting a checked file in place (same inode, other bytes), for the tests of the upload
that must send only the bytes that were checked."""

from __future__ import annotations

import os
from pathlib import Path

CHANGES = ("overwrite", "append", "truncate")


def rewrite_in_place(path: Path, change: str) -> None:
    """Overwrite bytes in the middle, append a line, or cut the last 100 bytes."""
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        if change == "overwrite":
            fh.seek(size // 2)
            fh.write(b"REPLACED" * 64)
        elif change == "append":
            fh.seek(0, os.SEEK_END)
            fh.write(b"% more\n")
        elif change == "truncate":
            fh.truncate(size - 100)
        else:
            raise ValueError(change)
