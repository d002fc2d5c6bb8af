"""An error answer from a FHIR server as one of sidecar.errors' PartnerErrors.

The HTTP status decides the class as sidecar.partner_client does (5xx, 408, 425,
429: retryable; 401, 403 and 3xx: configuration; other 4xx: permanent). The
OperationOutcome's issue codes (error and fatal issues only) then refine it:
a server that says `throttled` or `transient` on a 400 or 422 asks for a retry,
and one that says `security` or `login` on any status has a credentials problem.

str(error) holds the status, the category and the issue codes (from FHIR's fixed
IssueType list: codes outside it are not shown). Each issue's diagnostics and
details.text, which may quote submitted values, go to `partner_text` only, for
the engine to mask (sidecar.failures).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import urllib3

from sidecar.errors import (
    Category,
    PartnerConfigError,
    PartnerError,
    PermanentError,
    RetryableError,
    category_for_status,
)
from sidecar.partner_client import (
    CONFIG_STATUS,
    MAX_PARTNER_TEXT,
    RETRYABLE_STATUS,
    _partner_message,
    parse_retry_after,
)

# http://hl7.org/fhir/R4/valueset-issue-type.html: the only codes ever put in str(error)
ISSUE_TYPES = frozenset({
    "invalid", "structure", "required", "value", "invariant", "security", "login",
    "unknown", "expired", "forbidden", "suppressed", "processing", "not-supported",
    "duplicate", "multiple-matches", "not-found", "deleted", "too-long", "code-invalid",
    "extension", "too-costly", "business-rule", "conflict", "transient", "lock-error",
    "no-store", "exception", "timeout", "incomplete", "throttled", "informational"})
# "exception" is transient in FHIR's hierarchy, but servers use it for their own bugs
# whatever the request: the HTTP status says more, so it is left out.
RETRYABLE_CODES = frozenset({"transient", "lock-error", "no-store", "timeout", "incomplete",
                             "throttled"})
CONFIG_CODES = frozenset({"security", "login", "unknown", "expired", "forbidden"})


def issues(body: Any) -> list[dict[str, Any]]:
    """The error and fatal issues of an OperationOutcome (none of anything else)."""
    if not isinstance(body, dict) or body.get("resourceType") != "OperationOutcome":
        return []
    found = body.get("issue")
    return [i for i in found if isinstance(i, dict) and i.get("severity", "error") in (
        "error", "fatal")] if isinstance(found, list) else []


def issue_text(found: list[dict[str, Any]]) -> str:
    """Each issue's diagnostics and details.text, raw (the caller masks them)."""
    parts: list[str] = []
    for issue in found:
        details = issue.get("details")
        for text in (issue.get("diagnostics"),
                     details.get("text") if isinstance(details, dict) else None):
            if isinstance(text, str) and text.strip() and text not in parts:
                parts.append(text.strip())
    return "; ".join(parts)[:MAX_PARTNER_TEXT]


def error_from(status: int, outcome: Any, text: str = "",
               headers: Mapping[str, str] | None = None) -> PartnerError:
    """The error for a refusal with `status`; `outcome` is the parsed body (or None),
    `text` the partner's message when the body is not an OperationOutcome."""
    found = issues(outcome)
    codes = [str(i.get("code")) for i in found if i.get("code") in ISSUE_TYPES]
    partner_text = issue_text(found) if found else text[:MAX_PARTNER_TEXT]
    category = category_for_status(status)
    shown = f" ({', '.join(dict.fromkeys(codes))})" if codes else ""
    retry_after = parse_retry_after((headers or {}).get("Retry-After"))
    if status in CONFIG_STATUS or 300 <= status < 400 or CONFIG_CODES.intersection(codes):
        if 300 <= status < 400:
            return PartnerConfigError(f"HTTP {status} {category}{shown}: check the FHIR"
                                      " base URL", status)
        return PartnerConfigError(f"HTTP {status} {category}{shown} (check the partner's"
                                  " credentials)", status, Category.AUTH, partner_text)
    if status >= 500 or status in RETRYABLE_STATUS or RETRYABLE_CODES.intersection(codes):
        if "throttled" in codes:
            category = Category.RATE_LIMITED
        return RetryableError(f"HTTP {status} {category}{shown}", status, retry_after,
                              category, partner_text)
    return PermanentError(f"HTTP {status} {category}{shown}", status, category, partner_text)


def error_for(resp: urllib3.BaseHTTPResponse, body: bytes | None) -> PartnerError:
    """The error for a refusal as it came back (`body` None: over the cap, not read)."""
    parsed: Any = None
    if body:
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
    text = "" if issues(parsed) else _partner_message(resp, body)
    return error_from(resp.status, parsed, text, resp.headers)
