"""Small but real sample documents, of an exact size, for tests and the demo.

Every writer takes the target path and the exact size in bytes the file must
have, creates missing parent folders, writes the file and returns its path.
The content is fixed (no randomness), so the same call always writes the same
bytes; padding is streamed, so a 50 MiB sample costs no more memory than a 2 KiB
one. Asking for a size below a type's smallest sample (see `MIN_SIZES`)
raises ValueError.

What libmagic 5.44 reports for each (`EXPECTED_MIME`), and what a decoder says.
Every document sample passes the sidecar's structural check
(`sidecar/doc_structure.py`) at every size (tests/unit/test_doc_structure.py):

- `write_pdf`: a one-page blank PDF 1.4 with a correct xref table; padding is a
  run of `%` comment lines after the header. application/pdf.
- `write_jpeg`: a baseline JFIF, 1x1 grey; padding is COM segments. image/jpeg.
- `write_png`: an 8-bit greyscale image one pixel high; the width takes up the
  size (stored zlib, so it is exact), a tEXt Comment chunk takes up sizes over
  16 KiB. image/png.
- `write_tiff`: little-endian baseline TIFF, 1x1 grey, uncompressed; padding
  is unreferenced bytes after the pixel. image/tiff.
- `write_heic`: an ISO-BMFF file with brands `heic`/`mif1` and a `meta` box
  describing one 1x1 `hvc1` primary image (hvcC, ispe) stored in `mdat`. The
  container is real (libheif lists the image), the mdat bytes are padding, not
  HEVC, so nothing can decode the picture. libmagic reads only the ftyp box:
  image/heic.
- `write_html_as_pdf`: a WordPress-style HTML login page, the thing a fetch of
  a protected upload returns, meant to be saved under a .pdf name. text/html.
- `write_text`: numbered lines of ASCII text. text/plain.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from pathlib import Path

DEFAULT_SIZE = 2048
_CHUNK = 64 * 1024
_FILL = b"FormRelay sample padding, no patient data here. "

Writer = Callable[[str | Path, int], Path]


def _filler(n: int, unit: bytes = _FILL) -> Iterator[bytes]:
    """`n` bytes of repeated `unit`, in chunks of at most 64 KiB."""
    block = (unit * (_CHUNK // len(unit) + 1))[:_CHUNK]
    while n > 0:
        k = min(n, _CHUNK)
        yield block[:k]
        n -= k


def _write(path: str | Path, size: int, parts: Iterable[bytes]) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as f:
        for part in parts:
            f.write(part)
    written = target.stat().st_size
    if written != size:  # a bug in this module, not in the caller
        raise AssertionError(f"{target.name}: wrote {written} bytes, meant {size}")
    return target


def _too_small(kind: str, size: int) -> None:
    if size < MIN_SIZES[kind]:
        raise ValueError(f"a {kind} sample needs at least {MIN_SIZES[kind]} bytes, not {size}")


# --- PDF ---------------------------------------------------------------------------

_PDF_HEAD = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
_PDF_OBJECTS = (
    b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n",
    b"2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n",
    b"3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>\nendobj\n",
)


def _pdf_tail(start: int) -> bytes:
    """Objects, xref and trailer for a body that begins at byte `start`."""
    offsets, pos = [], start
    for obj in _PDF_OBJECTS:
        offsets.append(pos)
        pos += len(obj)
    xref = b"xref\n0 4\n0000000000 65535 f \n" + b"".join(
        b"%010d 00000 n \n" % off for off in offsets)
    trailer = b"trailer\n<< /Size 4 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % pos
    return b"".join(_PDF_OBJECTS) + xref + trailer


def _pdf_padding(n: int) -> Iterator[bytes]:
    """`n` bytes of 64-byte `%` comment lines (a last short line, or one newline)."""
    line = b"%" + (_FILL * 2)[:62] + b"\n"
    yield from _filler(n - n % 64, line)
    rest = n % 64
    if rest == 1:
        yield b"\n"
    elif rest:
        yield b"%" + line[1:rest - 1] + b"\n"


def write_pdf(path: str | Path, size: int = DEFAULT_SIZE) -> Path:
    """A blank one-page PDF of exactly `size` bytes."""
    _too_small("pdf", size)
    pad = 0
    for _ in range(4):  # the startxref number's width depends on the padding
        tail = _pdf_tail(len(_PDF_HEAD) + pad)
        pad = size - len(_PDF_HEAD) - len(tail)
    tail = _pdf_tail(len(_PDF_HEAD) + pad)
    return _write(path, size, chain([_PDF_HEAD], _pdf_padding(pad), [tail]))


# --- JPEG --------------------------------------------------------------------------

def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


_JPEG_HEAD = b"\xff\xd8" + _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
_JPEG_BODY = (
    _segment(0xDB, b"\x00" + b"\x01" * 64)                              # DQT, all ones
    + _segment(0xC0, b"\x08\x00\x01\x00\x01\x01\x01\x11\x00")           # SOF0 1x1, 1 comp
    + _segment(0xC4, b"\x00\x01" + b"\x00" * 15 + b"\x00")              # DC: one code, 0
    + _segment(0xC4, b"\x10\x01" + b"\x00" * 15 + b"\x00")              # AC: one code, EOB
    + _segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")                       # SOS
    + b"\x3f"                   # DC diff 0 ("0"), EOB ("0"), six 1-bits of padding
    + b"\xff\xd9"
)


def _jpeg_padding(n: int) -> Iterator[bytes]:
    """COM segments totalling `n` bytes; 1 to 3 bytes become 0xFF fill bytes."""
    if 0 < n < 4:
        yield b"\xff" * n  # fill bytes may precede any marker
        return
    while n > 0:
        seg = min(n, 65537)
        if 0 < n - seg < 4:
            seg -= 4
        yield struct.pack(">BBH", 0xFF, 0xFE, seg - 2)
        yield from _filler(seg - 4)
        n -= seg


def write_jpeg(path: str | Path, size: int = DEFAULT_SIZE) -> Path:
    """A 1x1 grey baseline JPEG (JFIF) of exactly `size` bytes."""
    _too_small("jpeg", size)
    pad = size - len(_JPEG_HEAD) - len(_JPEG_BODY)
    return _write(path, size, chain([_JPEG_HEAD], _jpeg_padding(pad), [_JPEG_BODY]))


# --- PNG ---------------------------------------------------------------------------

def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_core(width: int) -> tuple[bytes, bytes]:
    """(signature + IHDR, IDAT + IEND) of a `width` x 1 8-bit grey image."""
    ihdr = struct.pack(">IIBBBBB", width, 1, 8, 0, 0, 0, 0)
    row = b"\x00" + bytes(i % 256 for i in range(width))
    head = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
    return head, _png_chunk(b"IDAT", zlib.compress(row, 0)) + _png_chunk(b"IEND", b"")


def _png_text(n: int) -> Iterator[bytes]:
    """A tEXt Comment chunk of `n` bytes in all, streamed with a running CRC."""
    keyword = b"Comment\x00"
    yield struct.pack(">I", n - 12) + b"tEXt" + keyword
    crc = zlib.crc32(b"tEXt" + keyword)
    for part in _filler(n - 12 - len(keyword)):
        crc = zlib.crc32(part, crc)
        yield part
    yield struct.pack(">I", crc)


_PNG_FIXED = sum(map(len, _png_core(1))) - 1  # bytes besides the pixels
_PNG_MAX_WIDTH = 16 * 1024  # one stored deflate block, so the size is exact


def write_png(path: str | Path, size: int = DEFAULT_SIZE) -> Path:
    """A greyscale PNG one pixel high of exactly `size` bytes."""
    _too_small("png", size)
    width = size - _PNG_FIXED
    text = 0
    if width > _PNG_MAX_WIDTH:
        width, text = 1024, width - 1024
    head, tail = _png_core(width)
    return _write(path, size, chain([head], _png_text(text) if text else [], [tail]))


# --- TIFF --------------------------------------------------------------------------

def _tiff_core() -> bytes:
    short, long_, rational = 3, 4, 5
    entries = [(256, short, 1), (257, short, 1), (258, short, 8), (259, short, 1),
               (262, short, 1), (273, long_, 0), (277, short, 1), (278, short, 1),
               (279, long_, 1), (282, rational, 0), (283, rational, 0), (296, short, 2)]
    ifd_len = 2 + 12 * len(entries) + 4
    res_at = 8 + ifd_len
    pixel_at = res_at + 16
    values = {273: pixel_at, 282: res_at, 283: res_at + 8}
    ifd = struct.pack("<H", len(entries))
    for tag, kind, value in entries:
        value = values.get(tag, value)
        packed = struct.pack("<HH", value, 0) if kind == short else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind, 1) + packed
    ifd += struct.pack("<I", 0)
    resolution = struct.pack("<IIII", 72, 1, 72, 1)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + resolution + b"\x80"


_TIFF_CORE = _tiff_core()


def write_tiff(path: str | Path, size: int = DEFAULT_SIZE) -> Path:
    """A 1x1 grey uncompressed baseline TIFF of exactly `size` bytes."""
    _too_small("tiff", size)
    return _write(path, size, chain([_TIFF_CORE], _filler(size - len(_TIFF_CORE))))


# --- HEIC --------------------------------------------------------------------------

def _box(kind: bytes, payload: bytes, full: bool = False, version: int = 0) -> bytes:
    if full:
        payload = struct.pack(">I", version << 24) + payload
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _heic_head(data_len: int) -> bytes:
    """ftyp + meta for one hvc1 item of `data_len` bytes at the start of mdat's payload."""
    ftyp = _box(b"ftyp", b"heic" + b"\x00\x00\x00\x00" + b"mif1heic")
    hdlr = _box(b"hdlr", b"\x00" * 4 + b"pict" + b"\x00" * 12 + b"\x00", full=True)
    pitm = _box(b"pitm", struct.pack(">H", 1), full=True)
    infe = _box(b"infe", struct.pack(">HH", 1, 0) + b"hvc1" + b"\x00", full=True, version=2)
    iinf = _box(b"iinf", struct.pack(">H", 1) + infe, full=True)
    hvcc = _box(b"hvcC", bytes.fromhex("0101 60000000 000000000000 1e f000 fc fd f8 f8 0000 0f 00"))
    ispe = _box(b"ispe", struct.pack(">II", 1, 1), full=True)
    ipma = _box(b"ipma", struct.pack(">IHB", 1, 1, 2) + b"\x81\x02", full=True)
    iprp = _box(b"iprp", _box(b"ipco", hvcc + ispe) + ipma)

    def iloc(offset: int) -> bytes:
        return _box(b"iloc", b"\x44\x00" + struct.pack(">HHHHII", 1, 1, 0, 1, offset, data_len),
                    full=True)

    meta_len = len(_box(b"meta", hdlr + pitm + iinf + iprp + iloc(0), full=True))
    data_at = len(ftyp) + meta_len + 8  # past the mdat box header
    return ftyp + _box(b"meta", hdlr + pitm + iinf + iprp + iloc(data_at), full=True)


_HEIC_FIXED = len(_heic_head(0)) + 8


def write_heic(path: str | Path, size: int = DEFAULT_SIZE) -> Path:
    """An HEIC-branded ISO-BMFF file of exactly `size` bytes (structure only, see above)."""
    _too_small("heic", size)
    data_len = size - _HEIC_FIXED
    mdat = struct.pack(">I", 8 + data_len) + b"mdat"
    return _write(path, size, chain([_heic_head(data_len), mdat], _filler(data_len)))


# --- not documents -----------------------------------------------------------------

_LOGIN_HEAD = (
    b'<!DOCTYPE html>\n<html lang="en-US">\n<head>\n<meta charset="UTF-8">\n'
    b"<title>Log In &lsaquo; Community Clinic &#8212; WordPress</title>\n</head>\n"
    b'<body class="login">\n<form name="loginform" id="loginform" '
    b'action="https://clinic.example/wp-login.php" method="post">\n'
    b'<label for="user_login">Username or Email Address</label>\n'
    b'<input type="text" name="log" id="user_login">\n'
    b'<label for="user_pass">Password</label>\n'
    b'<input type="password" name="pwd" id="user_pass">\n'
    b'<input type="submit" name="wp-submit" id="wp-submit" value="Log In">\n</form>\n'
)
_LOGIN_TAIL = b"</body>\n</html>\n"


def write_html_as_pdf(path: str | Path, size: int = DEFAULT_SIZE) -> Path:
    """A WordPress login page of exactly `size` bytes; give it a .pdf name to disguise it."""
    _too_small("html_as_pdf", size)
    pad = size - len(_LOGIN_HEAD) - len(_LOGIN_TAIL)
    padding = [b" " * pad] if pad < 10 else chain([b"<!-- "], _filler(pad - 10), [b" -->\n"])
    return _write(path, size, chain([_LOGIN_HEAD], padding, [_LOGIN_TAIL]))


def write_text(path: str | Path, size: int = DEFAULT_SIZE) -> Path:
    """Numbered lines of plain ASCII text, exactly `size` bytes."""
    _too_small("text", size)
    return _write(path, size, _filler(size, b"FormRelay sample text line.\n"))


WRITERS: dict[str, Writer] = {
    "pdf": write_pdf, "jpeg": write_jpeg, "png": write_png, "tiff": write_tiff,
    "heic": write_heic, "html_as_pdf": write_html_as_pdf, "text": write_text,
}
"""Each writer by kind name."""

EXTENSIONS: dict[str, str] = {
    "pdf": ".pdf", "jpeg": ".jpg", "png": ".png", "tiff": ".tif", "heic": ".heic",
    "html_as_pdf": ".pdf", "text": ".txt",
}
"""The file name extension each kind is normally given."""

EXPECTED_MIME: dict[str, str] = {
    "pdf": "application/pdf", "jpeg": "image/jpeg", "png": "image/png", "tiff": "image/tiff",
    "heic": "image/heic", "html_as_pdf": "text/html", "text": "text/plain",
}
"""What libmagic 5.44 (`magic.from_buffer(..., mime=True)`) reports for each kind."""

MIN_SIZES: dict[str, int] = {
    "pdf": len(_PDF_HEAD) + len(_pdf_tail(len(_PDF_HEAD))),
    "jpeg": len(_JPEG_HEAD) + len(_JPEG_BODY),
    "png": _PNG_FIXED + 1,
    "tiff": len(_TIFF_CORE),
    "heic": _HEIC_FIXED,
    "html_as_pdf": len(_LOGIN_HEAD) + len(_LOGIN_TAIL),
    "text": 28,
}
"""The smallest size, in bytes, each writer can produce."""
