"""File checks: where a document is, its size, its libmagic type, its names, its hash."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import tempfile
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from devstack import samples
from sidecar import file_checks
from sidecar.errors import ConfigError, RejectedFile
from sidecar.file_checks import CheckedFile, FilePolicy, check_file, resolve_inside, sha256_fd

pytestmark = pytest.mark.unit

DOCUMENT_KINDS = ["pdf", "jpeg", "png", "tiff", "heic"]
POLICY = FilePolicy()
ALLOWED = "(allowed: PDF, JPEG, PNG, TIFF, HEIC)"


@pytest.fixture
def uploads(tmp_path: Path) -> Path:
    """An uploads dir shaped like WordPress's, beside a folder that is outside it."""
    folder = tmp_path / "uploads" / "wpforms" / "12-0123456789abcdef0123456789abcdef"
    folder.mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    return tmp_path / "uploads"


def folder(uploads: Path) -> Path:
    return next((uploads / "wpforms").iterdir())


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rejected(path: str | Path, uploads: Path, policy: FilePolicy = POLICY,
             declared_name: str | None = None) -> str:
    with pytest.raises(RejectedFile) as caught:
        check_file(path, uploads, policy, declared_name)
    return str(caught.value)


# --- the samples themselves --------------------------------------------------------

@pytest.mark.parametrize("kind", list(samples.WRITERS))
def test_samples_have_the_exact_size_the_expected_type_and_fixed_content(
        kind: str, tmp_path: Path) -> None:
    write = samples.WRITERS[kind]
    low = samples.MIN_SIZES[kind]
    for size in sorted({low, low + 1, low + 2, low + 3, low + 7, 1023, 1024, 70_000}):
        if size < low:
            continue
        path = write(tmp_path / f"{kind}-{size}{samples.EXTENSIONS[kind]}", size)
        assert path.stat().st_size == size
        assert file_checks.detect_mime(path.read_bytes()[:8192]) == samples.EXPECTED_MIME[kind]
    again = write(tmp_path / "again", 70_000)
    assert again.read_bytes() == path.read_bytes()
    with pytest.raises(ValueError, match="at least"):
        write(tmp_path / "tiny", low - 1)


# --- accepted documents ------------------------------------------------------------

@pytest.mark.parametrize("kind", DOCUMENT_KINDS)
def test_each_allowed_type_is_accepted_with_its_type_size_and_hash(
        kind: str, uploads: Path) -> None:
    ext = samples.EXTENSIONS[kind]
    path = samples.WRITERS[kind](folder(uploads) / f"Referral-{'ab' * 16}{ext}", 5000)
    result = check_file(path, uploads, POLICY, declared_name=f"Referral{ext.upper()}")
    assert result == CheckedFile(path=path.resolve(), size=5000,
                                 mime=samples.EXPECTED_MIME[kind], sha256=sha(path))


def test_heif_branded_mif1_is_reported_as_image_heif_and_accepted(uploads: Path) -> None:
    path = samples.write_heic(folder(uploads) / "photo.heif", 3000)
    data = bytearray(path.read_bytes())
    assert data[8:12] == b"heic"
    data[8:12] = b"mif1"
    path.write_bytes(bytes(data))
    result = check_file(path, uploads, POLICY, declared_name="IMG_0001.HEIC")
    assert result.mime == "image/heif"


@pytest.mark.parametrize(("kind", "ext"), [
    ("jpeg", ".jpg"), ("jpeg", ".jpeg"), ("jpeg", ".jpe"), ("jpeg", ".JPG"),
    ("tiff", ".tif"), ("tiff", ".tiff"), ("heic", ".heic"), ("heic", ".heif"),
    ("pdf", ".Pdf"),
])
def test_every_listed_extension_of_a_type_is_accepted(kind: str, ext: str, uploads: Path) -> None:
    path = samples.WRITERS[kind](folder(uploads) / f"scan{ext}", 2000)
    assert check_file(path, uploads, POLICY, declared_name=f"scan{ext}").mime == \
        samples.EXPECTED_MIME[kind]


# --- not documents -----------------------------------------------------------------

def test_an_html_login_page_named_pdf_is_rejected_as_text_html(uploads: Path) -> None:
    path = samples.write_html_as_pdf(folder(uploads) / "Referral.pdf", 4000)
    assert rejected(path, uploads, declared_name="Referral.pdf") == \
        f"type text/html is not a document {ALLOWED}"


def test_plain_text_is_not_a_document(uploads: Path) -> None:
    path = samples.write_text(folder(uploads) / "notes.pdf", 2000)
    assert rejected(path, uploads) == f"type text/plain is not a document {ALLOWED}"


def test_a_type_outside_the_allow_list_is_named(uploads: Path) -> None:
    path = folder(uploads) / "archive.pdf"
    path.write_bytes(b"PK\x03\x04" + bytes(2000))
    reason = rejected(path, uploads)
    assert reason.startswith("type application/")
    assert reason.endswith(f"is not allowed {ALLOWED}")


def test_a_policy_can_narrow_the_allowed_types(uploads: Path) -> None:
    path = samples.write_png(folder(uploads) / "card.png", 2000)
    policy = FilePolicy(allowed_types=frozenset({"application/pdf"}))
    assert rejected(path, uploads, policy) == "type image/png is not allowed (allowed: PDF)"


# --- sizes -------------------------------------------------------------------------

def test_an_empty_file_is_rejected_as_empty(uploads: Path) -> None:
    path = folder(uploads) / "Referral.pdf"
    path.touch()
    assert rejected(path, uploads) == "file is 0 bytes (empty)"
    assert rejected(path, uploads, FilePolicy(min_bytes=0)) == "file is 0 bytes (empty)"


def test_below_the_minimum_is_rejected_and_the_minimum_itself_accepted(uploads: Path) -> None:
    small = samples.write_pdf(folder(uploads) / "small.pdf", 1023)
    assert rejected(small, uploads) == "file is 1023 bytes, under the 1.0 KiB minimum"
    exact = samples.write_pdf(folder(uploads) / "exact.pdf", 1024)
    assert check_file(exact, uploads, POLICY).size == 1024


def test_above_the_maximum_is_rejected_and_the_maximum_itself_accepted(uploads: Path) -> None:
    policy = FilePolicy(max_bytes=4096)
    over = samples.write_jpeg(folder(uploads) / "over.jpg", 4097)
    assert rejected(over, uploads, policy) == "file is 4097 bytes, over the 4096 bytes limit"
    exact = samples.write_jpeg(folder(uploads) / "exact.jpg", 4096)
    assert check_file(exact, uploads, policy).size == 4096


def test_a_large_file_is_described_in_mib(uploads: Path) -> None:
    path = samples.write_pdf(folder(uploads) / "big.pdf", 2000)
    os.truncate(path, int(30.2 * 1024 * 1024))  # sparse: the size is what is checked
    assert rejected(path, uploads) == "file is 30.2 MiB, over the 25.0 MiB limit"


# --- where the file is -------------------------------------------------------------

def test_a_symlink_from_inside_to_a_file_outside_is_refused(uploads: Path) -> None:
    target = samples.write_pdf(uploads.parent / "outside" / "secret.pdf", 2000)
    link = folder(uploads) / "Referral.pdf"
    link.symlink_to(target)
    assert rejected(link, uploads) == "path resolves outside the uploads directory"
    with pytest.raises(RejectedFile, match="outside the uploads directory"):
        resolve_inside(link, uploads)


def test_a_symlink_from_inside_to_inside_is_followed(uploads: Path) -> None:
    target = samples.write_pdf(uploads / "media" / "Referral.pdf", 2000)
    link = folder(uploads) / "Referral.pdf"
    link.symlink_to(target)
    assert resolve_inside(link, uploads) == target.resolve()
    assert check_file(link, uploads, POLICY).path == target.resolve()


def test_an_uploads_dir_reached_through_a_symlink_is_its_real_self(uploads: Path) -> None:
    path = samples.write_pdf(folder(uploads) / "Referral.pdf", 2000)
    alias = uploads.parent / "uploads-link"
    alias.symlink_to(uploads)
    via_alias = alias / path.relative_to(uploads)
    assert check_file(via_alias, alias, POLICY).path == path.resolve()
    assert check_file(path, alias, POLICY).path == path.resolve()


@pytest.mark.parametrize("how", ["absolute", "relative"])
def test_dotdot_out_of_the_uploads_dir_is_refused(how: str, uploads: Path) -> None:
    samples.write_pdf(uploads.parent / "outside" / "secret.pdf", 2000)
    path = (uploads / "wpforms" / ".." / ".." / "outside" / "secret.pdf" if how == "absolute"
            else Path("wpforms/../../outside/secret.pdf"))
    assert rejected(path, uploads) == "path resolves outside the uploads directory"
    assert rejected(uploads / ".." / "outside" / "missing.pdf", uploads) == \
        "path resolves outside the uploads directory"


def test_dotdot_that_stays_inside_is_fine(uploads: Path) -> None:
    path = samples.write_pdf(folder(uploads) / "Referral.pdf", 2000)
    roundabout = folder(uploads) / ".." / folder(uploads).name / "Referral.pdf"
    assert check_file(roundabout, uploads, POLICY).path == path.resolve()


def test_a_relative_path_is_taken_under_the_uploads_dir_not_the_cwd(
        uploads: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = samples.write_pdf(folder(uploads) / "Referral.pdf", 2000)
    relative = path.relative_to(uploads)
    decoy = samples.write_pdf(uploads.parent / "cwd" / relative, 3000)
    monkeypatch.chdir(uploads.parent / "cwd")
    result = check_file(str(relative), uploads, POLICY)
    assert result.path == path.resolve()
    assert result.sha256 == sha(path) != sha(decoy)


def test_a_missing_file_and_a_dangling_symlink_do_not_exist(uploads: Path) -> None:
    assert rejected(folder(uploads) / "gone.pdf", uploads) == "file does not exist"
    link = folder(uploads) / "dangling.pdf"
    link.symlink_to(folder(uploads) / "gone.pdf")
    assert rejected(link, uploads) == "file does not exist"
    assert rejected(folder(uploads) / "gone.pdf" / "x.pdf", uploads) == "file does not exist"


def test_a_symlink_loop_is_refused(uploads: Path) -> None:
    a, b = folder(uploads) / "a.pdf", folder(uploads) / "b.pdf"
    a.symlink_to(b)
    b.symlink_to(a)
    assert rejected(a, uploads) == "path is a symlink loop"


def test_a_file_with_no_recorded_location_is_refused_by_name(uploads: Path) -> None:
    assert rejected("", uploads) == "no location was recorded for this file"


def test_a_directory_is_refused(uploads: Path) -> None:
    assert rejected(folder(uploads), uploads) == "path is a directory, not a file"
    assert rejected(uploads, uploads) == "path is a directory, not a file"
    assert rejected(".", uploads) == "path is a directory, not a file"


@pytest.mark.timeout(20)
def test_a_fifo_is_refused_without_blocking(uploads: Path) -> None:
    fifo = folder(uploads) / "Referral.pdf"
    os.mkfifo(fifo)
    assert rejected(fifo, uploads) == "path is not a regular file"


def test_a_socket_is_refused(uploads: Path) -> None:
    """Any non-regular file (a socket here: no privileges needed, unlike a device node)."""
    path = folder(uploads) / "null.pdf"
    cwd = os.getcwd()
    os.chdir(path.parent)  # bind by a short relative name: socket paths are limited to 108 bytes
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(path.name)
            assert rejected(path, uploads) == "path is not a regular file"
    finally:
        os.chdir(cwd)


def test_a_missing_uploads_dir_is_a_config_error_not_a_rejected_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        check_file(tmp_path / "nowhere" / "a.pdf", tmp_path / "nowhere", POLICY)


def test_a_nul_byte_in_the_path_is_refused(uploads: Path) -> None:
    assert rejected(str(folder(uploads) / "a\x00.pdf"), uploads) == "path is not valid"


# --- files that change between the path check and the open -------------------------

Swap = Callable[[Path, Path], None]


def swapping_after_resolve(monkeypatch: pytest.MonkeyPatch, swap: Swap) -> None:
    real_resolve = file_checks._resolve

    def resolve_then_swap(path: str | Path, uploads_dir: Path) -> tuple[Path, Path]:
        root, real = real_resolve(path, uploads_dir)
        swap(root, real)
        return root, real

    monkeypatch.setattr(file_checks, "_resolve", resolve_then_swap)


@pytest.mark.timeout(20)
def test_a_file_swapped_for_a_fifo_after_the_path_check_is_refused_without_blocking(
        uploads: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = samples.write_pdf(folder(uploads) / "Referral.pdf", 2000)

    def to_fifo(root: Path, real: Path) -> None:
        real.unlink()
        os.mkfifo(real)

    swapping_after_resolve(monkeypatch, to_fifo)
    assert rejected(path, uploads) == "path is not a regular file"


@pytest.mark.parametrize("what", ["file", "folder"])
def test_a_symlink_swapped_in_after_the_path_check_is_not_followed(
        what: str, uploads: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = samples.write_pdf(folder(uploads) / "Referral.pdf", 2000)
    outside = uploads.parent / "outside" / folder(uploads).name
    samples.write_pdf(outside / "Referral.pdf", 2000)

    def to_link(root: Path, real: Path) -> None:
        victim = real if what == "file" else real.parent
        victim.rename(victim.with_name("moved"))
        victim.symlink_to(outside / "Referral.pdf" if what == "file" else outside)

    swapping_after_resolve(monkeypatch, to_link)
    assert rejected(path, uploads) == "file changed while it was being checked"


def test_a_file_that_grows_while_it_is_hashed_is_refused(
        uploads: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = samples.write_pdf(folder(uploads) / "Referral.pdf", 2000)
    real_hash = file_checks.sha256_fd

    def append_then_hash(fd: int, chunk_size: int = 1024) -> tuple[str, int]:
        with path.open("ab") as f:
            f.write(b"%more\n")
        return real_hash(fd, chunk_size)

    monkeypatch.setattr(file_checks, "sha256_fd", append_then_hash)
    assert rejected(path, uploads) == "file changed while it was being checked"


# --- names -------------------------------------------------------------------------

def test_png_bytes_stored_as_pdf_are_rejected(uploads: Path) -> None:
    path = samples.write_png(folder(uploads) / "card.pdf", 2000)
    assert rejected(path, uploads) == \
        "extension .pdf of the stored file name does not match type image/png"


def test_the_original_file_name_must_match_too(uploads: Path) -> None:
    path = samples.write_pdf(folder(uploads) / "Referral.pdf", 2000)
    assert rejected(path, uploads, declared_name="Referral.png") == \
        "extension .png of the original file name does not match type application/pdf"
    assert rejected(path, uploads, declared_name="Referral") == \
        "original file name has no extension (type application/pdf)"
    assert rejected(path, uploads, declared_name=r"C:\scans\Referral.jpg") == \
        "extension .jpg of the original file name does not match type application/pdf"
    assert check_file(path, uploads, POLICY, declared_name=r"C:\scans\Referral.pdf").size == 2000


def test_a_stored_file_without_an_extension_is_rejected(uploads: Path) -> None:
    path = samples.write_pdf(folder(uploads) / "Referral", 2000)
    assert rejected(path, uploads) == "stored file name has no extension (type application/pdf)"


def test_an_extension_that_may_be_part_of_a_name_is_not_shown(uploads: Path) -> None:
    path = samples.write_pdf(folder(uploads) / "Referral.pdf", 2000)
    reason = rejected(path, uploads, declared_name="Jane.Doe")
    assert reason == "an unlisted extension of the original file name does not match " \
                     "type application/pdf"


# --- reasons carry no path and no content ------------------------------------------

SECRET_DIR = "Jane-Doe-1980-02-01"


def make_case(case: str, base: Path) -> tuple[Path, FilePolicy, str | None]:
    """A rejected file under a folder and name that carry 'patient' data."""
    where = base / SECRET_DIR
    name = where / "Jane-Doe-referral.pdf"
    policy, declared = POLICY, None
    if case == "html":
        samples.write_html_as_pdf(name, 3000)
    elif case == "text":
        samples.write_text(name, 3000)
    elif case == "empty":
        name.parent.mkdir(parents=True, exist_ok=True)
        name.touch()
    elif case == "small":
        samples.write_pdf(name, 500)
    elif case == "large":
        samples.write_pdf(name, 5000)
        policy = FilePolicy(max_bytes=4096)
    elif case == "png_as_pdf":
        samples.write_png(name, 3000)
    elif case == "declared":
        samples.write_pdf(name, 3000)
        declared = "Jane Doe 1980-02-01.docx"
    elif case == "missing":
        name.parent.mkdir(parents=True, exist_ok=True)
    elif case == "outside":
        target = samples.write_pdf(base.parent / "outside" / SECRET_DIR / "x.pdf", 3000)
        name.parent.mkdir(parents=True, exist_ok=True)
        name.symlink_to(target)
    elif case == "directory":
        name.mkdir(parents=True)
    return name, policy, declared


@pytest.mark.parametrize("case", ["html", "text", "empty", "small", "large", "png_as_pdf",
                                  "declared", "missing", "outside", "directory"])
def test_reasons_never_contain_the_path_the_name_or_the_bytes(case: str, uploads: Path) -> None:
    path, policy, declared = make_case(case, uploads)
    reason = rejected(path, uploads, policy, declared)
    for secret in (str(uploads), str(uploads.parent), SECRET_DIR, "Jane", "Doe", "1980"):
        assert secret not in reason
    for content in ("<", "Log In", "password", "FormRelay sample", "padding", "%PDF"):
        assert content.lower() not in reason.lower()
    assert reason.isascii()
    assert len(reason) < 120


# --- memory and threads ------------------------------------------------------------

def test_hashing_a_50_mib_file_keeps_memory_flat(tmp_path: Path) -> None:
    path = tmp_path / "zeros.bin"
    with path.open("wb") as f:
        f.truncate(50 * 1024 * 1024)  # sparse: 50 MiB of zeros
    expected = hashlib.sha256()
    zeros = bytes(1024 * 1024)
    for _ in range(50):
        expected.update(zeros)
    del zeros
    fd = os.open(path, os.O_RDONLY)
    tracemalloc.start()
    try:
        digest, read = sha256_fd(fd)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        os.close(fd)
    assert (digest, read) == (expected.hexdigest(), 50 * 1024 * 1024)
    assert peak < 2 * 1024 * 1024


def test_checking_a_50_mib_pdf_keeps_memory_flat(uploads: Path) -> None:
    path = samples.write_pdf(folder(uploads) / "scan.pdf", 50 * 1024 * 1024)
    policy = FilePolicy(max_bytes=64 * 1024 * 1024)
    file_checks.detect_mime(b"%PDF-1.4\n")  # libmagic's handle is made outside the count
    tracemalloc.start()
    try:
        result = check_file(path, uploads, policy)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.mime == "application/pdf"
    assert result.sha256 == sha(path)
    assert peak < 2 * 1024 * 1024


def test_type_detection_from_many_threads_gives_each_its_own_answer(tmp_path: Path) -> None:
    heads = {kind: samples.WRITERS[kind](tmp_path / kind, 3000).read_bytes()[:8192]
             for kind in samples.WRITERS}
    jobs = [kind for _ in range(40) for kind in heads]
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda kind: file_checks.detect_mime(heads[kind]), jobs))
    assert answers == [samples.EXPECTED_MIME[kind] for kind in jobs]


# --- any name, any bytes -----------------------------------------------------------

@cache
def sample_bytes() -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as d:
        return {kind: write(Path(d) / kind, 1500).read_bytes()
                for kind, write in samples.WRITERS.items()}


NAME_CHARS = st.characters(exclude_categories=["Cs"], exclude_characters="/\x00")
EXTS = [".pdf", ".PDF", ".jpg", ".jpeg", ".png", ".tif", ".heic", ".heif", ".txt", ".html",
        "", "."]
stems = st.text(NAME_CHARS, max_size=30)


def named(stem: str, ext: str) -> str:
    return f"PATIENT{stem}{ext}"


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, bytes, str | None]:
    """Anything at all, or (half the time) a sample, cut or extended, under its own names."""
    if draw(st.booleans()):
        name = draw(st.builds(named, stems, st.sampled_from(EXTS)))
        data = draw(st.binary(max_size=2500))
        declared = draw(st.none() | st.builds(named, stems, st.sampled_from(EXTS)) | st.text())
    else:
        kind = draw(st.sampled_from(list(samples.WRITERS)))
        whole = sample_bytes()[kind]
        data = whole[:draw(st.integers(0, len(whole)))] + draw(st.binary(max_size=400))
        ext = samples.EXTENSIONS[kind]
        name = draw(st.builds(named, stems, st.just(ext)))
        declared = draw(st.none() | st.builds(named, stems, st.sampled_from([ext, ext.upper()])))
    return name, data, declared


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases(), relative=st.booleans())
def test_any_name_and_bytes_give_an_allowed_document_or_a_rejected_file(
        case: tuple[str, bytes, str | None], relative: bool) -> None:
    name, data, declared = case
    policy = FilePolicy(min_bytes=64, max_bytes=1800)
    with tempfile.TemporaryDirectory() as d:
        uploads = Path(d) / "uploads"
        uploads.mkdir()
        (uploads / name).write_bytes(data)
        try:
            result = check_file(name if relative else uploads / name, uploads, policy, declared)
        except RejectedFile as exc:
            event("rejected")
            reason = str(exc)
            assert reason
            assert d not in reason
            assert "PATIENT" not in reason
            return
        finally:
            shutil.rmtree(d, ignore_errors=True)
    event("accepted")
    assert result.mime in policy.allowed_types
    assert result.size == len(data)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
