"""The store: every SQL statement FormRelay's sidecar runs lives in this package."""

from sidecar.store.admin import AdminStore
from sidecar.store.chain import ChainStore
from sidecar.store.claim import ClaimStore
from sidecar.store.db import Database, DbSettings
from sidecar.store.incidents import Alert, FailedSummary, Incident, IncidentStore
from sidecar.store.jobs import JobStore
from sidecar.store.maintenance import Maintenance
from sidecar.store.nonces import NonceStore
from sidecar.store.rows import Document, Job, LogEntry, NewDocument, NewJob, Tables
from sidecar.store.sealed import SealStore
from sidecar.store.shared import SharedState
from sidecar.store.workers import Worker, WorkerStore
from sidecar.store.wpforms import Entry, WPFormsReader


class Store(JobStore, ClaimStore, ChainStore, WPFormsReader, Maintenance, WorkerStore, SharedState,
            AdminStore, NonceStore, IncidentStore, SealStore):
    """Jobs, documents, log, claims, seen nonces and incidents on one WordPress database and
    prefix."""


__all__ = [
    "Alert", "Database", "DbSettings", "Document", "Entry", "FailedSummary", "Incident", "Job",
    "LogEntry", "NewDocument", "NewJob", "Store", "Tables", "Worker",
]
