"""An admin decides records held for review in an access answer, on both backends: an
included record joins the kept answer, an excluded one is dropped (its fields gone from
the database), each once, with a reason sealed like any other; the ledger says what was
decided, by whom. Anything that cannot be decided is refused whole and changes nothing.
While any record is held the request stays open (its destination awaiting review, its
deadline running, overdue past it); the decision on the last one completes it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from core import freetext, ledger
from core import subject_requests as rq
from core.crypto import Keyring
from core.db import request_exports
from core.dsr import NOTIFIER
from core.keys import keys_of
from core.model import (
    EXCLUDE,
    INCLUDE,
    EventMeta,
    ExportedField,
    ExportResult,
    HeldForReview,
    PersonAt,
    RequestAcknowledged,
    RequestAction,
    RequestKind,
    RequestReceived,
    RequestStep,
    SubjectHint,
)
from tests.core.test_requests_flow import EMAIL, NOW, Flow, _anywhere, meta, subscribe

REASON = "Bea is Ada's daughter: the notes on contact:3 are about Bea's own order"
SHARED = "shares an address with another record"


def _export(people: Sequence[PersonAt]) -> list[ExportResult]:
    """The person's own contact, and two records reached only by a shared address."""
    return [ExportResult(p.subject_id, (ExportedField("contact:1", "firstname", "Ada",
                                                      "contact"),),
                         note="1 record(s); 2 held for review",
                         review=(HeldForReview("contact:2", SHARED, (
                             ExportedField("contact:2", "lastname", "Lovelace-King",
                                           "contact"),)),
                                 HeldForReview("contact:3", SHARED, (
                                     ExportedField("contact:3", "firstname", "Bea",
                                                   "contact"),))))
            for p in people]


@pytest.fixture
def held(engine) -> tuple[Flow, str]:  # type: ignore[no-untyped-def]
    flow = Flow(engine)
    flow.vendor.export = _export  # type: ignore[method-assign]
    subscribe(flow)
    rid = str(uuid.uuid4())
    flow.event(RequestReceived(meta("acc"), SubjectHint(email=EMAIL), RequestKind.ACCESS,
                               rid))
    flow.deliver("hubspot")
    assert flow.request(rid).status == rq.IN_PROGRESS  # held records keep it open
    return flow, rid


def review(flow: Flow, rid: str, *records: tuple[str, str], reason: str = REASON,
           name: str | None = None) -> str:
    """Apply a review; returns its outcome."""
    applied = flow.core.accept([RequestAction(
        meta(name or f"review:{uuid.uuid4()}"), rid, RequestStep.REVIEW, reason=reason,
        actor="cli:dpo", records=records)], flow.clock[0])
    [(outcome, _)] = applied.outcomes.items()
    return outcome


def payload(flow: Flow, rid: str) -> dict[str, Any]:
    request = flow.request(rid)
    with flow.core.engine.connect() as conn:
        row = conn.execute(select(request_exports.c.payload).where(
            request_exports.c.request_id == rid)).scalar_one()
        key = keys_of(conn, flow.core.keyring, [request.subject_id])[request.subject_id]
    return dict(json.loads(Keyring.decrypt(key, row) or b"{}"))


def receipt(flow: Flow, rid: str) -> dict[str, Any]:
    return dict(next(d for d in flow.request(rid).destinations if d.name == "hubspot")
                .receipt)


def entries(flow: Flow, kind: str) -> list[dict[str, Any]]:
    with flow.core.engine.connect() as conn:
        return [json.loads(d) for d in conn.execute(select(ledger.ledger.c.detail).where(
            ledger.ledger.c.kind == kind)).scalars()]


def test_an_included_record_joins_the_answer_and_an_excluded_one_is_dropped(
        held: tuple[Flow, str]):
    flow, rid = held
    assert review(flow, rid, ("contact:2", INCLUDE), ("contact:3", EXCLUDE)) == \
        "request_review"

    kept = payload(flow, rid)
    assert kept["fields"] == [["contact:1", "firstname", "Ada", "contact"],
                              ["contact:2", "lastname", "Lovelace-King", "contact"]]
    assert kept["review"] == [] and kept["reviewed"] == {INCLUDE: 1, EXCLUDE: 1}
    assert _anywhere(flow.core.engine, "Bea") == []  # the excluded record's data is gone
    assert receipt(flow, rid)["held_for_review"] == []
    assert receipt(flow, rid)["included_after_review"] == ["contact:2"]
    assert receipt(flow, rid)["excluded_after_review"] == ["contact:3"]
    [hubspot] = [d for d in flow.request(rid).destinations if d.name == "hubspot"]
    assert (hubspot.status, hubspot.reason) == (rq.DONE, None)
    assert flow.request(rid).status == rq.COMPLETED

    [entry] = entries(flow, "request.reviewed")
    assert (entry["request"], entry["included"], entry["excluded"], entry["actor"],
            entry["destinations"]) == (rid, ["contact:2"], ["contact:3"], "cli:dpo",
                                       ["hubspot"])
    mark = entry["reason"][freetext.MARK]  # sealed like any reason: the hash only
    assert _anywhere(flow.core.engine, REASON) == []
    with flow.core.engine.connect() as conn:
        assert freetext.opened(conn, flow.core.keyring, [mark])[mark].text == REASON
        assert ledger.verify(conn).ok


def test_a_review_can_be_made_in_steps_each_record_once(held: tuple[Flow, str]):
    flow, rid = held
    assert review(flow, rid, ("contact:3", EXCLUDE)) == "request_review"
    assert receipt(flow, rid)["held_for_review"] == ["contact:2"]
    [hubspot] = [d for d in flow.request(rid).destinations if d.name == "hubspot"]
    assert (hubspot.status, hubspot.reason) == (
        rq.AWAITING_REVIEW, "awaiting review: 1 record(s) held, not in the answer")
    assert flow.request(rid).status == rq.IN_PROGRESS
    before = (payload(flow, rid), receipt(flow, rid))

    assert review(flow, rid, ("contact:3", INCLUDE)) == "invalid"  # decided already
    assert review(flow, rid, ("hubspot:contact:2", INCLUDE), ("contact:3", EXCLUDE)) == \
        "invalid"  # one of them cannot be decided: neither is
    assert (payload(flow, rid), receipt(flow, rid)) == before
    assert len(entries(flow, "request.reviewed")) == 1

    assert review(flow, rid, ("hubspot:contact:2", INCLUDE)) == "request_review"
    assert [f[0] for f in payload(flow, rid)["fields"]] == ["contact:1", "contact:2"]
    assert flow.request(rid).status == rq.COMPLETED  # the last held record decided


@pytest.mark.parametrize("records, reason", [
    ((("contact:9", INCLUDE),), REASON),       # never held for this request
    ((("contact:1", INCLUDE),), REASON),       # the person's own record: in the answer
    ((), REASON),                              # nothing named
    ((("contact:2", INCLUDE),), "  "),         # no reason
    ((("contact:2", INCLUDE), ("contact:2", EXCLUDE)), REASON),  # named twice
    ((("contact:2", "maybe"),), REASON),       # no such decision
])
def test_what_cannot_be_decided_is_refused_and_changes_nothing(
        held: tuple[Flow, str], records: tuple[tuple[str, str], ...], reason: str):
    flow, rid = held
    before = (payload(flow, rid), receipt(flow, rid))
    assert review(flow, rid, *records, reason=reason) == "invalid"
    assert (payload(flow, rid), receipt(flow, rid)) == before
    assert entries(flow, "request.reviewed") == []


def test_no_decision_on_a_rejected_request_or_after_the_answer_is_gone(
        held: tuple[Flow, str]):
    flow, rid = held
    # A second access request, rejected once its answer was gathered.
    rejected = str(uuid.uuid4())
    flow.event(RequestReceived(meta("acc2"), SubjectHint(email=EMAIL), RequestKind.ACCESS,
                               rejected))
    flow.event(RequestAction(meta("no"), rejected, RequestStep.REJECT, reason="manifestly "
                             "unfounded", actor="cli"))
    assert review(flow, rejected, ("contact:2", INCLUDE)) == "invalid"

    # The person is erased: the kept answer goes with their key; nothing is left to decide.
    erasure = str(uuid.uuid4())
    flow.event(RequestReceived(meta("era"), SubjectHint(email=EMAIL), RequestKind.ERASURE,
                               erasure))
    flow.event(RequestAction(meta("na"), erasure, RequestStep.NOT_APPLICABLE,
                             destination="partner:contact_centre", reason="never sent",
                             actor="cli"))
    flow.deliver("hubspot", NOTIFIER)
    assert flow.request(erasure).status == rq.COMPLETED
    assert receipt(flow, rid)["held_for_review"] == ["contact:2", "contact:3"]
    assert review(flow, rid, ("contact:2", INCLUDE)) == "invalid"
    assert entries(flow, "request.reviewed") == []


def test_held_records_keep_the_request_open_with_its_destination_awaiting_review(
        held: tuple[Flow, str]):
    flow, rid = held
    request = flow.request(rid)
    [hubspot] = [d for d in request.destinations if d.name == "hubspot"]
    assert (hubspot.status, hubspot.reason) == (
        rq.AWAITING_REVIEW, f"awaiting review: 2 record(s) held, not in the answer: {SHARED}")
    assert request.completed_at is None and entries(flow, "request.completed") == []
    # Nothing hands it back to be finished meanwhile, however long the review takes.
    with flow.core.engine.connect() as conn:
        assert rq.ready_to_finish(conn, [rid]) == []
        assert rid not in rq.stalled(conn, flow.clock[0] + timedelta(days=3),
                                     timedelta(minutes=5))
    flow.event(RequestAction(meta("finish"), rid, RequestStep.FINISH, actor="privasync"))
    assert flow.request(rid).status == rq.IN_PROGRESS


def test_the_decision_on_the_last_held_record_completes_the_request_once(
        held: tuple[Flow, str]):
    flow, rid = held
    flow.clock[0] += timedelta(days=2)
    assert review(flow, rid, ("contact:2", INCLUDE), ("contact:3", EXCLUDE)) == \
        "request_review"
    request = flow.request(rid)
    assert (request.status, request.completed_at) == (rq.COMPLETED, flow.clock[0])
    assert [(d.name, d.status) for d in request.destinations] == [
        ("hubspot", rq.DONE), ("privasync", rq.DONE)]
    assert [e["request"] for e in entries(flow, "request.completed")] == [rid]


def test_a_request_waiting_on_review_is_overdue_past_its_deadline(held: tuple[Flow, str]):
    flow, rid = held
    late = flow.request(rid).due(flow.clock[0]) + timedelta(hours=1)
    with flow.core.engine.connect() as conn:
        assert flow.request(rid).overdue(late)
        assert [r.id for r in rq.listing(conn, late, overdue=True)] == [rid]
        assert rq.overview(conn, late).overdue == 1
    flow.clock[0] = late
    assert review(flow, rid, ("contact:2", INCLUDE), ("contact:3", EXCLUDE)) == \
        "request_review"
    with flow.core.engine.connect() as conn:
        assert rq.listing(conn, late, overdue=True) == []
        assert rq.overview(conn, late).overdue == 0


def test_an_acknowledgement_does_not_stand_in_for_the_review(held: tuple[Flow, str]):
    flow, rid = held
    flow.event(RequestAcknowledged(EventMeta("hubspot", "ack-export", NOW), "hubspot", rid,
                                   True, "", "ef" * 32))
    [hubspot] = [d for d in flow.request(rid).destinations if d.name == "hubspot"]
    assert (hubspot.status, flow.request(rid).status) == (rq.AWAITING_REVIEW,
                                                          rq.IN_PROGRESS)
    [ignored] = entries(flow, "request.ack_ignored")
    assert ignored["why"] == "the destination is awaiting_review already"


def test_an_admin_may_answer_without_a_systems_held_records_by_marking_it_not_applicable(
        held: tuple[Flow, str]):
    flow, rid = held
    flow.event(RequestAction(meta("na"), rid, RequestStep.NOT_APPLICABLE,
                             destination="hubspot", reason="the kept answer expired",
                             actor="cli"))
    assert flow.request(rid).status == rq.COMPLETED
    assert receipt(flow, rid)["held_for_review"] == ["contact:2", "contact:3"]


def test_open_requests_gathered_before_the_wait_existed_wait_for_their_review(tmp_path):  # type: ignore[no-untyped-def]
    from alembic import command

    from core.crypto import Keyring
    from core.db import make_engine, request_destinations, requests
    from core.schema import alembic_config, upgrade
    from tests.core.conftest import KEK, SECRET

    engine = make_engine(f"sqlite:///{tmp_path}/old.db")
    config = alembic_config(engine)
    with engine.begin() as conn:  # a database as the release before this one left it
        config.attributes["connection"] = conn
        command.upgrade(config, "a9c4e7f1d2b8")
    row = {"kind": "access", "subject_id": "s1", "source": "admin", "actor": "cli",
           "received_at": NOW, "due_at": NOW + timedelta(days=30), "paused_seconds": 0,
           "extended_months": 0}
    held_receipt = json.dumps({"held_for_review": ["contact:2"]})
    with engine.begin() as conn:
        conn.execute(requests.insert(), [row | {"id": "open", "status": rq.IN_PROGRESS},
                                         row | {"id": "done", "status": rq.COMPLETED}])
        conn.execute(request_destinations.insert(), [
            {"request_id": r, "destination": d, "status": s, "receipt": receipt,
             "updated_at": NOW} for r in ("open", "done") for d, s, receipt in (
                ("hubspot", rq.DONE, held_receipt), ("mailchimp", rq.PENDING, None),
                ("salesforce", rq.DONE, json.dumps({"held_for_review": []})))])
    upgrade(engine, Keyring(SECRET, [KEK]))
    with engine.connect() as conn:
        found = {(r.request_id, r.destination): (r.status, r.reason) for r in conn.execute(
            request_destinations.select())}
    assert found[("open", "hubspot")] == (
        rq.AWAITING_REVIEW, "awaiting review: 1 record(s) held, not in the answer")
    assert found[("done", "hubspot")] == (rq.DONE, None)  # answered already: left alone
    assert found[("open", "salesforce")] == (rq.DONE, None)
    assert found[("open", "mailchimp")] == (rq.PENDING, None)
