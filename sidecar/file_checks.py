"""The checks a document passes before it is uploaded: where it is, its size, its type.

`check_file` resolves the path inside the uploads directory, opens it once
(each component with O_NOFOLLOW, from the uploads directory down) and takes the
size, the type and the SHA-256 from that one descriptor, so a file swapped
after the path check is not the one that gets judged. The type comes from the
bytes (libmagic), never from the name; the names must agree with it. Then the
file must be, all through, what its type claims: `sidecar.doc_structure` parses
it (pypdf, Pillow, an ISO-BMFF box walk) in a worker process of
`sidecar.doc_sandbox`, handed the same descriptor, under the CPU-time, memory
and pixel bounds of the policy. A file with more than one hard link is refused:
a hard link in uploads may be any file on the filesystem.

`open_checked` keeps that descriptor open (`OpenedFile`) for the upload: the
partner client streams from it (`VerifiedReader`), hashing as it reads, and the
upload is aborted if the bytes are not the checked ones. The path is never
opened again, so a symlink swapped in after the check sends nothing of its target.

Reasons in `RejectedFile` name no path and no content: only sizes, the detected
type and an extension from a fixed list (a user's "Jane.Doe" is not shown).
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path

import magic

from sidecar.doc_sandbox import Bounds, Sandbox
from sidecar.doc_structure import CHECKED_TYPES
from sidecar.errors import ConfigError, RejectedFile

KIB = 1024
MIB = 1024 * KIB
HEAD_BYTES = 8 * KIB
HASH_CHUNK = 256 * KIB

LABELS = {"application/pdf": "PDF", "image/jpeg": "JPEG", "image/png": "PNG",
          "image/tiff": "TIFF", "image/heic": "HEIC", "image/heif": "HEIC"}
"""Each allowed type's name in reasons; libmagic says image/heif for brand mif1."""

_HEIC = frozenset({"heic", "heif"})
EXTENSIONS: dict[str, frozenset[str]] = {
    "application/pdf": frozenset({"pdf"}), "image/jpeg": frozenset({"jpg", "jpeg", "jpe"}),
    "image/png": frozenset({"png"}), "image/tiff": frozenset({"tif", "tiff"}),
    "image/heic": _HEIC, "image/heif": _HEIC}
"""The extensions a name may have for each type; other types: their subtype."""

_SHOWN_EXTENSIONS = frozenset().union(*EXTENSIONS.values(), {
    "htm", "html", "xhtml", "php", "js", "txt", "csv", "json", "xml", "svg", "gif", "bmp",
    "webp", "avif", "doc", "docx", "odt", "rtf", "xls", "xlsx", "zip", "exe"})
_NOT_DOCUMENTS = frozenset({"application/xml", "application/xhtml+xml", "application/json",
                            "application/javascript", "application/x-sh", "image/svg+xml"})
_MIME_SHAPE = re.compile(r"[a-z0-9][a-z0-9.+-]{0,63}/[a-z0-9][a-z0-9.+-]{0,63}")


@dataclass(frozen=True)
class FilePolicy:
    """What a document may be: its size in bytes, inclusive, and its detected types.

    The structural check may spend `check_cpu_seconds` of CPU time and
    `check_memory_mib` of address space (the whole checker process) on one
    document; an image may have at most `max_pixels` pixels per frame.
    """

    min_bytes: int = KIB
    max_bytes: int = 25 * MIB
    allowed_types: frozenset[str] = frozenset(LABELS)
    check_cpu_seconds: float = 10.0
    check_memory_mib: int = 768
    max_pixels: int = 64_000_000


@dataclass(frozen=True)
class CheckedFile:
    """A document that passed: its real path, size, libmagic type and hex SHA-256, and the
    device and inode of the descriptor checked (file removal unlinks only that file)."""

    path: Path
    size: int
    mime: str
    sha256: str
    dev: int = field(default=0, compare=False)  # where the checked bytes were, not what
    ino: int = field(default=0, compare=False)  # they were: equal checks stay equal


_magic: magic.Magic | None = None
_magic_lock = threading.Lock()


def detect_mime(head: bytes) -> str:
    """libmagic's MIME type for these bytes; one shared handle, used under a lock."""
    global _magic
    with _magic_lock:
        if _magic is None:
            _magic = magic.Magic(mime=True)
        try:
            mime = _magic.from_buffer(head).strip().lower()
        except magic.MagicException:
            raise RejectedFile("type could not be detected") from None
    return mime if _MIME_SHAPE.fullmatch(mime) else "application/octet-stream"


def sha256_fd(fd: int, chunk_size: int = HASH_CHUNK) -> tuple[str, int]:
    """Hex SHA-256 of the file behind `fd` from byte 0, and the bytes read.

    Reads into one reused buffer (positioned reads, the fd's offset is left
    alone), so memory does not grow with the file.
    """
    digest = hashlib.sha256()
    buf = bytearray(chunk_size)
    view = memoryview(buf)
    total = 0
    while n := os.preadv(fd, [buf], total):
        digest.update(view[:n])
        total += n
    return digest.hexdigest(), total


_OS_REASONS = {errno.ENOENT: "file does not exist", errno.ENOTDIR: "file does not exist",
               errno.EACCES: "file is not readable (permission denied)",
               errno.EPERM: "file is not readable (permission denied)",
               errno.ELOOP: "path is a symlink loop", errno.ENAMETOOLONG: "path is too long"}


def _os_reason(exc: OSError) -> str:
    return _OS_REASONS.get(exc.errno or 0, "file cannot be opened")


def _resolve(path: str | Path, uploads_dir: Path) -> tuple[Path, Path]:
    """(real uploads dir, real path of the regular file), or RejectedFile."""
    try:
        root = Path(uploads_dir).resolve(strict=True)
    except (OSError, RuntimeError):
        raise ConfigError([f"uploads directory {uploads_dir} does not exist"]) from None
    if not root.is_dir():
        raise ConfigError([f"uploads directory {uploads_dir} is not a directory"])
    if not str(path):  # neither the snapshot nor WPForms said where the file is
        raise RejectedFile("no location was recorded for this file")
    candidate = Path(path)
    if not candidate.is_absolute():
        candidate = root / candidate
    outside = RejectedFile("path resolves outside the uploads directory")
    try:
        real = Path(os.path.realpath(candidate, strict=True))
        info = os.stat(real)
    except ValueError:  # a NUL byte
        raise RejectedFile("path is not valid") from None
    except OSError as exc:  # say "outside" for ../../missing too, not whether it exists
        inside = Path(os.path.realpath(candidate)).is_relative_to(root)
        raise (RejectedFile(_os_reason(exc)) if inside else outside) from None
    if not real.is_relative_to(root):
        raise outside
    if stat.S_ISDIR(info.st_mode):
        raise RejectedFile("path is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise RejectedFile("path is not a regular file")
    return root, real


def resolve_inside(path: str | Path, uploads_dir: Path) -> Path:
    """The real path of a regular file inside the real `uploads_dir`, or RejectedFile.

    A relative `path` is taken relative to `uploads_dir`. Symlinks and `..` are
    followed, and refused if they lead outside. A missing uploads directory is a
    ConfigError: no document is at fault.
    """
    return _resolve(path, uploads_dir)[1]


def _open_beneath(root: Path, real: Path) -> int:
    """Open `real` read-only by walking down from `root`, following no symlink."""
    flags = os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
    parts = real.relative_to(root).parts
    fd = os.open(root, flags | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            inner = os.open(part, flags | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
        return os.open(parts[-1], flags | os.O_NONBLOCK, dir_fd=fd)  # a fifo must not block
    except OSError as exc:
        changed = exc.errno in (errno.ELOOP, errno.ENOTDIR)  # became a symlink since _resolve
        raise RejectedFile("file changed while it was being checked" if changed
                           else _os_reason(exc)) from None
    finally:
        os.close(fd)


def _human(n: int) -> str:
    if n < KIB:
        return f"{n} bytes"
    return f"{n / KIB:.1f} KiB" if n < MIB else f"{n / MIB:.1f} MiB"


def _check_size(size: int, policy: FilePolicy) -> None:
    if size == 0:
        raise RejectedFile("file is 0 bytes (empty)")
    if policy.min_bytes <= size <= policy.max_bytes:
        return
    limit, words = ((policy.min_bytes, "under the {} minimum") if size < policy.min_bytes
                    else (policy.max_bytes, "over the {} limit"))
    shown, cap = _human(size), _human(limit)
    if shown == cap:  # "25.0 MiB, over the 25.0 MiB limit" says nothing
        shown, cap = f"{size} bytes", f"{limit} bytes"
    raise RejectedFile(f"file is {shown}, {words.format(cap)}")


def _allowed_list(policy: FilePolicy) -> str:
    known = [label for t, label in LABELS.items() if t in policy.allowed_types]
    other = sorted(t for t in policy.allowed_types if t not in LABELS)
    return ", ".join(dict.fromkeys(known + other))


def _check_type(mime: str, policy: FilePolicy) -> None:
    if mime in policy.allowed_types:
        return
    if mime.startswith("text/") or mime in _NOT_DOCUMENTS or mime.endswith("+xml"):
        raise RejectedFile(f"type {mime} is not a document (allowed: {_allowed_list(policy)})")
    raise RejectedFile(f"type {mime} is not allowed (allowed: {_allowed_list(policy)})")


def _check_extension(name: str, mime: str, whose: str) -> None:
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    ext = base.rpartition(".")[2].lower() if "." in base else ""
    if not ext:
        raise RejectedFile(f"{whose} has no extension (type {mime})")
    if ext not in EXTENSIONS.get(mime, frozenset({mime.split("/")[-1]})):
        shown = f"extension .{ext}" if ext in _SHOWN_EXTENSIONS else "an unlisted extension"
        raise RejectedFile(f"{shown} of the {whose} does not match type {mime}")


_SANDBOX = Sandbox()


def _check_structure(fd: int, size: int, mime: str, policy: FilePolicy) -> None:
    if mime not in CHECKED_TYPES:
        return
    bounds = Bounds(policy.check_cpu_seconds, policy.check_memory_mib * MIB, policy.max_pixels)
    reason = _SANDBOX.check(fd, size, mime, LABELS.get(mime, mime), bounds)
    if reason is not None:
        raise RejectedFile(reason)


class FileChanged(RejectedFile):
    """The bytes read for the upload are not the bytes that were checked."""

    def __init__(self) -> None:
        super().__init__("file changed between check and upload")


class VerifiedReader:
    """The multipart body's file: the checked descriptor read from byte 0, hashed as it goes.

    Positioned reads of at most `chunk_size` bytes (the fd's offset is not used,
    so each attempt starts at 0). The read that would complete the file first
    checks the whole: the SHA-256 and the length must be the checked ones and
    nothing may follow; else FileChanged is raised instead of returning that last
    chunk, which aborts the request body (the partner gets a truncated request).
    `len()` is the bytes left, as requests_toolbelt's encoder expects.
    """

    def __init__(self, fd: int, checked: CheckedFile, chunk_size: int = HASH_CHUNK) -> None:
        self._fd, self._checked, self._chunk = fd, checked, chunk_size
        self._digest = hashlib.sha256()
        self._offset = 0

    def __len__(self) -> int:
        return self._checked.size - self._offset

    def rewind(self) -> None:
        """Back to byte 0 with a fresh hash: a request re-sent whole (the fhir-r4 client's
        one retry after a 401). The end-of-file check still runs on the second pass."""
        self._digest = hashlib.sha256()
        self._offset = 0

    def read(self, size: int | None = -1) -> bytes:
        left = len(self)
        want = min(self._chunk if size is None or size < 0 else size, left)
        if want <= 0:
            return b""
        data = os.pread(self._fd, want, self._offset)
        if not data:  # shorter than checked
            raise FileChanged()
        self._digest.update(data)
        self._offset += len(data)
        if self._offset == self._checked.size and (
                os.pread(self._fd, 1, self._offset)  # longer than checked
                or self._digest.hexdigest() != self._checked.sha256):
            raise FileChanged()
        return data


class OpenedFile:
    """A document that passed its checks, with the descriptor that was checked still open.

    Upload from `reader()`, never from the path: the path may point elsewhere
    by then (a symlink swapped in while the step waited for a partner slot).
    Close it (or use it as a context manager) in every path.
    """

    def __init__(self, fd: int, checked: CheckedFile) -> None:
        self._fd: int | None = fd
        self.checked = checked

    def reader(self) -> VerifiedReader:
        if self._fd is None:
            raise ValueError("the checked file is closed")
        return VerifiedReader(self._fd, self.checked)

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def __enter__(self) -> OpenedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_links(links: int) -> None:
    """A hard link in uploads can be a file from anywhere on the filesystem, and nothing in
    the name says so; WPForms never makes one, so more than one link is refused."""
    if links > 1:
        raise RejectedFile(f"file has {links} hard links; a hard-linked file may be a file"
                           " outside uploads")


def open_checked(path: str | Path, uploads_dir: Path, policy: FilePolicy,
                 declared_name: str | None = None) -> OpenedFile:
    """Check one document and keep its descriptor open for the upload; or RejectedFile with a
    reason a person can act on.

    `declared_name` is the user's original file name (WPForms' file_user_name);
    its extension and the stored file's must both fit the detected type.
    """
    root, real = _resolve(path, uploads_dir)
    fd = _open_beneath(root, real)
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            raise RejectedFile("path is not a regular file")
        _check_links(before.st_nlink)
        _check_size(before.st_size, policy)
        mime = detect_mime(os.pread(fd, HEAD_BYTES, 0))
        _check_type(mime, policy)
        _check_extension(real.name, mime, "stored file name")
        if declared_name is not None:
            _check_extension(declared_name, mime, "original file name")
        _check_structure(fd, before.st_size, mime, policy)
        sha256, hashed = sha256_fd(fd)
        after = os.fstat(fd)
        if hashed != before.st_size or after.st_mtime_ns != before.st_mtime_ns:
            raise RejectedFile("file changed while it was being checked")
    except BaseException:
        os.close(fd)
        raise
    return OpenedFile(fd, CheckedFile(path=real, size=before.st_size, mime=mime, sha256=sha256,
                                      dev=before.st_dev, ino=before.st_ino))


def check_file(path: str | Path, uploads_dir: Path, policy: FilePolicy,
               declared_name: str | None = None) -> CheckedFile:
    """`open_checked` without keeping the descriptor: what the document is, checked."""
    with open_checked(path, uploads_dir, policy, declared_name) as opened:
        return opened.checked
