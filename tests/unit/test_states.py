"""Every edge of the job and document state machines, and every missing edge."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import product

import pytest

from sidecar.errors import InvalidTransition
from sidecar.states import (
    DOCUMENT_RULES,
    DOCUMENT_STATUSES,
    JOB_RULES,
    JOB_STATUSES,
    Event,
    EventKind,
    Phase,
    State,
    Status,
    document_transition,
    documents_outcome,
    job_transition,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 23, 12, 0, 0)
K = EventKind
S = Status


def job(status: Status, attempts: int = 1, phase: Phase = Phase.RECORD, **kw: object) -> State:
    base = {"max_attempts": 3, "next_attempt_at": None, "last_error": None, "key_generation": 1}
    base.update(kw)
    return State(status, attempts, phase=phase, **base)  # type: ignore[arg-type]


def doc(status: Status, attempts: int = 1, **kw: object) -> State:
    base = {"max_attempts": 3, "next_attempt_at": None, "last_error": None}
    base.update(kw)
    return State(status, attempts, **base)  # type: ignore[arg-type]


# ---- claims -------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [S.PENDING, S.RETRYING])
@pytest.mark.parametrize("transition,make", [(job_transition, job), (document_transition, doc)])
def test_claim_of_due_work_counts_an_attempt(status, transition, make):
    new = transition(make(status, attempts=1, next_attempt_at=NOW), Event(K.CLAIM), NOW)
    assert (new.status, new.attempts, new.next_attempt_at) == (S.PROCESSING, 2, None)


@pytest.mark.parametrize("transition,make", [(job_transition, job), (document_transition, doc)])
def test_claim_before_the_next_attempt_time_is_refused(transition, make):
    later = NOW + timedelta(seconds=1)
    with pytest.raises(InvalidTransition, match="not due"):
        transition(make(S.RETRYING, next_attempt_at=later), Event(K.CLAIM), NOW)


# ---- the record step ----------------------------------------------------------------------

def test_record_sent_with_documents_moves_to_documents_phase_keeping_record_attempts():
    new = job_transition(job(S.PROCESSING, attempts=2, last_error="x"),
                         Event(K.RECORD_SENT, has_documents=True), NOW)
    assert (new.status, new.phase, new.attempts, new.last_error) == (
        S.PROCESSING, Phase.DOCUMENTS, 2, None)


def test_record_sent_without_documents_completes():
    new = job_transition(job(S.PROCESSING), Event(K.RECORD_SENT), NOW)
    assert (new.status, new.phase) == (S.COMPLETED, Phase.DONE)


def test_record_sent_twice_is_refused():
    with pytest.raises(InvalidTransition):
        job_transition(job(S.PROCESSING, phase=Phase.DOCUMENTS), Event(K.RECORD_SENT), NOW)


@pytest.mark.parametrize("transition,make", [(job_transition, job), (document_transition, doc)])
def test_retryable_error_schedules_the_next_attempt(transition, make):
    new = transition(make(S.PROCESSING, attempts=1), Event(K.RETRYABLE_ERROR, "HTTP 503", 42.5),
                     NOW)
    assert new.status == S.RETRYING
    assert new.next_attempt_at == NOW + timedelta(seconds=42.5)
    assert new.last_error == "HTTP 503"
    assert new.attempts == 1


@pytest.mark.parametrize("transition,make", [(job_transition, job), (document_transition, doc)])
def test_retryable_error_on_the_last_attempt_fails_with_the_error(transition, make):
    new = transition(make(S.PROCESSING, attempts=3), Event(K.RETRYABLE_ERROR, "HTTP 503", 5), NOW)
    assert new.status == S.FAILED
    assert new.next_attempt_at is None
    assert new.last_error == "gave up after 3 attempts: HTTP 503"


@pytest.mark.parametrize("transition,make", [(job_transition, job), (document_transition, doc)])
def test_negative_delay_is_clamped_to_now(transition, make):
    new = transition(make(S.PROCESSING), Event(K.RETRYABLE_ERROR, "x", -5), NOW)
    assert new.next_attempt_at == NOW


@pytest.mark.parametrize("transition,make", [(job_transition, job), (document_transition, doc)])
def test_permanent_error_fails_at_once(transition, make):
    new = transition(make(S.PROCESSING, attempts=1), Event(K.PERMANENT_ERROR, "HTTP 422"), NOW)
    assert (new.status, new.last_error, new.attempts) == (S.FAILED, "HTTP 422", 1)


@pytest.mark.parametrize("transition,make", [(job_transition, job), (document_transition, doc)])
def test_expired_lease_makes_the_work_due_now(transition, make):
    new = transition(make(S.PROCESSING, attempts=1), Event(K.LEASE_EXPIRED), NOW)
    assert (new.status, new.next_attempt_at) == (S.RETRYING, NOW)
    assert new.last_error and "lease expired" in new.last_error


@pytest.mark.parametrize("transition,make", [(job_transition, job), (document_transition, doc)])
def test_expired_lease_on_the_last_attempt_fails(transition, make):
    new = transition(make(S.PROCESSING, attempts=3), Event(K.LEASE_EXPIRED), NOW)
    assert new.status == S.FAILED
    assert "lease expired" in (new.last_error or "")


@pytest.mark.parametrize("transition,make", [(job_transition, job), (document_transition, doc)])
def test_release_gives_the_attempt_back_and_waits(transition, make):
    new = transition(make(S.PROCESSING, attempts=3), Event(K.RELEASE, "HTTP 401", 60), NOW)
    assert (new.status, new.attempts, new.last_error) == (S.RETRYING, 2, "HTTP 401")
    assert new.next_attempt_at == NOW + timedelta(seconds=60)  # never failed by a pause


@pytest.mark.parametrize("kind", [K.RETRYABLE_ERROR, K.PERMANENT_ERROR, K.LEASE_EXPIRED,
                                  K.RELEASE])
def test_record_step_errors_are_refused_in_the_documents_phase(kind):
    with pytest.raises(InvalidTransition):
        job_transition(job(S.PROCESSING, phase=Phase.DOCUMENTS), Event(kind, "x"), NOW)


# ---- the documents phase ------------------------------------------------------------------

def test_documents_done_completes_the_job():
    new = job_transition(job(S.PROCESSING, 0, Phase.DOCUMENTS), Event(K.DOCUMENTS_DONE), NOW)
    assert (new.status, new.phase) == (S.COMPLETED, Phase.DONE)


def test_documents_done_with_a_reason_fails_the_job():
    new = job_transition(job(S.PROCESSING, 0, Phase.DOCUMENTS),
                         Event(K.DOCUMENTS_DONE, "document 3 rejected: text/html"), NOW)
    assert (new.status, new.phase, new.last_error) == (
        S.FAILED, Phase.DONE, "document 3 rejected: text/html")


def test_documents_done_is_refused_in_the_record_phase():
    with pytest.raises(InvalidTransition):
        job_transition(job(S.PROCESSING), Event(K.DOCUMENTS_DONE), NOW)


def test_document_uploaded():
    new = document_transition(doc(S.PROCESSING, last_error="old"), Event(K.UPLOADED), NOW)
    assert (new.status, new.last_error) == (S.UPLOADED, None)


def test_document_rejected_keeps_the_reason_and_is_not_retried():
    new = document_transition(doc(S.PROCESSING), Event(K.REJECTED, "type text/html"), NOW)
    assert (new.status, new.last_error, new.next_attempt_at) == (
        S.REJECTED, "type text/html", None)
    with pytest.raises(InvalidTransition):
        document_transition(new, Event(K.RETRY), NOW)


# ---- people: cancel, retry, restart -------------------------------------------------------

@pytest.mark.parametrize("status", [S.PENDING, S.RETRYING, S.PROCESSING])
@pytest.mark.parametrize("transition,make", [(job_transition, job), (document_transition, doc)])
def test_cancel_of_unfinished_work(status, transition, make):
    new = transition(make(status, next_attempt_at=NOW), Event(K.CANCEL), NOW)
    assert (new.status, new.next_attempt_at) == (S.CANCELLED, None)


@pytest.mark.parametrize("status", [S.FAILED, S.CANCELLED])
def test_retry_of_a_job_in_the_record_phase_starts_the_record_step_again(status):
    new = job_transition(job(status, attempts=3, last_error="x"), Event(K.RETRY), NOW)
    assert (new.status, new.attempts, new.next_attempt_at, new.last_error) == (
        S.PENDING, 0, NOW, None)
    assert new.key_generation == 1  # same idempotency key: the partner dedupes


@pytest.mark.parametrize("status", [S.FAILED, S.CANCELLED])
def test_retry_of_a_job_with_documents_resumes_its_documents(status):
    new = job_transition(job(status, 0, Phase.DONE, last_error="document 1 failed"),
                         Event(K.RETRY), NOW)
    assert (new.status, new.phase, new.last_error) == (S.PROCESSING, Phase.DOCUMENTS, None)


@pytest.mark.parametrize("status", [S.FAILED, S.CANCELLED])
def test_retry_of_a_document_resets_its_attempts(status):
    new = document_transition(doc(status, attempts=3), Event(K.RETRY), NOW)
    assert (new.status, new.attempts, new.next_attempt_at) == (S.PENDING, 0, NOW)


@pytest.mark.parametrize("status", [S.PENDING, S.RETRYING, S.COMPLETED, S.FAILED, S.CANCELLED])
def test_restart_starts_from_scratch_with_a_new_key_generation(status):
    new = job_transition(job(status, attempts=2, phase=Phase.DONE, key_generation=4,
                             last_error="x"), Event(K.RESTART), NOW)
    assert (new.status, new.phase, new.attempts, new.key_generation, new.last_error) == (
        S.PENDING, Phase.RECORD, 0, 5, None)
    assert new.next_attempt_at == NOW


def test_restart_of_work_in_flight_is_refused():
    with pytest.raises(InvalidTransition):
        job_transition(job(S.PROCESSING), Event(K.RESTART), NOW)


# ---- the edges that do not exist ----------------------------------------------------------

# Every (status, event) pair that has no rule, spelled out, so adding or losing
# an edge changes this test.
JOB_EDGES = {
    (S.PENDING, K.CLAIM), (S.RETRYING, K.CLAIM),
    (S.PROCESSING, K.RECORD_SENT), (S.PROCESSING, K.DOCUMENTS_DONE),
    (S.PROCESSING, K.RETRYABLE_ERROR), (S.PROCESSING, K.PERMANENT_ERROR),
    (S.PROCESSING, K.LEASE_EXPIRED), (S.PROCESSING, K.RELEASE),
    (S.PENDING, K.CANCEL), (S.RETRYING, K.CANCEL), (S.PROCESSING, K.CANCEL),
    (S.FAILED, K.RETRY), (S.CANCELLED, K.RETRY),
    (S.PENDING, K.RESTART), (S.RETRYING, K.RESTART), (S.COMPLETED, K.RESTART),
    (S.FAILED, K.RESTART), (S.CANCELLED, K.RESTART),
}
DOCUMENT_EDGES = {
    (S.PENDING, K.CLAIM), (S.RETRYING, K.CLAIM),
    (S.PROCESSING, K.UPLOADED), (S.PROCESSING, K.REJECTED),
    (S.PROCESSING, K.RETRYABLE_ERROR), (S.PROCESSING, K.PERMANENT_ERROR),
    (S.PROCESSING, K.LEASE_EXPIRED), (S.PROCESSING, K.RELEASE),
    (S.PENDING, K.CANCEL), (S.RETRYING, K.CANCEL), (S.PROCESSING, K.CANCEL),
    (S.FAILED, K.RETRY), (S.CANCELLED, K.RETRY),
}


def test_the_edge_sets_are_exactly_the_rules():
    assert set(JOB_RULES) == JOB_EDGES
    assert set(DOCUMENT_RULES) == DOCUMENT_EDGES


@pytest.mark.parametrize("status,kind", sorted(
    set(product(JOB_STATUSES, EventKind)) - JOB_EDGES))
def test_job_refuses_every_other_pair(status, kind):
    with pytest.raises(InvalidTransition):
        job_transition(job(status), Event(kind, "x"), NOW)


@pytest.mark.parametrize("status,kind", sorted(
    set(product(DOCUMENT_STATUSES, EventKind)) - DOCUMENT_EDGES))
def test_document_refuses_every_other_pair(status, kind):
    with pytest.raises(InvalidTransition):
        document_transition(doc(status), Event(kind, "x"), NOW)


@pytest.mark.parametrize("status", [S.COMPLETED, S.UPLOADED, S.REJECTED])
def test_finished_documents_take_no_event_at_all(status):
    for kind in EventKind:
        with pytest.raises(InvalidTransition):
            document_transition(doc(status), Event(kind), NOW)


# ---- when a job's documents are done ------------------------------------------------------

def test_documents_outcome_waits_for_every_document():
    assert documents_outcome([(S.UPLOADED, None), (S.RETRYING, "x")]) is None
    assert documents_outcome([(S.PROCESSING, None)]) is None
    assert documents_outcome([]) is None


def test_documents_outcome_all_uploaded_completes():
    assert documents_outcome([(S.UPLOADED, None)] * 3) == Event(K.DOCUMENTS_DONE)


def test_documents_outcome_names_each_document_that_did_not_upload():
    event = documents_outcome([(S.UPLOADED, None), (S.REJECTED, "type text/html"),
                               (S.UPLOADED, None), (S.FAILED, "HTTP 422")])
    assert event == Event(K.DOCUMENTS_DONE,
                          "document 2 rejected: type text/html; document 4 failed: HTTP 422")
