"""The exceptions FormRelay raises, by what the caller should do about them.

FormRelayError
├── ConfigError          bad or missing settings: fix the configuration; never retried
├── SchemaError          tables missing or of another version: run `formrelay migrate`
├── StoreError           the database refused something the store expected to work
│   ├── InvalidTransition  an event that the state machine does not allow in this status
│   └── LeaseLost          a worker reported on work it no longer holds (a stale task)
├── PartnerError         the outcome of one request to the partner API
│   ├── RetryableError     worth another attempt later (timeouts, 5xx, 408, 425, 429)
│   ├── PermanentError     the partner refused this request for good (other 4xx)
│   └── PartnerConfigError credentials, URL or TLS are wrong: pause delivery, fail nothing
├── RejectedFile         a document failed a file check; retrying cannot fix it
└── SubmissionError      the submission cannot be read from the snapshot nor from WPForms

Messages carry ids, names and counts only, never submitted values.
"""

from __future__ import annotations


class FormRelayError(Exception):
    """Base class of every error FormRelay raises on purpose."""


class ConfigError(FormRelayError):
    """One or more settings are invalid; `problems` has one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class SchemaError(FormRelayError):
    """The database schema is missing, older or newer than this sidecar."""


class StoreError(FormRelayError):
    """A store operation could not be carried out."""


class InvalidTransition(StoreError):
    """The state machine has no edge for this status and event."""

    def __init__(self, kind: str, status: str, event: str) -> None:
        self.kind, self.status, self.event = kind, status, event
        super().__init__(f"{kind} in status {status!r} cannot take event {event!r}")


class LeaseLost(StoreError):
    """The work is no longer leased to this owner (expired, cancelled or taken)."""


class PartnerError(FormRelayError):
    """A partner request did not succeed. `status` is the HTTP status, if one came back."""

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class RetryableError(PartnerError):
    """Try again later; `retry_after` is the partner's own wish in seconds, if it said one."""

    def __init__(self, message: str, status: int | None = None,
                 retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message, status)


class PermanentError(PartnerError):
    """The partner will not accept this request as it is; the step fails now."""


class PartnerConfigError(PartnerError):
    """401/403, a bad URL or a TLS failure: no job is at fault, so none fails."""


class RejectedFile(FormRelayError):
    """A document failed a file check; the message is the reason (no file content)."""


class SubmissionError(FormRelayError):
    """Neither the job's snapshot nor WPForms' tables hold a usable submission."""
