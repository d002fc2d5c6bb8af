"""The delivery engine: one step of one job or document at a time.

`deliver_record(job_id)` sends a job's record (phase 1) and creates its
documents; `deliver_document(document_id)` uploads one document (phase 2).
Each begins by taking the step's lease from MySQL, so a duplicate, late or
stale task finds nothing to do. Each ends by writing the outcome (and its
log row) and ringing the doorbell for what comes next. All state is in MySQL:
a lost doorbell costs time, never a submission (the sweep rings again).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sidecar import delivery_settings, job_source, metrics
from sidecar.backoff import RetryPolicy
from sidecar.breaker import Breaker, Gate
from sidecar.doorbell import Doorbell
from sidecar.errors import (
    Category,
    ConfigError,
    LeaseLost,
    RejectedFile,
    SubmissionError,
)
from sidecar.failures import masker_for
from sidecar.file_checks import FileChanged, FilePolicy, open_checked
from sidecar.file_removal import remove_delivered
from sidecar.partner_profile import DocumentUpload, Partner, RecordRequest
from sidecar.partner_registry import Partners, UnknownPartner
from sidecar.pause import ROW as PAUSE_ROW
from sidecar.pause import Pause, row_of
from sidecar.payload import PayloadError, PayloadRenderer
from sidecar.redact import Masker
from sidecar.seal import NO_KEYS, NotOpened, Opener, UnknownKey
from sidecar.states import CLAIMABLE, Event, EventKind
from sidecar.step_calls import StepCalls
from sidecar.store import Document, Job, LogEntry, NewDocument, Store
from sidecar.store.chain import Next, since
from sidecar.store.claim import PartnerRow
from sidecar.submission import FileRef, Submission, locate
from sidecar.throttle import Throttle

log = logging.getLogger("formrelay.engine")
K = EventKind


@dataclass(frozen=True)
class EngineSettings:
    uploads_dir: Path
    lease_seconds: int = 300
    max_attempts: int = 10
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    files: FilePolicy = field(default_factory=FilePolicy)
    delete_delivered_files: bool = False  # remove an uploaded document's file (file_removal)


@dataclass(frozen=True)
class Leased:
    """A document this worker holds, the pause as last read, and (chained) what the
    previous document's outcome saw of the job."""

    document: Document
    owner: str
    seen: tuple[Gate, Breaker]
    after: Next | None = None


class Engine(StepCalls):
    """Without `pause` and `throttle` (tests), delivery never pauses and is not paced."""

    def __init__(self, store: Store, client: Partner | Partners, renderer: PayloadRenderer,
                 doorbell: Doorbell, settings: EngineSettings, pause: Pause | None = None,
                 throttle: Throttle | None = None, worker_id: str | None = None,
                 opener: Opener | None = None) -> None:
        self.partners = client if isinstance(client, Partners) else Partners.single(
            client, pause, throttle)
        self.store, self.renderer = store, renderer
        self.delivery = delivery_settings.Cached(store)  # templates of jobs naming none
        self.doorbell, self.settings = doorbell, settings
        self.opener = opener or NO_KEYS  # sealed submissions' keys (seal.py)
        # The heartbeat's id (sidecar.cli.Heartbeat) when a worker runs this engine.
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"

    @property
    def client(self) -> Partner:
        """The default partner's client (the only one, unless partners are named)."""
        return self.partners.default_lane.client

    @client.setter
    def client(self, client: Partner) -> None:
        self.partners.default_lane.client = client

    @property
    def pause(self) -> Pause | None:
        """The default partner's outage pause (each partner has its own)."""
        return self.partners.default_lane.pause

    @pause.setter
    def pause(self, pause: Pause | None) -> None:
        self.partners.default_lane.pause = pause

    @property
    def throttle(self) -> Throttle | None:
        return self.partners.default_lane.throttle

    @throttle.setter
    def throttle(self, throttle: Throttle | None) -> None:
        self.partners.default_lane.throttle = throttle

    def _watch(self) -> PartnerRow:
        """A claim reads the pause row of the claimed row's own partner."""
        return PartnerRow(PAUSE_ROW, self.partners.default_name)

    def _owner(self) -> str:
        """A lease owner per claim, so a late report of an old claim is always refused."""
        return f"{self.worker_id}:{secrets.token_hex(4)}"

    # ---- phase 1: the record ------------------------------------------------------------

    def deliver_record(self, job_id: int) -> None:
        owner = self._owner()
        claimed = self.store.claim_job_for_delivery(
            job_id, owner, self.settings.lease_seconds, self.settings.max_attempts,
            watch=self._watch(), admit=self._admit, partner=self.partners.default_name)
        if claimed is None:
            log.debug("job %s: not due, taken or paused; nothing to do", job_id)
            return
        job, snapshot, shared = claimed
        claimed_at = time.monotonic()
        seen = self._seen(job.partner, shared, job.updated_at)
        client = self._client_of(job, None, owner, "record")
        if client is None:
            return
        try:
            submission, source = job_source.read(self.store, job, snapshot, self.opener)
            rules = None if submission.template else self.delivery.get()
            payload = self.renderer.render(submission, _job_context(job, submission), rules,
                                           self.partners.template(job.partner))
        except (SubmissionError, PayloadError) as exc:
            category = Category.PAYLOAD if isinstance(exc, PayloadError) else Category.SUBMISSION
            self._report(job.id, None, owner, Event(K.PERMANENT_ERROR, str(exc),
                                                    category=category), "record")
            return
        except UnknownKey as exc:
            self._hold(job, None, owner, "record", exc)
            return
        documents = [self._new_document(submission, f) for f in submission.files]
        key = f"{job.reference}:{job.key_generation}"
        record = RecordRequest(payload, job.reference, job.form_id, submission.answers())
        accepted, elapsed = self._call(
            job, None, job.attempts, owner, "record",
            lambda: client.create_record(record, key), lambda: masker_for(submission),
            seen=seen)
        if accepted is None:
            return
        message = f"partner record {accepted.id} created from {source}" + (
            f", {len(documents)} documents to upload" if documents else "")
        metrics.step_outcome("record", K.RECORD_SENT, None)
        entry = LogEntry("record.{outcome}", message, http_status=accepted.status,
                         duration_ms=elapsed)
        next_owner = self._owner()
        try:  # the record's outcome leases the first document to this worker
            state, doc = self.store.record_sent(
                job, owner, accepted.id, documents, entry, since(job.updated_at, claimed_at),
                next_owner, self.settings.lease_seconds)
        except LeaseLost:
            log.warning("job %s: lease lost before the outcome was written", job.id)
            return
        job = replace(job, partner_record_id=accepted.id, phase=state.phase)
        first: Leased | None = None if doc is None else Leased(doc, next_owner, seen)
        while first is not None:  # the job's documents, in turn, with no queue between
            first = self._upload(first, job)

    # ---- phase 2: the documents ---------------------------------------------------------

    def _new_document(self, submission: Submission, f: FileRef) -> NewDocument:
        """A document row; its name and path sealed when this sidecar holds a key."""
        name, path, key = self.opener.seal_place(
            f.name, locate(f, self.settings.uploads_dir, self.store.attached_file))
        return NewDocument(f.field_id, f.position, name, path, f.size,
                           self.settings.max_attempts, submission.label(f.field_id), key)

    def deliver_document(self, document_id: int) -> None:
        """A document rung on its own (a retry, the sweep); it goes on with the job's
        next claimable document as the record step does."""
        owner = self._owner()
        claimed = self.store.claim_document_for_delivery(
            document_id, owner, self.settings.lease_seconds, watch=self._watch(),
            admit=self._admit)
        if claimed is None:
            log.debug("document %s: not due, taken or paused; nothing to do", document_id)
            return
        doc, job, shared = claimed
        seen = self._seen(job.partner, shared, doc.updated_at)
        leased: Leased | None = Leased(doc, owner, seen)
        while leased is not None:
            leased = self._upload(leased, job)

    def _upload(self, leased: Leased, job: Job) -> Leased | None:
        """Upload one leased document; the job's next document if this one's outcome
        leased it to this worker (after an upload, while delivery is not paused)."""
        doc, owner, seen = leased.document, leased.owner, leased.seen
        if not job.partner_record_id:
            self._report(job.id, doc.id, owner, Event(K.PERMANENT_ERROR, "the job has no"
                                                      " partner record to attach it to",
                                                      category=Category.NO_RECORD), "document")
            return None
        client = self._client_of(job, doc.id, owner, "document")
        if client is None:
            return None
        try:
            name, path = self.opener.open_place(doc.seal_key, doc.original_name, doc.path)
            opened = open_checked(path, self.settings.uploads_dir, self.settings.files,
                                  name or None)  # blanked by retention: no name
        except UnknownKey as exc:
            self._hold(job, doc.id, owner, "document", exc)
            return None
        except (RejectedFile, NotOpened) as exc:
            self._report(job.id, doc.id, owner, Event(K.REJECTED, str(exc)), "document")
            self._ring_rest(job, doc.id)
            return None
        except ConfigError as exc:  # e.g. the uploads mount is gone: no document is at fault
            release = Event(K.RELEASE, str(exc), self.settings.retry.delay(1),
                            category=Category.CONFIG)
            if self._report(job.id, doc.id, owner, release, "document") is not None:
                self._ring(job, doc.id, release.delay)
            raise
        # The descriptor checked is the one uploaded from, held across the slot wait and
        # closed on every path; the path is never opened again.
        with opened:
            checked = opened.checked
            facts = {"size": checked.size, "detected_type": checked.mime,
                     "sha256": checked.sha256}
            key = f"{job.reference}:{job.key_generation}:document:{doc.id}"
            record_id = job.partner_record_id
            try:
                accepted, elapsed = self._call(
                    job, doc.id, doc.attempts, owner, "document",
                    lambda: client.upload_document(record_id, DocumentUpload(
                        opened.reader(), name or checked.path.name, checked.mime,
                        checked.size, doc.label, f"{job.reference}:document:{doc.id}"), key),
                    lambda: self._job_masker(job), facts, seen=seen)
            except FileChanged as exc:  # the body was aborted before its end: nothing stored
                self._report(job.id, doc.id, owner, Event(K.REJECTED, str(exc)), "document",
                             facts=facts)
                self._ring_rest(job, doc.id)
                return None
        if accepted is None:
            self._ring_rest(job, doc.id)
            return None
        metrics.step_outcome("document", K.UPLOADED, None)
        entry = LogEntry("document.{outcome}", f"partner document {accepted.id},"
                         f" {checked.size} bytes, {checked.mime}", http_status=accepted.status,
                         duration_ms=elapsed)
        next_owner = self._owner()
        after = leased.after
        try:
            if after is not None and after.last:  # its siblings are uploaded: the job ends
                self.store.last_document_uploaded(after.job, doc, owner, accepted.id, entry,
                                                  facts, since(after.now, after.read_at))
                after = None
            else:
                after = self.store.document_done(
                    job.id, doc.id, owner, Event(K.UPLOADED), accepted.id, entry, facts,
                    next_owner, self.settings.lease_seconds,
                    watch=row_of(self.partners.key(job.partner)))
        except LeaseLost:
            log.warning("document %s: lease lost before the outcome was written", doc.id)
            return None
        if self.settings.delete_delivered_files:
            remove_delivered(self.store, self.settings.uploads_dir, checked, job.id, doc.id)
        if after is None or after.document is None:
            return None
        seen = self._seen(job.partner, after.shared, after.now)
        if seen[0] is Gate.SHUT:  # paused meanwhile: the next document is given back
            self._report(job.id, after.document.id, next_owner, Event(
                K.RELEASE, "waited for the partner: paused or busy", 1.0), "document")
            return None
        return Leased(after.document, next_owner, seen, after)

    def _client_of(self, job: Job, document_id: int | None, owner: str,
                   step: str) -> Partner | None:
        """The client of the job's partner; None (the step given back, as a configuration
        problem that burns no attempt) when the settings no longer name that partner."""
        try:
            return self.partners.client(job.partner)
        except UnknownPartner as exc:
            self._hold(job, document_id, owner, step, exc)
            return None

    def _hold(self, job: Job, document_id: int | None, owner: str, step: str,
              exc: Exception) -> None:
        """Give the step back as a configuration problem: no attempt spent, the reason
        on the row, tried again after the first retry's delay (a partner no longer
        configured, a seal key not held: fixed by the operator, not by time)."""
        release = Event(K.RELEASE, str(exc), self.settings.retry.delay(1),
                        category=Category.CONFIG)
        if self._report(job.id, document_id, owner, release, step) is not None:
            self._ring(job, document_id, release.delay)

    def _ring_rest(self, job: Job, document_id: int) -> None:
        """After a step that did not end in an upload, the job's other documents waiting
        to be claimed go through the queue (the chain stops here)."""
        for other in self.store.documents(job.id):
            if other.id != document_id and other.status in CLAIMABLE:
                self.doorbell.ring_document(other.id, job.priority)

    def _job_masker(self, job: Job) -> Masker | None:
        """All the job's values and documents' names (read only when a partner text needs it)."""
        row = self.store.job_snapshot(job.id)
        try:
            submission, _ = job_source.read(self.store, job, row["snapshot"] if row else None,
                                            self.opener)
        except (SubmissionError, UnknownKey):
            return None
        return masker_for(submission, self.opener.names(self.store.documents(job.id)))


def _job_context(job: Job, submission: Submission) -> dict[str, Any]:
    return {"reference": job.reference, "form_id": job.form_id or submission.form_id,
            "entry_id": job.entry_id or submission.entry_id,
            "key_generation": job.key_generation, "source": job.source}
