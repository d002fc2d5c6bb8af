"""The exceptions FormRelay raises, by what the caller should do about them.

FormRelayError
├── ConfigError          bad or missing settings: fix the configuration; never retried
├── SchemaError          tables missing or of another version: run `formrelay migrate`
└── StoreError           the database refused something the store expected to work
    ├── InvalidTransition  an event that the state machine does not allow in this status
    └── LeaseLost          a worker reported on work it no longer holds (a stale task)

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
