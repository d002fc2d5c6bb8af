"""The exceptions FormRelay raises, by what the caller should do about them.

FormRelayError
├── ConfigError          bad or missing settings: fix the configuration; never retried
│   └── UsageError         command-line flags that do not fit together (exit 2, as argparse)
├── SchemaError          tables missing or of another version: run `formrelay migrate`
├── StoreError           the database refused something the store expected to work
│   ├── InvalidTransition  an event that the state machine does not allow in this status
│   ├── LeaseLost          a worker reported on work it no longer holds (a stale task)
│   └── TransactionConflict still deadlocked or waiting on a lock after every retry
├── PartnerError         the outcome of one request to the partner API
│   ├── RetryableError     worth another attempt later (timeouts, 5xx, 408, 425, 429)
│   ├── PermanentError     the partner refused this request for good (other 4xx)
│   └── PartnerConfigError credentials, URL or TLS are wrong: pause delivery, fail nothing
├── RejectedFile         a document failed a file check; retrying cannot fix it
└── SubmissionError      the submission cannot be read from the snapshot nor from WPForms

Messages carry ids, names and counts only, never submitted values. A
PartnerError's message is "HTTP 422 validation" (status and category); the
partner's own text is on `partner_text`, raw, for the engine to mask with the
job's values before anything keeps it (sidecar.failures).

`Category` is the one list of failure categories (jobs.error_category and
documents.error_category hold them; docs/dashboard.md lists them).
"""

from __future__ import annotations

from enum import StrEnum


class Category(StrEnum):
    """What kind of failure a step's last error is: searchable, alertable, value-free."""

    # partner answers, by HTTP status
    VALIDATION = "validation"  # 400, 422: the partner refused the data
    AUTH = "auth"  # 401, 403: credentials
    NOT_FOUND = "not_found"  # 404, 410: wrong path, or the record is gone
    CONFLICT = "conflict"  # 409
    TOO_LARGE = "too_large"  # 413
    RATE_LIMITED = "rate_limited"  # 429
    CLIENT = "client"  # any other 4xx (408 and 425 included)
    SERVER = "server"  # 5xx
    REDIRECT = "redirect"  # 3xx: the partner URL is wrong
    BAD_RESPONSE = "bad_response"  # a 2xx without the id, or an answer over 1 MiB
    # partner requests that got no answer
    TIMEOUT = "timeout"
    NETWORK = "network"  # could not connect
    TLS = "tls"
    BAD_URL = "bad_url"  # the partner URL is not valid
    # our own
    REJECTED_FILE = "rejected_file"  # a document failed a file check
    PAYLOAD = "payload"  # the form's payload template failed
    SUBMISSION = "submission"  # no usable submission (snapshot nor WPForms entry)
    NO_RECORD = "no_record"  # a document whose job has no partner record
    CONFIG = "config"  # our configuration or environment (e.g. the uploads mount is gone)
    PAUSED = "paused"  # given back unspent: delivery paused or the partner busy
    LEASE_EXPIRED = "lease_expired"  # the worker stopped mid-attempt
    CANCELLED = "cancelled"
    DOCUMENTS = "documents"  # a job whose documents failed (when they carry none)


def category_for_status(status: int) -> Category:
    """The category of a partner answer that is not a success."""
    named = {400: Category.VALIDATION, 422: Category.VALIDATION, 401: Category.AUTH,
             403: Category.AUTH, 404: Category.NOT_FOUND, 410: Category.NOT_FOUND,
             409: Category.CONFLICT, 413: Category.TOO_LARGE, 429: Category.RATE_LIMITED}
    if status in named:
        return named[status]
    if status >= 500:
        return Category.SERVER
    if 300 <= status < 400:
        return Category.REDIRECT
    if 200 <= status < 300:
        return Category.BAD_RESPONSE
    return Category.CLIENT


class FormRelayError(Exception):
    """Base class of every error FormRelay raises on purpose."""


class ConfigError(FormRelayError):
    """One or more settings are invalid; `problems` has one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class UsageError(ConfigError):
    """A command-line flag is wrong (exit 2, as argparse's own usage errors), not a setting."""


class SchemaError(FormRelayError):
    """The database schema is missing, older or newer than this sidecar."""


class StoreError(FormRelayError):
    """A store operation could not be carried out."""


class TransactionConflict(StoreError):
    """A store call hit a deadlock or a lock wait timeout on each of its attempts."""

    def __init__(self, call: str, errno: int, attempts: int) -> None:
        self.call, self.errno, self.attempts = call, errno, attempts
        reason = "deadlock" if errno == 1213 else "lock wait timeout"
        super().__init__(f"{call}: {reason} (MySQL error {errno}) on each of {attempts}"
                         " attempts; gave up")


class InvalidTransition(StoreError):
    """The state machine has no edge for this status and event."""

    def __init__(self, kind: str, status: str, event: str) -> None:
        self.kind, self.status, self.event = kind, status, event
        super().__init__(f"{kind} in status {status!r} cannot take event {event!r}")


class LeaseLost(StoreError):
    """The work is no longer leased to this owner (expired, cancelled or taken)."""


class PartnerError(FormRelayError):
    """A partner request did not succeed.

    `status` is the HTTP status, if one came back; `category` what kind of
    failure; `partner_text` the partner's own explanation, RAW: it may echo
    submitted values, so it is never in str(exc) and must go through the
    job's masker (sidecar.failures) before it is stored, logged or shown.
    """

    def __init__(self, message: str, status: int | None = None,
                 category: Category | None = None, partner_text: str = "") -> None:
        self.status = status
        self.category = category or (category_for_status(status) if status
                                     else Category.NETWORK)
        self.partner_text = partner_text
        super().__init__(message)


class RetryableError(PartnerError):
    """Try again later; `retry_after` is the partner's own wish in seconds, if it said one."""

    def __init__(self, message: str, status: int | None = None,
                 retry_after: float | None = None, category: Category | None = None,
                 partner_text: str = "") -> None:
        self.retry_after = retry_after
        super().__init__(message, status, category, partner_text)


class PermanentError(PartnerError):
    """The partner will not accept this request as it is; the step fails now."""


class PartnerConfigError(PartnerError):
    """401/403, a bad URL or a TLS failure: no job is at fault, so none fails."""


class RejectedFile(FormRelayError):
    """A document failed a file check; the message is the reason (no file content, no name)."""


class SubmissionError(FormRelayError):
    """Neither the job's snapshot nor WPForms' tables hold a usable submission."""
