"""What the file checks cost per document, the structural check (issue 10) included.

For each document kind it times the full `check_file` (path, size, libmagic
type, names, structure, SHA-256) and the structural part alone (the worker
process's parse, handed the open descriptor, as `check_file` calls it), and
prints the median and p95 in ms and the peak RSS of the checker worker (its
VmHWM; a fresh worker per kind) and of this process. No database is needed.

Documents (built once, deterministic): a small PDF (the devstack sample), a
multi-MB PDF of 1,000 pages, each with its own content stream; a 25 MiB PDF of
scanned-looking pages (an uncompressed 8-bit image per page); a 12-megapixel
JPEG photo; an A4 300 dpi PNG scan; a 3-page A4 300 dpi LZW TIFF; the HEIC
sample (a box walk, no decoding).

    .venv/bin/python bench/document_checks.py [--runs 20] [--only pdf-small,jpeg,...]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image
from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, NameObject

from devstack import samples
from sidecar import file_checks
from sidecar.file_checks import MIB, FilePolicy, check_file

POLICY = FilePolicy()


def _pdf_pages(pages: int, stream_bytes: int, rng: random.Random) -> bytes:
    """A PDF whose every page has its own uncompressed content stream of text operators."""
    writer = PdfWriter()
    words = [b"Referral", b"letter", b"page", b"clinic", b"scan", b"result"]
    for n in range(pages):
        page = writer.add_blank_page(595, 842)
        lines, size = [b"BT /F1 10 Tf 40 800 Td"], 0
        while size < stream_bytes:
            line = b"(" + b" ".join(rng.choice(words) for _ in range(8)) + b") Tj 0 -12 Td"
            lines.append(line)
            size += len(line) + 1
        lines.append(b"ET")
        stream = DecodedStreamObject()
        stream.set_data(b"\n".join(lines) + b"\n%% page %d" % n)
        page[NameObject("/Contents")] = writer._add_object(stream)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _pdf_scans(target: int, rng: random.Random) -> bytes:
    """Pages that each carry a noisy 100 dpi A4 grey scan (Pillow stores it as JPEG),
    as many as fit in `target` bytes."""
    page = Image.frombytes("L", (850, 1100), rng.randbytes(850 * 1100))
    page = Image.blend(Image.radial_gradient("L").resize(page.size), page, 0.5)

    def build(pages: int) -> bytes:
        out = io.BytesIO()
        page.save(out, "PDF", save_all=True, append_images=[page] * (pages - 1),
                  resolution=100, quality=95)
        return out.getvalue()

    per_page = len(build(4)) / 4
    return build(int(target / per_page))


def _image(fmt: str, size: tuple[int, int], rng: random.Random, **options: object) -> bytes:
    base = Image.radial_gradient("L").resize(size)
    noise = Image.frombytes("L", size, rng.randbytes(size[0] * size[1]))
    picture = Image.blend(base, noise, 0.3)
    out = io.BytesIO()
    if fmt == "JPEG":
        Image.merge("RGB", (picture, base, noise)).save(out, fmt, quality=90, **options)
    elif fmt == "TIFF":
        picture.save(out, fmt, save_all=True, append_images=[base, picture], **options)
    else:
        picture.save(out, fmt, **options)
    return out.getvalue()


def _sample(kind: str, size: int) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        return samples.WRITERS[kind](Path(d) / kind, size).read_bytes()


def documents() -> dict[str, tuple[str, Callable[[], bytes]]]:
    """kind -> (file name, builder)."""
    rng = random.Random(10)
    return {
        "pdf-small": ("Referral.pdf", lambda: _sample("pdf", 5000)),
        "pdf-1000-pages": ("records.pdf", lambda: _pdf_pages(1000, 4000, rng)),
        "pdf-25mib-scans": ("scans.pdf", lambda: _pdf_scans(25 * MIB - 200 * 1024, rng)),
        "jpeg-12mp": ("photo.jpg", lambda: _image("JPEG", (4000, 3000), rng)),
        "png-a4-300dpi": ("scan.png", lambda: _image("PNG", (2480, 3508), rng)),
        "tiff-3-pages": ("fax.tif", lambda: _image("TIFF", (2480, 3508), rng,
                                                    compression="tiff_lzw")),
        "heic": ("photo.heic", lambda: _sample("heic", 200_000)),
    }


def _structure_only(path: Path, uploads: Path) -> Callable[[], None]:
    root, real = file_checks._resolve(path, uploads)

    def run() -> None:
        fd = file_checks._open_beneath(root, real)
        try:
            size = os.fstat(fd).st_size
            mime = file_checks.detect_mime(os.pread(fd, file_checks.HEAD_BYTES, 0))
            started = time.perf_counter()
            file_checks._check_structure(fd, size, mime, POLICY)
            run.elapsed = time.perf_counter() - started  # type: ignore[attr-defined]
        finally:
            os.close(fd)
    return run


def _timed(fn: Callable[[], object], runs: int) -> list[float]:
    fn()  # warm: the worker is started and the file is in the page cache
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def _structure_timed(run: Callable[[], None], runs: int) -> list[float]:
    run()
    out = []
    for _ in range(runs):
        run()
        out.append(run.elapsed * 1000)  # type: ignore[attr-defined]
    return out


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[18] if len(values) > 1 else values[0]


def _worker_peak_mib() -> float:
    peaks = []
    for pid in file_checks._SANDBOX.pids():
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
    return max(peaks, default=0.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--only", default="", help="comma-separated kinds")
    args = parser.parse_args()
    kinds = documents()
    chosen = [k for k in kinds if not args.only or k in args.only.split(",")]
    print(f"# {len(os.sched_getaffinity(0))} CPUs, {args.runs} runs per kind, pypdf/Pillow in "
          f"worker processes (cpu {POLICY.check_cpu_seconds:g} s, "
          f"memory {POLICY.check_memory_mib} MiB)")
    header = (f"{'document':<17} {'size':>9} {'full med':>9} {'full p95':>9} "
              f"{'struct med':>10} {'struct p95':>10} {'worker RSS':>10}")
    print(header)
    with tempfile.TemporaryDirectory() as d:
        uploads = Path(d)
        for kind in chosen:
            name, build = kinds[kind]
            path = uploads / name
            path.write_bytes(build())
            file_checks._SANDBOX.close()  # a fresh worker: its VmHWM is this kind's
            result = check_file(path, uploads, POLICY, name)
            full = _timed(lambda p=path, n=name: check_file(p, uploads, POLICY, n), args.runs)
            structure = _structure_timed(_structure_only(path, uploads), args.runs)
            shown = file_checks._human(result.size)
            print(f"{kind:<17} {shown:>9} {statistics.median(full):>9.1f} "
                  f"{_p95(full):>9.1f} {statistics.median(structure):>10.1f} "
                  f"{_p95(structure):>10.1f} {_worker_peak_mib():>8.1f}Mi")
            path.unlink()
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"# times in ms; this process's peak RSS {own:.1f} MiB (it builds the documents)")
    print(f"# command: .venv/bin/python bench/document_checks.py {' '.join(sys.argv[1:])}".rstrip())
    file_checks._SANDBOX.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
