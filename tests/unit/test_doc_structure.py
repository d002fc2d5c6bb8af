"""Structural checks: a document must be, all through, what its type claims.

The pure parsers (`sidecar.doc_structure`, `sidecar.heif_boxes`) are tried on
bytes in memory; `check_file` is tried end to end, through the worker
processes of `sidecar.doc_sandbox` and their CPU-time, memory and wall bounds.
"""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
import signal
import struct
import sys
import tempfile
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from functools import cache
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PdfWriter

from devstack import samples
from sidecar import file_checks
from sidecar.doc_sandbox import Bounds, Sandbox
from sidecar.doc_structure import PDF_TAIL_ALLOWANCE, pdf_tail, structure_problem
from sidecar.errors import ConfigError, RejectedFile
from sidecar.file_checks import FilePolicy, check_file
from sidecar.heif_boxes import heif_problem

pytestmark = pytest.mark.unit

POLICY = FilePolicy(min_bytes=1)  # the size checks are test_file_checks.py's


@pytest.fixture
def uploads(tmp_path: Path) -> Path:
    (tmp_path / "uploads" / "wpforms" / "12-abc").mkdir(parents=True)
    return tmp_path / "uploads"


def put(uploads: Path, name: str, data: bytes) -> Path:
    path = uploads / "wpforms" / "12-abc" / name
    path.write_bytes(data)
    return path


@cache
def sample(kind: str, size: int = 5000) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        return samples.WRITERS[kind](Path(d) / kind, size).read_bytes()


def rejected(path: Path, uploads: Path, policy: FilePolicy = POLICY) -> str:
    """The reason `check_file` gives (the tests' own policies keep min_bytes=1)."""
    with pytest.raises(RejectedFile) as caught:
        check_file(path, uploads, policy)
    return str(caught.value)


# --- builders of broken and hostile files ------------------------------------------

LOGIN_PAGE = sample("html_as_pdf", 3000)


def pdf_from(objects: list[bytes], xref_extra: int = 0) -> bytes:
    """A PDF with these objects (1 is the catalog), a correct xref and trailer."""
    out, offsets = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    size = len(objects) + 1 + xref_extra
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"0000000000 00000 f \n" * xref_extra
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref)
    return bytes(out)


ONE_PAGE = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>"]


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_of(width: int, height: int, colour: int = 0, channels: int = 1,
           rows: int | None = None) -> bytes:
    """An 8-bit PNG of zero pixels, compressed as it streams; `rows` cuts the pixel data."""
    packer, parts = zlib.compressobj(9), []
    row = bytes(1 + width * channels)
    for _ in range(height if rows is None else rows):
        parts.append(packer.compress(row))
    parts.append(packer.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", b"".join(parts))
            + png_chunk(b"IEND", b""))


def pillow_bytes(fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image = Image.linear_gradient("L").resize((640, 480)).convert("RGB")
    if fmt == "TIFF" and options.pop("pages", None):
        image.save(out, fmt, save_all=True, append_images=[image.convert("L"), image],
                   **options)
    else:
        image.save(out, fmt, **options)
    return out.getvalue()


def pypdf_bytes(pages: int) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(595, 842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# --- PDF ---------------------------------------------------------------------------

def test_the_html_page_behind_a_pdf_header_from_the_issue_is_refused(uploads: Path) -> None:
    path = put(uploads, "Referral.pdf", b"%PDF-1.4\n" + LOGIN_PAGE)
    assert file_checks.detect_mime(path.read_bytes()[:8192]) == "application/pdf"
    assert rejected(path, uploads) == "PDF is truncated (no cross-reference table)"


def test_a_whole_pdf_with_an_html_page_glued_after_it_is_refused(uploads: Path) -> None:
    path = put(uploads, "Referral.pdf", sample("pdf") + LOGIN_PAGE)
    tail = len(LOGIN_PAGE.translate(None, b"\x00\t\n\x0c\r "))
    assert rejected(path, uploads) == \
        f"PDF has {tail / 1024:.1f} KiB of data after its end marker (%%EOF)"


def test_a_little_dust_after_the_end_marker_is_tolerated(uploads: Path) -> None:
    dust = b"\r\n\x00\x00" + b"x" * PDF_TAIL_ALLOWANCE + b"\n" * 500
    assert check_file(put(uploads, "a.pdf", sample("pdf") + dust), uploads, POLICY)
    more = b"x" * (PDF_TAIL_ALLOWANCE + 1)
    assert rejected(put(uploads, "b.pdf", sample("pdf") + more), uploads) == \
        f"PDF has {PDF_TAIL_ALLOWANCE + 1} bytes of data after its end marker (%%EOF)"


@pytest.mark.parametrize("keep", [0.5, 0.99])
def test_a_pdf_cut_short_by_a_broken_upload_is_refused(keep: float, uploads: Path) -> None:
    whole = pypdf_bytes(40)
    path = put(uploads, "Referral.pdf", whole[:int(len(whole) * keep)])
    assert rejected(path, uploads) == "PDF is truncated (no cross-reference table)"


def xref_stream_pdf() -> bytes:
    """PDF 1.5 style: the cross-reference table is a compressed XRef stream."""
    out, offsets = bytearray(b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n"), []
    for number, body in enumerate(ONE_PAGE, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref_at = len(out)
    rows = b"\x00" + bytes(4) + b"\xff\xff" + b"".join(
        b"\x01" + struct.pack(">IH", at, 0) for at in [*offsets, xref_at])
    data = zlib.compress(rows)
    out += (b"4 0 obj\n<< /Type /XRef /Size 5 /W [1 4 2] /Root 1 0 R /Filter /FlateDecode"
            b" /Length %d >>\nstream\n%s\nendstream\nendobj\n" % (len(data), data))
    out += b"startxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)


def test_a_pdf_with_a_compressed_xref_stream_passes_and_fails_when_broken(
        uploads: Path) -> None:
    data = xref_stream_pdf()
    assert check_file(put(uploads, "a.pdf", data), uploads, POLICY).size == len(data)
    stream = data.index(b"stream\n") + len(b"stream\n")
    broken = data[:stream] + bytes(8) + data[stream + 8:]  # the xref stream no longer inflates
    assert rejected(put(uploads, "b.pdf", broken), uploads) == \
        "PDF is damaged (bad cross-reference table or trailer)"


def test_a_pdf_whose_xref_points_past_its_end_is_truncated(uploads: Path) -> None:
    data = bytearray(pdf_from(ONE_PAGE))
    at = data.index(b" 65535 f \n") + len(b" 65535 f \n")  # object 1's offset, made huge
    data[at:at + 10] = b"9999999999"
    assert rejected(put(uploads, "a.pdf", bytes(data)), uploads) == \
        "PDF is truncated (objects listed past the end of the file)"


def test_a_pdf_whose_startxref_points_at_nothing_is_damaged(uploads: Path) -> None:
    data = pdf_from(ONE_PAGE)
    at = data.rindex(b"startxref\n") + len(b"startxref\n")
    broken = data[:at] + b"%d" % 20 + data[data.index(b"\n", at):]
    assert rejected(put(uploads, "a.pdf", broken), uploads) == \
        "PDF is damaged (bad cross-reference table or trailer)"


def test_a_pdf_without_pages_and_one_with_a_broken_page_tree(uploads: Path) -> None:
    empty = pdf_from([b"<< /Type /Catalog /Pages 2 0 R >>",
                      b"<< /Type /Pages /Kids [] /Count 0 >>"])
    assert rejected(put(uploads, "a.pdf", empty), uploads) == "PDF has no pages"
    dangling = pdf_from([b"<< /Type /Catalog /Pages 2 0 R >>",
                         b"<< /Type /Pages /Kids [7 0 R] /Count 1 >>"])
    assert rejected(put(uploads, "b.pdf", dangling), uploads) == \
        "PDF is damaged (page tree unreadable)"


def test_a_page_tree_that_fans_out_without_end_is_refused(uploads: Path) -> None:
    """Each level lists the next 40 times: 40**6 pages from 8 objects."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    for level in range(6):
        kids = b" ".join([b"%d 0 R" % (level + 3)] * 40)
        objects.append(b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, 40 ** (6 - level)))
    objects.append(b"<< /Type /Page /Parent 7 0 R /MediaBox [0 0 612 792] >>")
    reason = rejected(put(uploads, "a.pdf", pdf_from(objects)), uploads)
    assert reason == "PDF is damaged (page tree unreadable)"


def test_a_password_protected_pdf_cannot_be_checked_and_is_refused(uploads: Path) -> None:
    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    assert rejected(put(uploads, "a.pdf", out.getvalue()), uploads) == \
        "PDF is encrypted (its structure cannot be checked)"


@pytest.mark.parametrize("pages", [5, 200])
def test_pdfs_that_pypdf_writes_pass(pages: int, uploads: Path) -> None:
    data = pypdf_bytes(pages)
    result = check_file(put(uploads, "a.pdf", data), uploads, POLICY)
    assert result.sha256 == hashlib.sha256(data).hexdigest()


def test_pdf_tail_counts_only_non_whitespace_after_the_last_marker() -> None:
    assert pdf_tail(io.BytesIO(b"%PDF-1.4\n%%EOF\n"), 15) == 0
    data = b"%PDF\n%%EOF\nab %%EOF\r\n x y\x00"
    assert pdf_tail(io.BytesIO(data), len(data)) == 2
    assert pdf_tail(io.BytesIO(b"%PDF-1.4\nno end"), 15) is None
    big = b"%PDF\n%%EOF" + b"z" * 200_000  # the marker is three 64 KiB steps back
    assert pdf_tail(io.BytesIO(big), len(big)) == 200_000
    split = b"%PDF\n" + b" " * (65536 - 7) + b"%%EOF" + b"q" * 65536  # marker across a step
    assert pdf_tail(io.BytesIO(split), len(split)) == 65536


# --- JPEG, PNG, TIFF ---------------------------------------------------------------

@pytest.mark.parametrize(("fmt", "ext", "options"), [
    ("JPEG", "jpg", {"quality": 85}), ("JPEG", "jpg", {"progressive": True}),
    ("PNG", "png", {}), ("PNG", "png", {"optimize": True}),
    ("TIFF", "tif", {"compression": "tiff_lzw"}), ("TIFF", "tif", {"pages": 3}),
    ("TIFF", "tif", {"compression": "tiff_adobe_deflate"}),
])
def test_images_that_pillow_writes_pass(fmt: str, ext: str, options: dict[str, object],
                                        uploads: Path) -> None:
    data = pillow_bytes(fmt, **options)
    assert check_file(put(uploads, f"scan.{ext}", data), uploads, POLICY).size == len(data)


@pytest.mark.parametrize(("fmt", "ext"), [("JPEG", "jpg"), ("PNG", "png"), ("TIFF", "tif")])
def test_an_image_cut_short_is_truncated(fmt: str, ext: str, uploads: Path) -> None:
    data = pillow_bytes(fmt)
    for keep in (0.6, 0.95):
        path = put(uploads, f"scan.{ext}", data[:int(len(data) * keep)])
        assert rejected(path, uploads) == f"{fmt} is truncated"


def test_the_samples_cut_short_are_truncated(uploads: Path) -> None:
    assert rejected(put(uploads, "a.jpg", sample("jpeg")[:-1]), uploads) == "JPEG is truncated"
    assert rejected(put(uploads, "a.png", sample("png")[:-20]), uploads) == "PNG is truncated"


def test_a_png_with_a_bad_crc_is_damaged(uploads: Path) -> None:
    data = bytearray(pillow_bytes("PNG"))
    idat = data.index(b"IDAT")
    data[idat + 40] ^= 0xFF  # one bit flip in the pixel data: its chunk's CRC no longer fits
    assert rejected(put(uploads, "a.png", bytes(data)), uploads) == "PNG is damaged (bad CRC)"


def test_a_jpeg_with_garbage_instead_of_its_frame_header_is_damaged(uploads: Path) -> None:
    data = bytearray(pillow_bytes("JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = b"\x00\x00\x00\x00"  # height 0, width 0
    assert rejected(put(uploads, "a.jpg", bytes(data)), uploads) == \
        "JPEG is damaged (cannot be decoded)"


def test_a_decompression_bomb_is_refused_by_its_header_alone(uploads: Path) -> None:
    bomb = png_of(30_000, 30_000, rows=10)  # the header is enough: nothing is decoded
    assert len(bomb) < 1024
    assert rejected(put(uploads, "bomb.png", bomb), uploads) == \
        "PNG is 30000 x 30000 pixels, over the limit of 64 million"


def test_the_pixel_limit_is_the_policys(uploads: Path) -> None:
    path = put(uploads, "card.png", png_of(300, 200))
    assert check_file(path, uploads, POLICY).mime == "image/png"
    assert rejected(path, uploads, FilePolicy(min_bytes=1, max_pixels=50_000)) == \
        "PNG is 300 x 200 pixels, over the limit of 0.05 million"


# --- HEIC --------------------------------------------------------------------------

def heif(data: bytes) -> str | None:
    return heif_problem(io.BytesIO(data), len(data), "HEIC")


def test_the_heic_sample_passes_the_box_walk_and_its_breakages_do_not() -> None:
    whole = sample("heic", 3000)
    assert heif(whole) is None
    assert heif(whole[:-1]) == "HEIC is truncated (a box runs past the end of the file)"
    assert heif(whole + b"\x00\x00\x00") == "HEIC is truncated (a box header is cut short)"
    assert heif(whole + b"\x00\x00\x00\x04free") == \
        "HEIC is damaged (a box has an impossible size)"
    assert heif(whole[24:]) == "HEIC is damaged (the ftyp box is not first)"


def test_a_heic_without_meta_or_primary_image_is_refused() -> None:
    whole = sample("heic", 3000)
    no_meta = bytearray(whole)
    at = no_meta.index(b"meta")
    no_meta[at:at + 4] = b"free"
    assert heif(bytes(no_meta)) == "HEIC is damaged (no meta box)"
    other = bytearray(whole)
    at = other.index(b"pitm") + 8
    other[at:at + 2] = b"\x00\x09"  # primary item 9: not in iloc
    assert heif(bytes(other)) == "HEIC has no primary image"


def test_a_heic_whose_image_lies_past_the_end_is_truncated() -> None:
    whole = bytearray(sample("heic", 3000))
    at = whole.index(b"iloc") + 4 + 4 + 2 + 8  # version/flags, sizes, item count, id/ref/count
    whole[at + 4:at + 8] = struct.pack(">I", 10_000)  # the extent's length
    assert heif(bytes(whole)) == "HEIC is truncated (image data past the end of the file)"


def test_a_heic_file_goes_through_check_file(uploads: Path) -> None:
    assert check_file(put(uploads, "a.heic", sample("heic")), uploads, POLICY).mime == \
        "image/heic"
    assert rejected(put(uploads, "b.heic", sample("heic")[:-100]), uploads) == \
        "HEIC is truncated (a box runs past the end of the file)"


def test_types_without_a_parser_are_not_looked_at() -> None:
    assert structure_problem(io.BytesIO(b"x"), 1, "application/zip", "zip", 1) is None


# --- the descriptor, not the path --------------------------------------------------

def test_the_check_reads_the_open_descriptor_not_the_path_again(
        uploads: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = sample("pdf")
    path = put(uploads, "Referral.pdf", good)
    real_open = file_checks._open_beneath

    def open_then_replace(root: Path, real: Path) -> int:
        fd = real_open(root, real)
        broken = real.with_name("broken.pdf")
        broken.write_bytes(good[:len(good) // 2])
        broken.replace(real)  # the path is a truncated PDF now; the open file is whole
        return fd

    monkeypatch.setattr(file_checks, "_open_beneath", open_then_replace)
    assert check_file(path, uploads, POLICY).sha256 == hashlib.sha256(good).hexdigest()


# --- the bounds --------------------------------------------------------------------

def test_a_checker_that_cannot_start_is_a_config_error_not_a_rejection(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No document is at fault: the engine releases the step and delivery waits."""
    pool = Sandbox()
    fd = os.open(samples.write_pdf(tmp_path / "a.pdf", 2000), os.O_RDONLY)
    bounds = Bounds(1.0, 256 * 1024 * 1024, 1000)
    try:
        monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
        with pytest.raises(ConfigError, match="cannot be started"):
            pool.check(fd, 2000, "application/pdf", "PDF", bounds)
        monkeypatch.setattr(sys, "executable", "/bin/false")  # starts, never says ready
        with pytest.raises(ConfigError, match="did not start"):
            pool.check(fd, 2000, "application/pdf", "PDF", bounds)
        monkeypatch.undo()
        assert pool.check(fd, 2000, "application/pdf", "PDF", bounds) is None
        assert len(pool.pids()) == 1  # the failed starts left no slot taken
    finally:
        pool.close()
        os.close(fd)


def huge_xref_pdf() -> bytes:
    """One page and a million free xref entries: about a second of pypdf's CPU time."""
    return pdf_from(ONE_PAGE, xref_extra=1_000_000)


@pytest.mark.slow
def test_a_pdf_that_takes_longer_than_the_cpu_bound_is_refused_saying_so(uploads: Path) -> None:
    path = put(uploads, "big.pdf", huge_xref_pdf())
    quick = FilePolicy(min_bytes=1, check_cpu_seconds=0.2)
    assert rejected(path, uploads, quick) == "PDF could not be checked within the 0.2 s limit"
    assert check_file(put(uploads, "ok.pdf", sample("pdf")), uploads, quick).size == 5000


@pytest.mark.slow
def test_an_image_that_needs_more_than_the_memory_bound_is_refused_saying_so(
        uploads: Path) -> None:
    path = put(uploads, "scan.png", png_of(6000, 6000, colour=6, channels=4))  # 137 MiB RGBA
    small = FilePolicy(min_bytes=1, check_memory_mib=100)
    assert rejected(path, uploads, small) == "PNG could not be checked within the 100 MiB " \
                                             "memory limit"
    assert check_file(path, uploads, POLICY).mime == "image/png"  # the default bound: fine


def stopped_workers() -> Iterator[int]:
    for pid in file_checks._SANDBOX.pids():
        os.kill(pid, signal.SIGSTOP)
        yield pid


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_worker_that_does_not_answer_is_killed_at_the_wall_bound_and_replaced(
        uploads: Path) -> None:
    path = put(uploads, "a.pdf", sample("pdf"))
    quick = FilePolicy(min_bytes=1, check_cpu_seconds=0.1)  # wall bound: 3 x 0.1 + 5 s
    check_file(path, uploads, quick)  # at least one worker is up
    stopped = list(stopped_workers())
    assert stopped
    try:
        reasons = {rejected(path, uploads, quick) for _ in stopped}
    finally:
        for pid in stopped:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
    assert reasons == {"PDF could not be checked within the 0.1 s limit"}
    assert not set(stopped) & set(file_checks._SANDBOX.pids())
    assert check_file(path, uploads, quick).size == 5000


def test_workers_killed_while_idle_are_replaced_without_rejecting_anything(
        tmp_path: Path) -> None:
    pool = Sandbox(size=2)
    fd = os.open(samples.write_png(tmp_path / "a.png", 2000), os.O_RDONLY)
    bounds = Bounds(5.0, 256 * 1024 * 1024, 10**6)
    try:
        workers = [pool._take(), pool._take()]  # both slots, as two busy threads would
        for worker in workers:
            worker.answered = 1  # each has served a check before
            pool._give_back(worker, keep=True)
        before = pool.pids()
        assert len(before) == 2
        for pid in before:
            os.kill(pid, signal.SIGKILL)
        for worker in workers:
            worker.proc.wait(timeout=20)
        assert pool.check(fd, 2000, "image/png", "PNG", bounds) is None
        assert len(pool.pids()) == 1 and not set(before) & set(pool.pids())
    finally:
        pool.close()
        os.close(fd)


def test_many_threads_share_the_pool_and_each_gets_its_own_answer(uploads: Path) -> None:
    good = {kind: put(uploads, f"ok{samples.EXTENSIONS[kind]}", sample(kind))
            for kind in ("pdf", "jpeg", "png", "tiff", "heic")}
    cut = {kind: put(uploads, f"cut{samples.EXTENSIONS[kind]}", sample(kind)[:-300])
           for kind in ("pdf", "jpeg", "png", "heic")}
    expected = {path: None for path in good.values()}
    expected.update({cut["pdf"]: "PDF is truncated (no cross-reference table)",
                     cut["jpeg"]: "JPEG is truncated", cut["png"]: "PNG is truncated",
                     cut["heic"]: "HEIC is truncated (a box runs past the end of the file)"})

    def outcome(path: Path) -> str | None:
        try:
            check_file(path, uploads, POLICY)
        except RejectedFile as exc:
            return str(exc)
        return None

    jobs = list(expected) * 12
    with ThreadPoolExecutor(max_workers=8) as threads:
        answers = list(threads.map(outcome, jobs))
    assert answers == [expected[path] for path in jobs]
    assert len(file_checks._SANDBOX.pids()) <= file_checks._SANDBOX.size


def _check_in_child(path: str, uploads: str, out: multiprocessing.Queue[object]) -> None:
    try:
        check_file(Path(path), Path(uploads), POLICY)
        out.put(("ok", file_checks._SANDBOX.pids()))
    except BaseException as exc:  # reported to the parent, which fails the test
        out.put(("error", repr(exc)))


def test_a_forked_process_starts_its_own_workers(uploads: Path) -> None:
    """Huey's process workers fork: they must not talk to the parent's checker workers."""
    path = put(uploads, "a.pdf", sample("pdf"))
    check_file(path, uploads, POLICY)
    parents = set(file_checks._SANDBOX.pids())
    context = multiprocessing.get_context("fork")
    out: multiprocessing.Queue[object] = context.Queue()
    child = context.Process(target=_check_in_child, args=(str(path), str(uploads), out))
    child.start()
    status, detail = out.get(timeout=60)
    child.join(timeout=60)
    assert status == "ok", detail
    assert detail and not set(detail) & parents
    assert set(file_checks._SANDBOX.pids()) == parents  # the parent's are untouched


# --- every document the project itself generates as valid --------------------------

@pytest.mark.parametrize("kind", ["pdf", "jpeg", "png", "tiff", "heic"])
def test_the_samples_pass_at_every_size_the_demo_tests_and_chaos_use(kind: str,
                                                                    tmp_path: Path) -> None:
    """Chaos draws 1,536-8,192 bytes; tests and the demo use 1-70 KB; the bench 200 KB."""
    mime, label = samples.EXPECTED_MIME[kind], kind.upper()
    low = samples.MIN_SIZES[kind]
    for size in sorted({low, low + 1, low + 3, 1023, 1536, 2000, 3001, 4096, 8192, 16_400,
                        70_000, 200_000} - set(range(low))):
        path = samples.WRITERS[kind](tmp_path / f"{size}{samples.EXTENSIONS[kind]}", size)
        with path.open("rb") as f:
            assert structure_problem(f, size, mime, label, 64_000_000) is None, size
