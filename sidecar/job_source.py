"""Where a job's submission is read from: its snapshot, else WPForms' own entry.

The snapshot (written by the bridge at capture) is the source of truth; when it
is unusable (an old or damaged shape, a damaged seal, or values dropped by
retention) the entry in WPForms' tables stands in, and a SubmissionError says why
neither could. A snapshot sealed to a key this sidecar lacks is not unusable: it
raises seal.UnknownKey, a configuration problem the step waits out (no fallback,
no attempt spent) until the key is added.
"""

from __future__ import annotations

from sidecar.errors import SubmissionError
from sidecar.seal import NO_KEYS, NotOpened, Opener
from sidecar.store import Job, Store
from sidecar.submission import Submission, from_snapshot, from_wpforms


def read(store: Store, job: Job, snapshot: str | None,
         opener: Opener | None = None) -> tuple[Submission, str]:
    """The job's snapshot (opened when sealed), else (when unusable) the entry in
    WPForms' own tables."""
    try:
        snapshot = (opener or NO_KEYS).open_snapshot(job.seal_key, snapshot)
        submission, why = from_snapshot(snapshot)
    except NotOpened as exc:
        submission, why = None, str(exc)
    if submission is not None:
        return submission, "snapshot"
    if job.values_dropped_at is not None and not snapshot:
        why = ("the submitted values were deleted by retention on"
               f" {job.values_dropped_at:%Y-%m-%d}")
    if job.entry_id <= 0:
        raise SubmissionError(f"{why}, and the entry was not stored (entry id 0)")
    try:
        entry = store.wpforms_entry(job.entry_id)
    except SubmissionError as exc:  # e.g. WPForms Lite: say first why it was needed
        raise SubmissionError(f"{why}, and {exc}") from None
    if entry is None:
        raise SubmissionError(f"{why}, and WPForms entry {job.entry_id} does not exist")
    if entry.status:
        raise SubmissionError(f"{why}, and WPForms entry {job.entry_id} is {entry.status!r}")
    try:
        found = from_wpforms(entry.fields, entry.form_id, entry.entry_id)
    except ValueError:
        raise SubmissionError(f"{why}, and WPForms entry {job.entry_id} has no readable"
                              " fields") from None
    return found, f"WPForms entry {job.entry_id} ({why})"
