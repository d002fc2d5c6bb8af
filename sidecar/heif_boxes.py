"""HEIC/HEIF structure by an ISO-BMFF box walk, without decoding a picture.

Why not pillow-heif: it ships libheif with HEVC, AV1 and JPEG decoders (26 MB
of native code) into the process that holds patient documents, to answer a
question about the container; the picture itself is HEVC that the partner
decodes. The walk checks what a broken upload or a glued-on file breaks:

- the file is a chain of boxes that ends exactly at the end of the file, `ftyp`
  first; a box that runs past the end means the file was cut short;
- one top-level `meta` box with `pitm` (the primary item), `iinf` and `iloc`;
- the primary item has a location, and every extent in `iloc` lies inside the
  file (or inside `idat`).

Reasons name the box types from a fixed list and sizes only.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

MAX_BOXES = 10_000
MAX_META_BYTES = 16 * 1024 * 1024


class _Damaged(Exception):
    """The walk stopped; the message is the reason (fixed texts only)."""


def _boxes(f: BinaryIO, start: int, end: int, label: str) -> list[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of each box between `start` and `end`."""
    found: list[tuple[bytes, int, int]] = []
    pos = start
    while pos < end:
        if len(found) >= MAX_BOXES:
            raise _Damaged(f"{label} is damaged (more than {MAX_BOXES} boxes)")
        if end - pos < 8:
            raise _Damaged(f"{label} is truncated (a box header is cut short)")
        f.seek(pos)
        head = f.read(16)
        size, kind = struct.unpack(">I4s", head[:8])
        header = 8
        if size == 1:
            if len(head) < 16:
                raise _Damaged(f"{label} is truncated (a box header is cut short)")
            size, header = struct.unpack(">Q", head[8:16])[0], 16
        elif size == 0:
            size = end - pos  # "to the end of the file"
        if size < header:
            raise _Damaged(f"{label} is damaged (a box has an impossible size)")
        if pos + size > end:
            raise _Damaged(f"{label} is truncated (a box runs past the end of the file)")
        found.append((kind, pos + header, pos + size))
        pos += size
    return found


def _uint(data: bytes, at: int, width: int) -> tuple[int, int]:
    if width == 0:
        return 0, at
    if at + width > len(data):
        raise _Damaged("")
    return int.from_bytes(data[at:at + width], "big"), at + width


def _iloc(data: bytes) -> dict[int, tuple[int, list[tuple[int, int]]]]:
    """item id -> (construction method, [(offset, length)]) from an iloc payload."""
    version = data[0] if data else 0
    if version > 2 or len(data) < 6:
        raise _Damaged("")
    offset_size, length_size = data[4] >> 4, data[4] & 15
    base_size, index_size = data[5] >> 4, (data[5] & 15 if version else 0)
    if any(w not in (0, 4, 8) for w in (offset_size, length_size, base_size, index_size)):
        raise _Damaged("")
    at = 6
    count, at = _uint(data, at, 2 if version < 2 else 4)
    items: dict[int, tuple[int, list[tuple[int, int]]]] = {}
    for _ in range(count):
        item, at = _uint(data, at, 2 if version < 2 else 4)
        method = 0
        if version:
            raw, at = _uint(data, at, 2)
            method = raw & 15
        _, at = _uint(data, at, 2)  # data_reference_index
        base, at = _uint(data, at, base_size)
        extents_n, at = _uint(data, at, 2)
        extents = []
        for _ in range(extents_n):
            _, at = _uint(data, at, index_size)
            offset, at = _uint(data, at, offset_size)
            length, at = _uint(data, at, length_size)
            extents.append((base + offset, length))
        items[item] = (method, extents)
    return items


def heif_problem(f: BinaryIO, size: int, label: str) -> str | None:
    """Why this HEIC/HEIF file is refused, or None (see the module docstring)."""
    try:
        top = _boxes(f, 0, size, label)
        if not top or top[0][0] != b"ftyp":
            return f"{label} is damaged (the ftyp box is not first)"
        metas = [(s, e) for kind, s, e in top if kind == b"meta"]
        if len(metas) != 1:
            return f"{label} is damaged ({'no' if not metas else 'more than one'} meta box)"
        start, end = metas[0]
        if end - start > MAX_META_BYTES:
            return f"{label} is damaged (the meta box is too large)"
        f.seek(start)
        meta = f.read(end - start)
        children = {kind: (s, e) for kind, s, e in _boxes(f, start + 4, end, label)}
        for needed in (b"pitm", b"iinf", b"iloc"):
            if needed not in children:
                return f"{label} is damaged (no {needed.decode()} box)"

        def payload(kind: bytes) -> bytes:
            s, e = children[kind]
            return meta[s - start:e - start]

        pitm = payload(b"pitm")
        primary = _uint(pitm, 4, 2 if pitm[:1] == b"\x00" else 4)[0]
        try:
            items = _iloc(payload(b"iloc"))
        except (_Damaged, IndexError):
            return f"{label} is damaged (unreadable iloc box)"
        if primary not in items:
            return f"{label} has no primary image"
        idat = children.get(b"idat")
        for method, extents in items.values():
            if method == 0:
                lo, hi = 0, size
            elif method == 1 and idat is not None:
                lo, hi = idat
            elif method == 1:
                return f"{label} is damaged (no idat box)"
            else:
                continue  # construction method 2 (item references): nothing to bound
            for offset, length in extents:
                if lo + offset + length > hi:
                    return f"{label} is truncated (image data past the end of the file)"
    except _Damaged as exc:
        return str(exc) or f"{label} is damaged (unreadable box)"
    return None
