"""One partner call of a delivery step and its outcome: the engine's shared half.

The pause (read with the claim, asked again only when it matters), the partner
slot, the request timed, and the outcome written with its log row, its
category and the ring for what comes next. Engine (sidecar.engine) mixes it in
and supplies the store, doorbell, settings, pause and throttle.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sidecar import metrics
from sidecar.breaker import Breaker, Gate
from sidecar.doorbell import Doorbell, ring_due
from sidecar.errors import (
    LeaseLost,
    PartnerConfigError,
    PartnerError,
    PermanentError,
    RetryableError,
)
from sidecar.failures import MaskerSource, reason
from sidecar.partner_profile import Accepted
from sidecar.partner_registry import Lane, Partners, UnknownPartner
from sidecar.pause import Pause
from sidecar.states import Event, EventKind, State, Status
from sidecar.store import Job, LogEntry, NewDocument, Store

if TYPE_CHECKING:
    from sidecar.engine import EngineSettings

log = logging.getLogger("formrelay.engine")
K = EventKind


class StepCalls:
    """The engine's partner calls and step outcomes (the attributes are the Engine's)."""

    store: Store
    doorbell: Doorbell
    settings: EngineSettings
    partners: Partners

    def _lane(self, partner: str) -> Lane | None:
        try:
            return self.partners.lane(partner)
        except UnknownPartner:  # the step itself says so (Engine._client_of)
            return None

    def _admit(self, shared: str | None, now: datetime, partner: str) -> bool:
        """A claim's question, on the pause state of the row's partner read with it:
        paused, with no probe due? Then nothing is taken. (The probe itself is taken only
        before the request.)"""
        lane = self._lane(partner)
        return lane is None or lane.pause is None or (
            lane.pause.read(shared, now)[0] is not Gate.SHUT)

    def _seen(self, partner: str, shared: str | None, now: datetime) -> tuple[Gate, Breaker]:
        lane = self._lane(partner)
        if lane is None or lane.pause is None:
            return Gate.OPEN, Breaker()
        return lane.pause.read(shared, now)

    @staticmethod
    @contextmanager
    def _slot(lane: Lane) -> Iterator[bool]:
        if lane.throttle is None:
            yield True
        else:
            with lane.throttle.slot() as granted:
                yield granted

    def _call(self, job: Job, document_id: int | None, attempts: int, owner: str, step: str,
              request: Callable[[], Accepted], masker: MaskerSource,
              facts: dict[str, Any] | None = None,
              seen: tuple[Gate, Breaker] = (Gate.OPEN, Breaker())
              ) -> tuple[Accepted | None, int]:
        """Make the request and time it; on failure, write the outcome and ring for a retry.

        `attempts` is the step's count as its claim left it (this attempt included);
        `seen`, the pause as read with the claim. A step that waited for a partner slot
        asks the pause once more, and so does one whose probe is due (to take it): paused,
        it is given back unspent (a failed probe costs no attempt). With no ceiling set
        and the partner up, the claim's reading stands: no statement more.
        """
        lane = self.partners.lane(job.partner)
        pause, throttle = lane.pause, lane.throttle
        with self._slot(lane) as granted:
            if pause is None or (seen[0] is Gate.OPEN and (
                    throttle is None or not throttle.ceilings)):
                verdict, state = seen
            else:
                verdict, state = pause.check()
            if not granted or verdict is Gate.SHUT:
                self._report(job.id, document_id, owner, Event(
                    K.RELEASE, "waited for the partner: paused or busy", 1.0), step)
                self._ring(job, document_id, 1.0)
                return None, 0
            started = time.monotonic()
            try:
                accepted = request()
            except PartnerError as exc:
                elapsed = int((time.monotonic() - started) * 1000)
                self._failed(job, document_id, owner, step, attempts, exc, elapsed, facts,
                             reason(exc, masker), probe=verdict is Gate.PROBE)
                if isinstance(exc, PartnerConfigError):
                    raise  # delivery is paused: nothing is wrong with this job
                return None, elapsed
        self._answered(pause, state)
        return accepted, int((time.monotonic() - started) * 1000)

    def _answered(self, pause: Pause | None, seen: Breaker | None = None) -> None:
        """The partner answered (a success or a permanent refusal): it is up."""
        if pause is not None and pause.succeeded(seen):
            ring_due(self.store, self.doorbell)  # resumed: wake the backlog (paced)

    def _failed(self, job: Job, document_id: int | None, owner: str, step: str,
                attempts: int, exc: PartnerError, elapsed: int,
                facts: dict[str, Any] | None, cause: str, probe: bool) -> None:
        """Write a failed request's outcome, tell the pause, and ring for the retry.

        `cause` is the failure's masked reason (sidecar.failures): the partner's
        raw text, on `exc`, goes no further than this call.
        """
        pause = self.partners.lane(job.partner).pause
        if isinstance(exc, PartnerConfigError):
            if pause is not None:
                pause.refused(cause, auth=exc.status in (401, 403))
            event = Event(K.RELEASE, cause, self.settings.retry.delay(1), category=exc.category)
        elif isinstance(exc, RetryableError):
            paused = pause.failed(cause, probe) if pause is not None else None
            if probe and paused is not None:  # wait for the next probe, unspent
                event = Event(K.RELEASE, cause, paused.probe_wait, category=exc.category)
            else:
                event = Event(K.RETRYABLE_ERROR, cause,
                              self.settings.retry.delay(attempts, exc.retry_after),
                              category=exc.category)
        else:
            assert isinstance(exc, PermanentError)
            self._answered(pause)
            event = Event(K.PERMANENT_ERROR, cause, category=exc.category)
        state = self._report(job.id, document_id, owner, event, step, status=exc.status,
                             duration_ms=elapsed, facts=facts)
        if state is not None and state.status == Status.RETRYING:
            self._ring(job, document_id, event.delay)

    def _ring(self, job: Job, document_id: int | None, delay: float) -> None:
        if document_id is None:
            self.doorbell.ring_record(job.id, job.priority, delay)
        else:
            self.doorbell.ring_document(document_id, job.priority, delay)

    def _report(self, job_id: int, document_id: int | None, owner: str, event: Event,
                step: str, accepted: Accepted | None = None, message: str = "",
                documents: list[NewDocument] | None = None, status: int | None = None,
                duration_ms: int | None = None,
                facts: dict[str, Any] | None = None) -> State | None:
        """Write a step's outcome and its log row; None if the lease was lost meanwhile."""
        metrics.step_outcome(step, event.kind, event.category)
        entry = LogEntry(f"{step}.{{outcome}}", message,
                         http_status=accepted.status if accepted else status,
                         duration_ms=duration_ms)
        partner_id = accepted.id if accepted else None
        try:
            if document_id is None:
                return self.store.transition_job(job_id, event, owner=owner,
                                                 partner_id=partner_id,
                                                 documents=documents or (), log=entry)
            return self.store.transition_document(document_id, event, owner=owner,
                                                  partner_id=partner_id, log=entry,
                                                  facts=facts, job_id=job_id)
        except LeaseLost:
            # Cancelled, or the lease ran out and another worker has it: its report wins.
            log.warning("%s %s: lease lost before the outcome was written",
                        "job" if document_id is None else "document", document_id or job_id)
            return None
