"""The store: every SQL statement FormRelay's sidecar runs lives in this package."""

from sidecar.store.claim import ClaimStore
from sidecar.store.db import Database, DbSettings
from sidecar.store.jobs import JobStore
from sidecar.store.rows import Document, Job, LogEntry, NewDocument, NewJob, Tables


class Store(JobStore, ClaimStore):
    """Jobs, documents, log and claims on one WordPress database and table prefix."""


__all__ = [
    "Database", "DbSettings", "Document", "Job", "LogEntry", "NewDocument", "NewJob", "Store",
    "Tables",
]
