"""What a failed step keeps of its failure: a category and a reason with no value in it.

A partner's answer is kept as "HTTP 422 validation: <the partner's text,
masked>": str(PartnerError) is the status and category, and the partner's
raw text (`PartnerError.partner_text`) goes through a Masker built from ALL
the job's submitted values and ALL its documents' original file names before
it is put into the reason. The raw text is kept nowhere: once masked it is
dropped with the exception. When the values cannot be read (no snapshot and
no WPForms entry), the partner's text is withheld rather than kept unmasked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from sidecar.errors import PartnerError
from sidecar.redact import Masker
from sidecar.submission import Submission

PARTNER_TEXT_LIMIT = 300  # characters of the partner's text kept (cut, then masked)
WITHHELD = "the partner's text is withheld: the job's values could not be read to mask it"

MaskerSource = Callable[[], Masker | None]
# A file field's value is its URL(s): only the last segment (the stored file name) is the
# person's; the site, wp-content/uploads/wpforms/<form>-<hash>/ are ours, and masking their
# words would mask the partner's "content", "uploads", "site" too.
_OUR_URL_PART = re.compile(r"^https?://[^\s/]+/(?:[^\s]*/)?", re.IGNORECASE)


def masker_for(submission: Submission | None, names: Iterable[str] = ()) -> Masker | None:
    """A masker of every value and file name of the submission, plus `names` (documents')."""
    if submission is None:
        return None
    values = [_OUR_URL_PART.sub("", v) for v in submission.values()]
    return Masker([*values, *(f.name for f in submission.files), *names])


def reason(exc: PartnerError, masker: MaskerSource) -> str:
    """The text a failed partner call leaves in last_error, the log row and the event line.

    `masker` is called only when the partner said something (the document step
    reads the job's snapshot for it).
    """
    if not exc.partner_text.strip():
        return str(exc)
    found = masker()
    if found is None:
        return f"{exc} ({WITHHELD})"
    masked = found.mask(exc.partner_text, PARTNER_TEXT_LIMIT)
    return f"{exc}: {masked}" if masked else str(exc)
