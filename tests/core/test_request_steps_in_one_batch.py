"""Several steps on one request in one applier batch decide what they would decide each in
its own batch, in order, on both backends: each test runs the same events both ways and
checks the same outcome. A rule that read the request as it was loaded, not as the
batch's earlier steps left it, would decide differently together."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from core import inbox, outbox
from core import subject_requests as rq
from core.db import events, jobs, requests, subject_keys, suppression
from core.dsr import ERASE, NOTIFIER
from core.model import (
    CanonicalEvent,
    EventMeta,
    FieldValue,
    RecordChanged,
    RequestAction,
    RequestKind,
    RequestReceived,
    RequestStep,
    SubjectHint,
    SubjectSeen,
    SystemRef,
)
from tests.core.test_requests_flow import (
    EMAIL,
    NOW,
    Flow,
    ack,
    count,
    ledger_details,
    meta,
    subscribe,
)

TOGETHER = pytest.mark.parametrize("together", [False, True],
                                   ids=["separate-batches", "one-batch"])


@pytest.fixture
def flow(engine) -> Flow:  # type: ignore[no-untyped-def]
    return Flow(engine)


def run(flow: Flow, steps: Sequence[CanonicalEvent], together: bool) -> None:
    """The steps in one delivery (one batch), or each in its own."""
    if together:
        flow.core.store(steps, flow.clock[0])
        flow.core.apply()
        with flow.core.engine.connect() as conn:
            assert inbox.backlog(conn).rows == 0, "the delivery failed: it blocks the inbox"
    else:
        for ev in steps:
            flow.event(ev)


def outcomes(flow: Flow) -> dict[str, str]:
    with flow.core.engine.connect() as conn:
        return {r.source_event_id: r.outcome for r in conn.execute(
            select(events.c.source_event_id, events.c.outcome))}


def received(flow: Flow, *, verified: bool) -> str:
    rid = str(uuid.uuid4())
    flow.event(RequestReceived(meta(f"r-{rid}"), SubjectHint(email=EMAIL), RequestKind.ERASURE,
                               rid, identity_verified=verified, actor="cli"))
    return rid


def reject(name: str, rid: str, reason: str = "identity not proven") -> RequestAction:
    return RequestAction(meta(name), rid, RequestStep.REJECT, reason=reason, actor="cli")


def verify(name: str, rid: str, when: datetime = NOW) -> RequestAction:
    return RequestAction(meta(name, when), rid, RequestStep.VERIFY_IDENTITY, actor="cli")


@TOGETHER
def test_a_verification_after_a_rejection_leaves_the_request_rejected(
        flow: Flow, together: bool):
    subscribe(flow)
    rid = received(flow, verified=False)
    run(flow, [reject("no", rid), verify("yes", rid)], together)
    request = flow.request(rid)
    assert request.status == rq.REJECTED and request.paused_since is None
    engine = flow.core.engine
    assert count(engine, jobs, jobs.c.kind == ERASE, jobs.c.status == outbox.PENDING) == 0
    assert count(engine, suppression) == 0  # nothing of the person is refused
    assert outcomes(flow)["yes"] == "invalid"
    assert ledger_details(engine, "request.identity_verified") == []


@TOGETHER
def test_a_second_rejection_is_refused_and_the_first_reason_stands(flow: Flow, together: bool):
    subscribe(flow)
    rid = received(flow, verified=True)
    run(flow, [reject("no-1", rid, "identity not proven"),
               reject("no-2", rid, "manifestly unfounded")], together)
    request = flow.request(rid)
    assert (request.status, request.rejection_reason) == (rq.REJECTED, "identity not proven")
    assert outcomes(flow)["no-2"] == "invalid"
    assert len(ledger_details(flow.core.engine, "request.rejected")) == 1


@TOGETHER
def test_a_request_about_an_erased_person_named_twice_is_recorded_once(
        flow: Flow, together: bool):
    """Two events (a resubmitted form, a partner's retry with a new event id) carrying one
    request id about someone erased: the first is recorded as already erased, the second
    is a duplicate of it. Inserting it twice would fail the whole delivery."""
    contact = SystemRef("hubspot", "contact:1")
    flow.event(SubjectSeen(EventMeta("hubspot", "seen", NOW), SubjectHint(ref=contact,
                                                                         email=EMAIL)))
    received(flow, verified=True)  # the erasure: the person's record is suppressed
    again = str(uuid.uuid4())
    run(flow, [RequestReceived(meta(f"again-{n}"), SubjectHint(ref=contact),
                               RequestKind.ERASURE, again, actor="partner") for n in (1, 2)],
        together)
    assert (outcomes(flow)["again-1"], outcomes(flow)["again-2"]) == (
        "suppressed", "duplicate_request")
    assert flow.request(again).status == rq.COMPLETED
    assert len(ledger_details(flow.core.engine, "request.already_erased")) == 1


def stored_due(flow: Flow, rid: str) -> datetime:
    """The deadline as the row keeps it (the admin's listing is ordered by it)."""
    with flow.core.engine.connect() as conn:
        found: datetime = conn.execute(select(requests.c.due_at).where(
            requests.c.id == rid)).scalar_one()
    return found


@TOGETHER
def test_a_verification_after_an_extension_keeps_the_extension_in_the_deadline(
        flow: Flow, together: bool):
    subscribe(flow)
    rid = received(flow, verified=False)
    flow.clock[0] = later = NOW + timedelta(days=5)  # five days waiting for proof
    run(flow, [RequestAction(meta("ext", later), rid, RequestStep.EXTEND, months=2,
                             reason="many systems to search", actor="cli"),
               verify("yes", rid, later)], together)
    request = flow.request(rid)
    assert (request.status, request.extended_months) == (rq.IN_PROGRESS, 2)
    assert request.due(later) == stored_due(flow, rid) == datetime(2027, 2, 6, 13, tzinfo=UTC)


def told(name: str, rid: str) -> RequestAction:
    """The notifier's step: the person was told."""
    return RequestAction(EventMeta("privasync", name, NOW), rid, RequestStep.CONFIRMED,
                         actor="privasync", receipt=(("code", "250"),))


@TOGETHER
def test_a_notice_confirmed_after_a_rejection_destroys_nothing(flow: Flow, together: bool):
    """Every system erased, the notice on its way, and the admin rejects: the notice's
    confirmation that follows must not shred a rejected request's person."""
    subscribe(flow)
    rid = received(flow, verified=True)
    flow.deliver("hubspot", "partner:contact_centre")
    flow.event(ack(rid, "ack-1", True, "deleted"))
    engine = flow.core.engine
    assert count(engine, jobs, jobs.c.destination == NOTIFIER) == 1
    run(flow, [reject("no", rid, "manifestly unfounded"), told("told", rid)], together)
    request = flow.request(rid)
    assert request.status == rq.REJECTED and request.confirmed_at is not None
    assert count(engine, subject_keys) == 1
    assert ledger_details(engine, "subject.erased") == []


@TOGETHER
def test_an_extension_told_twice_is_recorded_once(flow: Flow, together: bool):
    subscribe(flow)
    rid = received(flow, verified=True)
    flow.event(RequestAction(meta("ext"), rid, RequestStep.EXTEND, months=1, reason="busy",
                             actor="cli"))
    run(flow, [RequestAction(EventMeta("privasync", f"ext-told-{n}", NOW), rid,
                             RequestStep.EXTENSION_TOLD, actor="privasync",
                             receipt=(("code", "250"),)) for n in (1, 2)], together)
    assert flow.request(rid).extension_told_at == NOW
    assert len(ledger_details(flow.core.engine, "request.extension_told")) == 1


@TOGETHER
def test_a_new_erasure_after_a_rejection_is_opened(flow: Flow, together: bool):
    """The person asks again, properly this time, right after the first was refused."""
    subscribe(flow)
    first = received(flow, verified=True)
    again = str(uuid.uuid4())
    run(flow, [reject("no", first), RequestReceived(meta("again"), SubjectHint(email=EMAIL),
                                                    RequestKind.ERASURE, again, actor="cli")],
        together)
    assert outcomes(flow)["again"] == "request_opened"
    assert flow.request(again).status == rq.IN_PROGRESS
    engine = flow.core.engine
    assert count(engine, suppression, suppression.c.request_id == again) > 0
    assert count(engine, suppression, suppression.c.request_id == first) == 0
    assert count(engine, jobs, jobs.c.kind == ERASE, jobs.c.status == outbox.PENDING) == 2


@TOGETHER
def test_a_rejection_right_after_a_verification_leaves_nothing_going(
        flow: Flow, together: bool):
    subscribe(flow)
    rid = received(flow, verified=False)
    run(flow, [verify("yes", rid), reject("no", rid)], together)
    engine = flow.core.engine
    assert flow.request(rid).status == rq.REJECTED
    assert count(engine, suppression) == 0
    assert count(engine, jobs, jobs.c.kind == ERASE, jobs.c.status == outbox.PENDING) == 0


def renamed(name: str) -> RecordChanged:
    """The person's record changes in HubSpot (a field other systems are sent)."""
    return RecordChanged(EventMeta("hubspot", name, NOW), SubjectHint(email=EMAIL),
                         (("first_name", FieldValue("Ada", NOW)),))


@TOGETHER
def test_a_record_change_after_an_erasure_started_is_refused(flow: Flow, together: bool):
    subscribe(flow)
    rid = received(flow, verified=False)
    run(flow, [verify("yes", rid), renamed("renamed")], together)
    assert outcomes(flow)["renamed"] == "suppressed"
    assert count(flow.core.engine, jobs, jobs.c.kind == outbox.RECORD) == 0
    [blocked] = ledger_details(flow.core.engine, "suppression.blocked")
    assert blocked["request"] == rid


@TOGETHER
def test_a_record_change_after_a_rejection_is_taken_in(flow: Flow, together: bool):
    subscribe(flow)
    rid = received(flow, verified=True)
    run(flow, [reject("no", rid), renamed("renamed")], together)
    assert outcomes(flow)["renamed"] == "applied"
    assert ledger_details(flow.core.engine, "suppression.blocked") == []
