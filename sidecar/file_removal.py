"""Removing a delivered document's file from uploads (FORMRELAY_DELETE_DELIVERED_FILES).

Once the partner has a document, its file in wp-content/uploads/wpforms/ is a
publicly downloadable copy of protected health information. With the option
on, the engine calls `remove_delivered` right after the upload is recorded:
it removes only the very file that was checked and uploaded. The path is
walked from the uploads directory's descriptor, one component at a time with
O_NOFOLLOW (as file_checks does), the last entry must be a regular file with
the device and inode of the checked descriptor, and it is unlinked through
its parent directory's descriptor. A file swapped in since the check, a
symlink, or anything outside uploads is left alone.

When the file cannot be removed (uploads mounted read-only, permission
denied, already gone) a warning log row says why; delivery is never affected
and the document stays uploaded. Log rows name ids and sizes, never a path or
a file name (those are values).
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from sidecar.file_checks import CheckedFile
from sidecar.store import LogEntry, Store

log = logging.getLogger("formrelay.file_removal")

_REASONS = {
    errno.EROFS: "the uploads directory is mounted read-only in the sidecar",
    errno.EACCES: "permission denied (the sidecar may not write to the uploads directory)",
    errno.EPERM: "permission denied (the file or its directory is protected)",
    errno.ENOENT: "the file is gone already",
    errno.ENOTDIR: "the file's directory changed since the check",
    errno.ELOOP: "the file's directory changed since the check",
    errno.EBUSY: "the file is busy",
}
SWAPPED = "the file was replaced since it was checked (another inode); it was left in place"


@dataclass(frozen=True)
class Removal:
    removed: bool
    reason: str = ""  # why not, when not removed


def _reason(exc: OSError) -> str:
    return _REASONS.get(exc.errno or 0, f"the file could not be removed (errno {exc.errno})")


def unlink_checked(uploads_dir: Path, checked: CheckedFile) -> Removal:
    """Unlink `checked.path` if it is still the file that was checked, inside uploads."""
    try:
        root = Path(uploads_dir).resolve(strict=True)
        parts = checked.path.relative_to(root).parts
    except (OSError, RuntimeError):
        return Removal(False, "the uploads directory does not exist")
    except ValueError:
        return Removal(False, "the file is not inside the uploads directory")
    if not parts or not checked.ino:
        return Removal(False, "the checked file is not known")
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_DIRECTORY
    try:
        fd = os.open(root, flags)
    except OSError as exc:
        return Removal(False, _reason(exc))
    try:
        for part in parts[:-1]:
            inner = os.open(part, flags, dir_fd=fd)
            os.close(fd)
            fd = inner
        info = os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
        if not stat.S_ISREG(info.st_mode) or (info.st_dev, info.st_ino) != (checked.dev,
                                                                           checked.ino):
            return Removal(False, SWAPPED)
        os.unlink(parts[-1], dir_fd=fd)
    except OSError as exc:
        return Removal(False, _reason(exc))
    finally:
        os.close(fd)
    return Removal(True)


def remove_delivered(store: Store, uploads_dir: Path, checked: CheckedFile, job_id: int,
                     document_id: int) -> Removal:
    """Remove an uploaded document's file and record the outcome; never raises."""
    try:
        outcome = unlink_checked(uploads_dir, checked)
    except Exception as exc:  # delivery is done: nothing here may undo or fail it
        outcome = Removal(False, f"the file could not be removed ({type(exc).__name__})")
    try:
        if outcome.removed:
            store.file_removed(document_id, job_id, LogEntry(
                "document.file_removed",
                f"file removed from uploads after delivery ({checked.size} bytes)"))
        else:
            store.log(LogEntry("document.file_not_removed",
                               f"file left in uploads after delivery: {outcome.reason}",
                               level="warning"), job_id, document_id)
    except Exception as exc:
        log.warning("document %s: the file removal's outcome (removed=%s) was not recorded: %s",
                    document_id, outcome.removed, type(exc).__name__)
    return outcome
