"""Is a document structurally what its type claims? One parser per allowed type.

`structure_problem` reads a document through a file object and returns the
reason it is refused, or None. It is pure: no process, no limit of its own.
`sidecar.doc_sandbox` runs it in a worker process under a CPU-time and a memory
bound (a parser can be made to loop or to allocate by a hostile file), and says
so when a bound is hit.

- PDF (pypdf, strict): a `%%EOF` end marker with at most `PDF_TAIL_ALLOWANCE`
  non-whitespace bytes after the last one (more is another file glued on: an
  HTML page behind a PDF header); the cross-reference table and trailer found
  by pypdf in strict mode, every offset in it inside the file; the page tree
  readable, with at least one page.
- JPEG, PNG, TIFF (Pillow): the image header within `max_pixels`; PNG chunk
  CRCs (`verify()`); every frame decoded in full with truncated images refused
  (JPEG at 1/8 scale: the whole entropy-coded stream is still read).
- HEIC/HEIF: the ISO-BMFF box walk of `sidecar.heif_boxes` (no HEVC decoder).

Reasons name the type, sizes and counts only, never content: exception texts
from the parsers are used to classify, never shown.
"""

from __future__ import annotations

import re
from typing import BinaryIO

from sidecar.heif_boxes import heif_problem

PDF_TAIL_ALLOWANCE = 128
"""Non-whitespace bytes tolerated after a PDF's last %%EOF (stray bytes some tools add)."""

_SCAN = 64 * 1024
_PDF_WHITESPACE = b"\x00\t\n\x0c\r "
_EOF = b"%%EOF"

IMAGE_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/tiff": "TIFF"}
"""Pillow's format name for each image type it checks."""

HEIF_TYPES = frozenset({"image/heic", "image/heif"})
CHECKED_TYPES = frozenset({"application/pdf", *IMAGE_FORMATS, *HEIF_TYPES})
"""The MIME types with a structural check; a document of another type is not looked at."""


def _human(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    return f"{n / 1024:.1f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MiB"


def structure_problem(f: BinaryIO, size: int, mime: str, label: str,
                      max_pixels: int) -> str | None:
    """Why the document behind `f` (`size` bytes, detected as `mime`) is refused, or None."""
    if mime == "application/pdf":
        return pdf_problem(f, size)
    if mime in IMAGE_FORMATS:
        return image_problem(f, size, IMAGE_FORMATS[mime], label, max_pixels)
    if mime in HEIF_TYPES:
        return heif_problem(f, size, label)
    return None


# --- PDF ---------------------------------------------------------------------------

def pdf_tail(f: BinaryIO, size: int) -> int | None:
    """Non-whitespace bytes after the last %%EOF, or None when there is no %%EOF at all.

    Reads backwards in 64 KiB steps (overlapping by the marker's length), so
    memory stays small whatever the size.
    """
    end, after = size, 0
    while end > 0:
        start = max(0, end - _SCAN)
        f.seek(start)
        block = f.read(min(end + len(_EOF) - 1, size) - start)
        at = block.rfind(_EOF)
        if at >= 0:
            rest = block[at + len(_EOF):end - start]
            return after + len(rest.translate(None, _PDF_WHITESPACE))
        after += len(block[:end - start].translate(None, _PDF_WHITESPACE))
        end = start
    return None


def pdf_problem(f: BinaryIO, size: int) -> str | None:
    """See the module docstring; pypdf is imported here, in the checker process only."""
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError

    tail = pdf_tail(f, size)
    if tail is None:
        return "PDF is truncated (no cross-reference table)"
    if tail > PDF_TAIL_ALLOWANCE:
        return f"PDF has {_human(tail)} of data after its end marker (%%EOF)"
    f.seek(0)
    try:
        reader = PdfReader(f, strict=True)
    except MemoryError:
        raise  # the sandbox's bound, reported as such
    except RecursionError:
        return "PDF is damaged (objects nested too deeply)"
    except Exception:  # pypdf raises PdfReadError, ValueError, KeyError...: the text is not shown
        return "PDF is damaged (bad cross-reference table or trailer)"
    if any(offset > size for table in reader.xref.values() for offset in table.values()
           if isinstance(offset, int)):
        return "PDF is truncated (objects listed past the end of the file)"
    try:
        if reader.is_encrypted and not reader.decrypt(""):
            return "PDF is encrypted (its structure cannot be checked)"
        pages = len(reader.pages)
        for page in reader.pages:
            if page.get("/Type") not in (None, "/Page"):
                return "PDF is damaged (page tree unreadable)"
    except MemoryError:
        raise
    except RecursionError:
        return "PDF is damaged (objects nested too deeply)"
    except (FileNotDecryptedError, DependencyError, NotImplementedError):
        return "PDF is encrypted (its structure cannot be checked)"
    except Exception:  # any parse failure of the page tree; the text is not shown
        return "PDF is damaged (page tree unreadable)"
    return None if pages else "PDF has no pages"


# --- JPEG, PNG, TIFF ---------------------------------------------------------------

_TRAILING_FILL = b"\x00\t\n\r "
_CRC = re.compile(r"crc|checksum", re.IGNORECASE)


def _ends_whole(f: BinaryIO, size: int, fmt: str) -> bool:
    """Does the file end as a whole one of `fmt` does (JPEG EOI, PNG IEND)?"""
    f.seek(max(0, size - 4096))
    end = f.read().rstrip(_TRAILING_FILL)
    if fmt == "JPEG":
        return end.endswith(b"\xff\xd9")
    if fmt == "PNG":
        return end.endswith(b"IEND\xae\x42\x60\x82")
    return True  # TIFF has no end marker: its decoder says "truncated" itself


def _image_error(f: BinaryIO, size: int, fmt: str, label: str, exc: Exception) -> str:
    text = str(exc)
    if _CRC.search(text):
        return f"{label} is damaged (bad CRC)"
    if "truncated" in text.lower() or not _ends_whole(f, size, fmt):
        return f"{label} is truncated"
    return f"{label} is damaged (cannot be decoded)"


def image_problem(f: BinaryIO, size: int, fmt: str, label: str, max_pixels: int) -> str | None:
    """See the module docstring; Pillow is imported here, in the checker process only."""
    from PIL import Image, ImageFile

    ImageFile.LOAD_TRUNCATED_IMAGES = False
    Image.MAX_IMAGE_PIXELS = None  # the limit is checked below, with a reason
    try:
        f.seek(0)
        with Image.open(f, formats=[fmt]) as im:
            if fmt == "PNG":
                im.verify()  # every chunk's CRC, up to IEND
        f.seek(0)
        with Image.open(f, formats=[fmt]) as im:
            for frame in range(getattr(im, "n_frames", 1)):
                im.seek(frame)
                width, height = im.size
                if width * height > max_pixels:
                    return (f"{label} is {width} x {height} pixels, over the limit of "
                            f"{max_pixels / 1e6:g} million")
                if fmt == "JPEG":
                    im.draft(None, (-(-width // 8), -(-height // 8)))
                im.load()
    except MemoryError:
        raise
    except RecursionError:
        return f"{label} is damaged (cannot be decoded)"
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, struct.error...
        return _image_error(f, size, fmt, label, exc)
    return None
