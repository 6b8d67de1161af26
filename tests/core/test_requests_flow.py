"""A data-subject request from receipt to shredding, on both backends, with fake systems.

The systems are small fakes implementing the ports (the connectors are tested against
the vendor emulators apart); what is checked is the core's bookkeeping: destinations,
receipts, acknowledgements, the person told, the key destroyed, the suppression list.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from core import ackproofs, inbox, ledger, outbox
from core import subject_requests as rq
from core.db import ack_proofs, identifiers, jobs, subject_keys, suppression
from core.delivery import Deliverer, Policy
from core.dsr import ERASE, NOTIFIER
from core.errors import AuthError, PermanentError, Throttled, TransientError
from core.fulfil import Fulfiller, hand_back
from core.model import (
    Channel,
    ConsentChange,
    ConsentChanged,
    ConsentStatus,
    ErasureReceipt,
    ErasureStatus,
    EventMeta,
    ExportedField,
    ExportResult,
    PersonAt,
    RequestAcknowledged,
    RequestAction,
    RequestKind,
    RequestReceived,
    RequestStep,
    SubjectHint,
)
from tests.core.conftest import Core, make_core

EMAIL = "Forget.Me@example.org"
NOW = datetime(2026, 11, 1, 13, 0, tzinfo=UTC)


class Vendor:
    """Erases and exports by address, and remembers what it was asked."""

    def __init__(self, name: str, *, ack: bool = False) -> None:
        self.name, self.ack = name, ack
        self.held = {EMAIL.lower()}
        self.asked: list[str] = []

    erase_batch_size = export_batch_size = 10

    def erase(self, people: Sequence[PersonAt]) -> list[ErasureReceipt]:
        out = []
        for p in people:
            self.asked.append(p.request_id)
            gone = sum(1 for e in p.emails if e in self.held)
            self.held -= set(p.emails)
            out.append(ErasureReceipt(p.subject_id, ErasureStatus.AWAITING_ACK if self.ack
                                      else ErasureStatus.DONE, vendor_status=204,
                                      verified="read back: 0 found", records=gone))
        return out

    def export(self, people: Sequence[PersonAt]) -> list[ExportResult]:
        return [ExportResult(p.subject_id, (ExportedField("contact:1", "firstname", "Ada"),))
                for p in people]


class Told:
    def __init__(self) -> None:
        self.notices: list[tuple[str, str, str]] = []

    def notify(self, to: str, *, kind: str, request_id: str, at: datetime,
               reason: str = "") -> Mapping[str, str]:
        self.notices.append((to, kind, request_id))
        return {"code": "250", "message_id": f"<{uuid.uuid4()}@test>"}


class Flow:
    def __init__(self, engine, **routes: object) -> None:  # type: ignore[no-untyped-def]
        self.clock = [NOW]
        self.vendor, self.partner, self.told = Vendor("hubspot"), Vendor(
            "partner:contact_centre", ack=True), Told()
        self.core: Core = make_core(engine, clock=lambda: self.clock[0],
                                    erasure=("hubspot", "partner:contact_centre"),
                                    exports=("hubspot",), notifier=True, **routes)
        self.deliverer = Deliverer(engine, {}, lambda n, r: 1.0, lambda: self.clock[0],
                                   holder="worker:test", policy=Policy(),
                                   keyring=self.core.keyring)
        Fulfiller(self.deliverer, self.core.keyring,
                  erasure={"hubspot": self.vendor, "partner:contact_centre": self.partner},
                  exports={"hubspot": self.vendor}, notifier=self.told,
                  ack_within={"partner:contact_centre": timedelta(hours=72)},
                  export_keep=timedelta(days=30))

    def event(self, ev: object) -> None:
        self.core.store([ev], self.clock[0])  # type: ignore[list-item]
        self.core.apply()

    def deliver(self, *destinations: str) -> None:
        for d in destinations:
            self.deliverer.run(d)
        self.core.apply()

    def request(self, request_id: str) -> rq.Request:
        with self.core.engine.connect() as conn:
            found = rq.get(conn, request_id)
        assert found is not None
        return found


def meta(name: str, when: datetime = NOW) -> EventMeta:
    return EventMeta("admin", name, when, kind="test")


def subscribe(flow: Flow) -> None:
    flow.event(ConsentChanged(EventMeta("hubspot", "optout", NOW), SubjectHint(email=EMAIL),
                              (ConsentChange("offers", Channel.EMAIL, ConsentStatus.WITHDRAWN),)))


@pytest.fixture
def flow(engine) -> Flow:  # type: ignore[no-untyped-def]
    return Flow(engine)


def count(engine, table, *where) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where))
                   .scalar_one())


def test_an_erasure_is_carried_out_acknowledged_told_and_shredded(flow: Flow):
    subscribe(flow)
    rid = str(uuid.uuid4())
    flow.event(RequestReceived(meta("r1"), SubjectHint(email=EMAIL), RequestKind.ERASURE, rid,
                               actor="cli"))
    request = flow.request(rid)
    assert request.status == rq.IN_PROGRESS
    assert request.due(NOW) == datetime(2026, 12, 1, 13, tzinfo=UTC)
    assert [d.status for d in request.destinations] == [rq.PENDING, rq.PENDING]
    engine = flow.core.engine
    assert count(engine, suppression) == 1

    flow.deliver("hubspot", "partner:contact_centre")
    assert EMAIL.lower() not in flow.vendor.held and flow.partner.asked == [rid]
    states = {d.name: d.status for d in flow.request(rid).destinations}
    assert states == {"hubspot": rq.DONE, "partner:contact_centre": rq.AWAITING_ACK}
    assert flow.request(rid).destinations[1].ack_due == NOW + timedelta(hours=72)

    flow.event(RequestAcknowledged(EventMeta("partner:contact_centre", "ack1", NOW),
                                   "partner:contact_centre", rid, True, "deleted",
                                   "ab" * 32))
    assert count(engine, jobs, jobs.c.destination == NOTIFIER) == 1
    assert count(engine, subject_keys) == 1  # the person must still be addressable

    flow.deliver(NOTIFIER)
    assert flow.told.notices == [(EMAIL.lower(), "erasure", rid)]
    done = flow.request(rid)
    assert done.status == rq.COMPLETED and done.confirmed_at is not None
    assert count(engine, subject_keys) == count(engine, identifiers) == 0
    assert count(engine, suppression) == 1
    with engine.connect() as conn:
        assert ledger.verify(conn).ok
        kinds = [k for k in conn.execute(select(ledger.ledger.c.kind)).scalars()
                 if k.startswith(("request.", "subject.erased"))]
    assert kinds[:1] == ["request.received"] and "subject.erased" in kinds


def test_an_erased_person_coming_back_is_suppressed(flow: Flow):
    test_an_erasure_is_carried_out_acknowledged_told_and_shredded(flow)
    engine = flow.core.engine
    jobs_before = count(engine, jobs)
    report_before = count(engine, subject_keys)
    flow.event(ConsentChanged(EventMeta("mailchimp", "resubscribe", NOW + timedelta(days=1)),
                              SubjectHint(email=EMAIL.upper()),
                              (ConsentChange("offers", Channel.EMAIL, ConsentStatus.GRANTED),)))
    assert count(engine, jobs) == jobs_before and count(engine, subject_keys) == report_before
    with engine.connect() as conn:
        blocked = conn.execute(select(func.count()).select_from(ledger.ledger).where(
            ledger.ledger.c.kind == "suppression.blocked")).scalar_one()
    assert blocked == 1


def test_an_unacknowledged_erasure_stays_open_and_becomes_overdue(flow: Flow):
    subscribe(flow)
    rid = str(uuid.uuid4())
    flow.event(RequestReceived(meta("r2"), SubjectHint(email=EMAIL), RequestKind.ERASURE, rid))
    flow.deliver("hubspot", "partner:contact_centre")
    later = NOW + timedelta(hours=73)
    request = flow.request(rid)
    assert request.open and request.acks_overdue(later) == ["partner:contact_centre"]
    with flow.core.engine.connect() as conn:
        assert [r.id for r in rq.listing(conn, later, overdue=True)] == [rid]
        assert rq.acks_due(conn, later) == [(rid, "partner:contact_centre")]


def test_the_clock_stops_until_identity_is_verified_and_an_extension_is_recorded(flow: Flow):
    subscribe(flow)
    rid = str(uuid.uuid4())
    flow.event(RequestReceived(meta("r3"), SubjectHint(email=EMAIL), RequestKind.ERASURE, rid,
                               identity_verified=False))
    assert flow.request(rid).status == rq.IDENTITY_PENDING
    assert count(flow.core.engine, jobs, jobs.c.kind == "erasure") == 0
    flow.clock[0] = NOW + timedelta(days=5)
    flow.event(RequestAction(meta("v", flow.clock[0]), rid, RequestStep.VERIFY_IDENTITY,
                             actor="cli"))
    request = flow.request(rid)
    assert request.status == rq.IN_PROGRESS
    assert request.due(flow.clock[0]) == datetime(2026, 12, 6, 13, tzinfo=UTC)
    flow.event(RequestAction(meta("x", flow.clock[0]), rid, RequestStep.EXTEND,
                             reason="many systems to search", months=2, actor="cli"))
    assert flow.request(rid).due(flow.clock[0]) == datetime(2027, 2, 6, 13, tzinfo=UTC)
    flow.event(RequestAction(meta("x2", flow.clock[0]), rid, RequestStep.EXTEND,
                             reason="again", months=1, actor="cli"))
    assert flow.request(rid).extended_months == 2  # once only: the second was refused


def test_a_rejection_lifts_the_suppression_and_tells_the_person(flow: Flow):
    subscribe(flow)
    rid = str(uuid.uuid4())
    flow.event(RequestReceived(meta("r4"), SubjectHint(email=EMAIL), RequestKind.ERASURE, rid))
    flow.event(RequestAction(meta("no"), rid, RequestStep.REJECT, reason="identity not proven",
                             actor="cli"))
    engine = flow.core.engine
    assert flow.request(rid).status == rq.REJECTED and count(engine, suppression) == 0
    assert count(engine, jobs, jobs.c.kind == "erasure", jobs.c.status == outbox.PENDING) == 0
    flow.deliver(NOTIFIER)
    assert flow.told.notices == [(EMAIL.lower(), "rejection", rid)]
    assert count(engine, subject_keys) == 1  # nothing erased


def test_an_access_request_gathers_every_system_and_completes(flow: Flow):
    subscribe(flow)
    rid = str(uuid.uuid4())
    flow.event(RequestReceived(meta("r5"), SubjectHint(email=EMAIL), RequestKind.ACCESS, rid))
    flow.deliver("hubspot")
    request = flow.request(rid)
    assert request.status == rq.COMPLETED
    assert {d.name: d.status for d in request.destinations} == {"hubspot": rq.DONE,
                                                                "privasync": rq.DONE}


def test_an_objection_withdraws_every_marketing_purpose_on_every_channel(flow: Flow):
    subscribe(flow)
    rid = str(uuid.uuid4())
    flow.event(RequestReceived(meta("r6"), SubjectHint(email=EMAIL), RequestKind.OBJECTION,
                               rid))
    from core.db import consents

    with flow.core.engine.connect() as conn:
        rows = conn.execute(select(consents.c.purpose, consents.c.channel, consents.c.status)
                            ).all()
    assert {(p, c) for p, c, s in rows if s == "withdrawn"} >= {
        ("offers", "email"), ("offers", "sms"), ("product_news", "email")}
    assert flow.request(rid).status == rq.COMPLETED


def test_the_inbox_is_empty_after_each_step(flow: Flow):
    subscribe(flow)
    with flow.core.engine.connect() as conn:
        assert inbox.backlog(conn).rows == 0


class Throttling(Vendor):
    """Answers 429 to the first ``times`` calls, as a vendor past its rate limit does."""

    def __init__(self, name: str, times: int) -> None:
        super().__init__(name)
        self.times = times

    def erase(self, people: Sequence[PersonAt]) -> list[ErasureReceipt]:
        if self.times:
            self.times -= 1
            raise Throttled("hubspot gdpr delete: HTTP 429", retry_after=1.0)
        return super().erase(people)


def test_a_rate_limited_erasure_costs_no_attempt_and_is_never_given_up(
        engine):  # type: ignore[no-untyped-def]
    flow = Flow(engine)
    throttling = Throttling("hubspot", times=7)
    flow.deliverer = Deliverer(engine, {}, lambda n, r: max(r or 0.0, 1.0),
                               lambda: flow.clock[0], holder="worker:test",
                               policy=Policy(max_attempts=3), keyring=flow.core.keyring)
    Fulfiller(flow.deliverer, flow.core.keyring, erasure={"hubspot": throttling},
              exports={}, notifier=flow.told, ack_within={}, export_keep=timedelta(days=30))
    subscribe(flow)
    rid = str(uuid.uuid4())
    flow.event(RequestReceived(meta("r-throttled"), SubjectHint(email=EMAIL),
                               RequestKind.ERASURE, rid, actor="cli"))
    for _ in range(8):
        flow.deliver("hubspot")
        with engine.connect() as conn:
            status, attempts = conn.execute(select(jobs.c.status, jobs.c.attempts).where(
                jobs.c.destination == "hubspot", jobs.c.kind == ERASE)).one()
        assert status in ("pending", "done") and attempts <= 1
        flow.clock[0] += timedelta(seconds=2)
    assert throttling.times == 0 and status == "done"
    assert {d.name: d.status for d in flow.request(rid).destinations}["hubspot"] == "done"


class QuickPartner(Vendor):
    """Acknowledges inside the call, before privasync has recorded that it asked."""

    def __init__(self, flow: Flow) -> None:
        super().__init__("partner:contact_centre", ack=True)
        self.flow = flow

    def erase(self, people: Sequence[PersonAt]) -> list[ErasureReceipt]:
        receipts = super().erase(people)
        for p in people:
            self.flow.event(RequestAcknowledged(
                EventMeta("partner:contact_centre", f"ack-{p.request_id}", NOW),
                "partner:contact_centre", p.request_id, True, "deleted", "cd" * 32))
        return receipts


def test_an_acknowledgement_that_overtakes_our_own_receipt_still_completes(
        engine):  # type: ignore[no-untyped-def]
    flow = Flow(engine)
    quick = QuickPartner(flow)
    Fulfiller(flow.deliverer, flow.core.keyring,
              erasure={"hubspot": flow.vendor, "partner:contact_centre": quick},
              exports={}, notifier=flow.told,
              ack_within={"partner:contact_centre": timedelta(hours=72)},
              export_keep=timedelta(days=30))
    subscribe(flow)
    rid = str(uuid.uuid4())
    flow.event(RequestReceived(meta("r-quick"), SubjectHint(email=EMAIL), RequestKind.ERASURE,
                               rid, actor="cli"))
    flow.deliver("hubspot", "partner:contact_centre", NOTIFIER)
    request = flow.request(rid)
    assert {d.name: d.status for d in request.destinations} == {
        "hubspot": "done", "partner:contact_centre": "done"}
    assert request.status == rq.COMPLETED and flow.told.notices


def test_a_request_nobody_finished_is_found_and_handed_back(
        engine):  # type: ignore[no-untyped-def]
    flow = Flow(engine)
    Fulfiller(flow.deliverer, flow.core.keyring, erasure={"hubspot": flow.vendor}, exports={},
              notifier=flow.told, ack_within={}, export_keep=timedelta(days=30))
    subscribe(flow)
    rid = str(uuid.uuid4())
    flow.event(RequestReceived(meta("r-stalled"), SubjectHint(email=EMAIL),
                               RequestKind.ERASURE, rid, actor="cli"))
    quiet = timedelta(seconds=10)
    with engine.begin() as conn:
        assert rq.stalled(conn, NOW + timedelta(minutes=5), quiet) == []  # jobs still due
        conn.execute(jobs.update().values(status="done"))
        # What two last answers applied at once leave behind: all ended, nobody finishing.
        for destination in ("hubspot", "partner:contact_centre"):
            rq.record(conn, rid, destination, status=rq.DONE, now=NOW, receipt={"at": "x"})
        assert rq.stalled(conn, NOW + timedelta(seconds=5), quiet) == []  # not quiet yet
        assert rq.stalled(conn, NOW + timedelta(seconds=11), quiet) == [rid]
        hand_back(conn, flow.core.keyring, NOW, [rid])
    flow.core.apply()
    flow.deliver(NOTIFIER)
    request = flow.request(rid)
    assert request.status == rq.COMPLETED
    assert [(kind, request_id) for _, kind, request_id in flow.told.notices] == [
        ("erasure", rid)]
    with engine.connect() as conn:
        assert rq.stalled(conn, NOW + timedelta(minutes=5), quiet) == []


class Bouncing(Told):
    """A notifier whose relay refuses the first ``times`` notices with ``error``."""

    def __init__(self, error: Exception, times: int = 1_000) -> None:
        super().__init__()
        self.error, self.times, self.tried = error, times, 0

    def notify(self, to: str, *, kind: str, request_id: str, at: datetime,
               reason: str = "") -> Mapping[str, str]:
        self.tried += 1
        if self.times:
            self.times -= 1
            raise self.error
        return super().notify(to, kind=kind, request_id=request_id, at=at, reason=reason)


def erased_but_untold(engine, notifier: Told, *,  # type: ignore[no-untyped-def]
                      max_attempts: int = 12) -> tuple[Flow, str]:
    """An erasure done at its only destination, with the notice to the person still due."""
    flow = Flow(engine)
    flow.deliverer = Deliverer(engine, {}, lambda n, r: 1.0, lambda: flow.clock[0],
                               holder="worker:test", policy=Policy(max_attempts=max_attempts),
                               keyring=flow.core.keyring)
    Fulfiller(flow.deliverer, flow.core.keyring, erasure={"hubspot": flow.vendor}, exports={},
              notifier=notifier, ack_within={}, export_keep=timedelta(days=30))
    subscribe(flow)
    rid = str(uuid.uuid4())
    flow.event(RequestReceived(meta(f"r-{rid}"), SubjectHint(email=EMAIL),
                               RequestKind.ERASURE, rid, actor="cli"))
    flow.event(RequestAction(meta(f"na-{rid}"), rid, RequestStep.NOT_APPLICABLE,
                             destination="partner:contact_centre", reason="never sent",
                             actor="cli"))
    flow.deliver("hubspot")
    assert count(engine, jobs, jobs.c.destination == NOTIFIER) == 1
    return flow, rid


def not_told_entries(engine) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return [json.loads(d) for d in conn.execute(select(ledger.ledger.c.detail).where(
            ledger.ledger.c.kind == "request.person_not_told")).scalars()]


def test_a_refused_notice_completes_the_erasure_and_shreds_the_key(
        engine):  # type: ignore[no-untyped-def]
    refused = Bouncing(PermanentError("smtp notice: RCPT refused: SMTP 550",
                                      error_class="smtp_recipient_refused"))
    flow, rid = erased_but_untold(engine, refused)

    flow.deliver(NOTIFIER)

    request = flow.request(rid)
    assert request.status == rq.COMPLETED and request.confirmed_at is None
    assert request.note == "the person could not be told: smtp_recipient_refused"
    assert count(engine, subject_keys) == count(engine, identifiers) == 0
    assert not_told_entries(engine) == [{
        "request": rid, "told": "could not tell the person",
        "reason": "smtp_recipient_refused", "given_up": "refused"}]
    with engine.connect() as conn:
        assert ledger.verify(conn).ok
        kinds = list(conn.execute(select(ledger.ledger.c.kind)).scalars())
        details = b"".join(d for d in conn.execute(select(ledger.ledger.c.detail)).scalars()
                           if d)
    assert "subject.erased" in kinds and EMAIL.lower().encode() not in details.lower()
    flow.deliver(NOTIFIER)
    assert refused.tried == 1  # given up once: never tried again


@pytest.mark.parametrize("ours", [
    AuthError("smtp notice: login refused (SMTP 535)", error_class="smtp_auth"),
    PermanentError("smtp notice: TLS failed (SSLError)", error_class="smtp_tls")],
    ids=["login", "tls"])
def test_our_own_relay_failing_leaves_the_erasure_waiting_with_the_address(
        engine, ours: Exception):  # type: ignore[no-untyped-def]
    """Our relay's configuration is for an operator to fix and replay; ending the request
    would shred the address the fixed relay still needs."""
    flow, rid = erased_but_untold(engine, Bouncing(ours))

    flow.deliver(NOTIFIER)

    request = flow.request(rid)
    assert request.status == rq.IN_PROGRESS and request.note is None
    assert count(engine, subject_keys) == 1 and not_told_entries(engine) == []


def test_a_notice_that_fails_for_a_while_is_retried_and_then_delivered(
        engine):  # type: ignore[no-untyped-def]
    flaky = Bouncing(TransientError("smtp notice: SMTP 451", error_class="smtp_4xx"), times=2)
    flow, rid = erased_but_untold(engine, flaky)

    for _ in range(2):
        flow.deliver(NOTIFIER)
        request = flow.request(rid)
        assert request.status == rq.IN_PROGRESS and request.note is None
        assert count(engine, subject_keys) == 1  # the person must still be addressable
        flow.clock[0] += timedelta(seconds=2)
    flow.deliver(NOTIFIER)

    request = flow.request(rid)
    assert request.status == rq.COMPLETED and request.confirmed_at is not None
    assert flaky.notices == [(EMAIL.lower(), "erasure", rid)]
    assert count(engine, subject_keys) == 0 and not_told_entries(engine) == []


def test_a_notice_out_of_retries_completes_the_erasure_with_the_reason(
        engine):  # type: ignore[no-untyped-def]
    down = Bouncing(TransientError("smtp notice: connection refused", error_class="network"))
    flow, rid = erased_but_untold(engine, down, max_attempts=3)

    for _ in range(3):
        assert flow.request(rid).status == rq.IN_PROGRESS
        flow.deliver(NOTIFIER)
        flow.clock[0] += timedelta(seconds=2)

    request = flow.request(rid)
    assert down.tried == 3 and request.status == rq.COMPLETED
    assert request.note == "the person could not be told: network"
    assert count(engine, subject_keys) == 0
    assert [e["given_up"] for e in not_told_entries(engine)] == ["retries exhausted"]


def test_a_refused_rejection_notice_is_recorded_and_not_sent_again(
        engine):  # type: ignore[no-untyped-def]
    flow = Flow(engine)
    refused_once = Bouncing(PermanentError("SMTP 550", error_class="smtp_recipient_refused"),
                            times=1)
    Fulfiller(flow.deliverer, flow.core.keyring, erasure={}, exports={},
              notifier=refused_once, ack_within={}, export_keep=timedelta(days=30))
    subscribe(flow)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    for rid in (first, second):
        flow.event(RequestReceived(meta(f"r-{rid}"), SubjectHint(email=EMAIL),
                                   RequestKind.ERASURE, rid))
        flow.event(RequestAction(meta(f"no-{rid}"), rid, RequestStep.REJECT,
                                 reason="identity not proven", actor="cli"))
        flow.deliver(NOTIFIER)

    assert flow.request(first).note == "the person could not be told: smtp_recipient_refused"
    assert flow.request(first).status == rq.REJECTED
    assert refused_once.notices == [(EMAIL.lower(), "rejection", second)]
    assert count(engine, subject_keys) == 1  # a rejection erases nothing


def ledger_details(engine, kind: str) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return [json.loads(d) for d in conn.execute(select(ledger.ledger.c.detail).where(
            ledger.ledger.c.kind == kind).order_by(ledger.ledger.c.seq)).scalars()]


def ack(rid: str, event_id: str, completed: bool, detail: str = "") -> RequestAcknowledged:
    return RequestAcknowledged(EventMeta("partner:contact_centre", event_id, NOW),
                               "partner:contact_centre", rid, completed, detail, "ef" * 32)


def test_a_late_rejection_leaves_a_completed_erasure_completed(flow: Flow):
    test_an_erasure_is_carried_out_acknowledged_told_and_shredded(flow)
    rid = flow.partner.asked[0]
    flow.event(ack(rid, "ack-late", False, "we never had this person"))
    request = flow.request(rid)
    assert request.status == rq.COMPLETED
    assert {d.name: d.status for d in request.destinations}["partner:contact_centre"] == \
        rq.DONE
    assert ledger_details(flow.core.engine, "request.ack_ignored") == [{
        "request": rid, "destination": "partner:contact_centre", "completed": False,
        "event": "ack-late", "proof_sha256": "ef" * 32, "why": "the request is completed"}]


def test_an_acknowledgement_before_anything_was_sent_changes_nothing(flow: Flow):
    subscribe(flow)
    rid = str(uuid.uuid4())
    flow.event(RequestReceived(meta("r-early"), SubjectHint(email=EMAIL), RequestKind.ERASURE,
                               rid, actor="cli"))
    flow.event(ack(rid, "ack-early", True, "deleted"))
    partner = {d.name: d for d in flow.request(rid).destinations}["partner:contact_centre"]
    assert partner.status == rq.PENDING and flow.partner.asked == []
    [ignored] = ledger_details(flow.core.engine, "request.ack_ignored")
    assert ignored["why"] == "nothing was sent to this partner yet"

    flow.deliver("hubspot", "partner:contact_centre")
    assert {d.name: d.status for d in flow.request(rid).destinations} == {
        "hubspot": rq.DONE, "partner:contact_centre": rq.AWAITING_ACK}
    flow.event(ack(rid, "ack-real", True, "deleted"))
    assert {d.name: d.status for d in flow.request(rid).destinations} == {
        "hubspot": rq.DONE, "partner:contact_centre": rq.DONE}


def test_an_extension_is_told_to_the_person_once(flow: Flow):
    subscribe(flow)
    rid = str(uuid.uuid4())
    flow.event(RequestReceived(meta("r-ext"), SubjectHint(email=EMAIL), RequestKind.ACCESS,
                               rid, actor="cli"))
    flow.event(RequestAction(meta("ext"), rid, RequestStep.EXTEND,
                             reason="many systems to search", months=2, actor="cli"))
    flow.deliver(NOTIFIER)
    assert flow.told.notices == [(EMAIL.lower(), "extension", rid)]
    request = flow.request(rid)
    assert request.extension_told_at == NOW and request.open
    [told] = ledger_details(flow.core.engine, "request.extension_told")
    assert told["request"] == rid and "code" in told
    flow.deliver(NOTIFIER)
    assert len(flow.told.notices) == 1


def test_a_second_notice_job_planned_before_the_first_was_applied_tells_nobody_again(
        flow: Flow):
    """A finishing step applied after the notice was sent, but before the applier saw the
    notice's own step, plans another notice job: it must find the person told."""
    subscribe(flow)
    rid = str(uuid.uuid4())
    flow.event(RequestReceived(meta("r-twice"), SubjectHint(email=EMAIL), RequestKind.ERASURE,
                               rid, actor="cli"))
    flow.deliver("hubspot", "partner:contact_centre")
    flow.event(ack(rid, "ack-twice", True, "deleted"))
    with flow.core.engine.begin() as conn:  # a late second hand-back, still in the inbox
        hand_back(conn, flow.core.keyring, NOW, [rid])
    flow.deliverer.run(NOTIFIER)  # tells, and stores its step behind the hand-back
    assert flow.core.applier.tick(max_events=1) is not None  # the hand-back alone
    assert flow.request(rid).confirmed_at is None
    assert count(flow.core.engine, jobs, jobs.c.destination == NOTIFIER,
                 jobs.c.status == outbox.PENDING) == 1
    flow.deliverer.run(NOTIFIER)
    flow.core.apply()
    assert flow.told.notices == [(EMAIL.lower(), "erasure", rid)]
    assert flow.request(rid).status == rq.COMPLETED
    assert len(ledger_details(flow.core.engine, "request.person_told")) == 1


def test_two_extensions_in_one_batch_extend_once(flow: Flow):
    subscribe(flow)
    rid = str(uuid.uuid4())
    flow.event(RequestReceived(meta("r-ext2"), SubjectHint(email=EMAIL), RequestKind.ERASURE,
                               rid, actor="cli"))
    flow.core.store([RequestAction(meta("ext-a"), rid, RequestStep.EXTEND, reason="busy",
                                   months=1, actor="cli"),
                     RequestAction(meta("ext-b"), rid, RequestStep.EXTEND, reason="busier",
                                   months=2, actor="cli")], NOW)
    flow.core.apply()
    request = flow.request(rid)
    assert (request.extended_months, request.extension_reason) == (1, "busy")
    assert request.due(NOW) == datetime(2027, 1, 1, 13, tzinfo=UTC)
    assert len(ledger_details(flow.core.engine, "request.extended")) == 1


def test_an_acks_signed_body_and_headers_are_kept_sealed_until_the_erasure(flow: Flow):
    subscribe(flow)
    rid = str(uuid.uuid4())
    flow.event(RequestReceived(meta("r-proof"), SubjectHint(email=EMAIL), RequestKind.ERASURE,
                               rid, actor="cli"))
    flow.deliver("hubspot", "partner:contact_centre")
    body = json.dumps({"event_id": "ack-signed", "request_id": rid, "status": "completed",
                       "detail": "removed Forget.Me@example.org"}).encode()
    headers = (("X-Privasync-Signature", "v1=" + "0" * 64), ("X-Privasync-Timestamp", "1"))
    proof = hashlib.sha256(body).hexdigest()
    flow.event(RequestAcknowledged(
        EventMeta("partner:contact_centre", "ack-signed", NOW), "partner:contact_centre", rid,
        True, "removed", proof, signed_body=body, signed_headers=headers))
    engine = flow.core.engine
    with engine.connect() as conn:
        [kept] = ackproofs.of_request(conn, flow.core.keyring, rid)
        stored = b"".join(conn.execute(select(ack_proofs.c.signed)).scalars())
        assert ledger.verify(conn).ok
    assert (kept.body, dict(kept.headers or {}), kept.proof_sha256) == (
        body, dict(headers), proof)
    assert kept.body_matches is True and kept.received_at == NOW
    assert b"Forget.Me" not in stored  # sealed under the person's key
    assert ledger_details(engine, "request.acknowledged")[0]["proof_sha256"] == proof

    flow.deliver(NOTIFIER)  # told, then shredded: the kept body goes with the key
    assert flow.request(rid).status == rq.COMPLETED
    assert count(engine, ack_proofs) == 0


def test_a_refused_extension_notice_is_recorded_and_the_request_goes_on(
        engine):  # type: ignore[no-untyped-def]
    refused = Bouncing(PermanentError("smtp notice: RCPT refused: SMTP 550",
                                      error_class="smtp_recipient_refused"))
    flow = Flow(engine)
    Fulfiller(flow.deliverer, flow.core.keyring, erasure={"hubspot": flow.vendor}, exports={},
              notifier=refused, ack_within={}, export_keep=timedelta(days=30))
    subscribe(flow)
    rid = str(uuid.uuid4())
    flow.event(RequestReceived(meta("r-ext-refused"), SubjectHint(email=EMAIL),
                               RequestKind.ERASURE, rid, actor="cli"))
    flow.event(RequestAction(meta("ext-refused"), rid, RequestStep.EXTEND, reason="busy",
                             months=1, actor="cli"))
    flow.deliver(NOTIFIER)
    request = flow.request(rid)
    assert request.status == rq.IN_PROGRESS and request.extension_told_at == NOW
    assert request.note is None and count(engine, subject_keys) == 1
    [told] = ledger_details(engine, "request.extension_told")
    assert (told["told"], told["reason"]) == ("could not tell the person",
                                              "smtp_recipient_refused")
    flow.deliver(NOTIFIER)
    assert refused.tried == 1


# Free text that may describe the person, given at each step that takes one.
EXTEND_REASON = "Ada Lovelace's file sits in the Lyon branch archive"
REJECT_REASON = "Ada's brother asked in her name; her own identity not proven"
NA_REASON = "Ada was never a HubSpot contact (checked by M. Duval)"
ACK_DETAIL = "deleted Ada Lovelace, customer 4471, and her two orders"
FREE_TEXTS = (EXTEND_REASON, REJECT_REASON, NA_REASON, ACK_DETAIL)


def _anywhere(engine, text: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Every table holding ``text`` in any column, in clear (str or bytes)."""
    from core.db import metadata

    found, raw = [], text.encode()
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                if any(text in v if isinstance(v, str) else raw in bytes(v)
                       for v in row if isinstance(v, str | bytes | memoryview)):
                    found.append(table.name)
                    break
    return found


def _free_text_entries(engine) -> dict[str, dict]:  # type: ignore[type-arg,no-untyped-def]
    """The chained details of the steps that carried a free text, by kind."""
    wanted = ("request.extended", "request.rejected", "request.not_applicable",
              "request.acknowledged")
    with engine.connect() as conn:
        rows = conn.execute(select(ledger.ledger.c.kind, ledger.ledger.c.detail).where(
            ledger.ledger.c.kind.in_(wanted))).all()
    return {kind: json.loads(detail) for kind, detail in rows}


def _steps_with_free_text(flow: Flow) -> tuple[str, str]:
    """An access request rejected with a reason, and an erasure extended, marked not
    applicable at HubSpot and acknowledged by the partner, each with its free text;
    the erasure waits for the notice to the person (then the key goes)."""
    subscribe(flow)
    access, erasure = str(uuid.uuid4()), str(uuid.uuid4())
    flow.event(RequestReceived(meta("ft-a"), SubjectHint(email=EMAIL), RequestKind.ACCESS,
                               access))
    flow.event(RequestAction(meta("ft-no"), access, RequestStep.REJECT, reason=REJECT_REASON,
                             actor="cli"))
    flow.event(RequestReceived(meta("ft-e"), SubjectHint(email=EMAIL), RequestKind.ERASURE,
                               erasure))
    flow.event(RequestAction(meta("ft-x"), erasure, RequestStep.EXTEND, reason=EXTEND_REASON,
                             months=1, actor="cli"))
    flow.event(RequestAction(meta("ft-na"), erasure, RequestStep.NOT_APPLICABLE,
                             destination="hubspot", reason=NA_REASON, actor="cli"))
    flow.deliver("partner:contact_centre")
    flow.event(RequestAcknowledged(EventMeta("partner:contact_centre", "ft-ack", NOW),
                                   "partner:contact_centre", erasure, True, ACK_DETAIL,
                                   "ef" * 32))
    return access, erasure


def test_free_texts_are_readable_until_the_erasure_and_only_their_salted_hash_after(
        flow: Flow):
    from core import freetext

    access, erasure = _steps_with_free_text(flow)
    engine = flow.core.engine
    assert count(engine, jobs, jobs.c.destination == NOTIFIER,
                 jobs.c.status == outbox.PENDING) == 1  # the person is told before the key goes
    before = _free_text_entries(engine)
    hashes = {kind: freetext.marks(detail) for kind, detail in before.items()}
    assert hashes == {"request.extended": {"reason": hashes["request.extended"]["reason"]},
                      "request.rejected": {"reason": hashes["request.rejected"]["reason"]},
                      "request.not_applicable": {
                          "reason": hashes["request.not_applicable"]["reason"]},
                      "request.acknowledged": {
                          "detail": hashes["request.acknowledged"]["detail"]}}
    with engine.connect() as conn:
        opened = freetext.opened(conn, flow.core.keyring,
                                 [h for m in hashes.values() for h in m.values()])
    assert {kind: opened[h].text for kind, m in hashes.items() for h in m.values()} == {
        "request.extended": EXTEND_REASON, "request.rejected": REJECT_REASON,
        "request.not_applicable": NA_REASON, "request.acknowledged": ACK_DETAIL}
    assert flow.request(erasure).extension_reason == EXTEND_REASON
    assert flow.request(access).rejection_reason == REJECT_REASON
    assert {d.name: d.reason for d in flow.request(erasure).destinations}["hubspot"] == \
        NA_REASON
    for text in FREE_TEXTS:  # never in clear in the chain, even before
        assert "ledger" not in _anywhere(engine, text)

    flow.deliver(NOTIFIER)  # told: the erasure completes and the key is destroyed
    assert flow.request(erasure).status == rq.COMPLETED and count(engine, subject_keys) == 0
    with engine.connect() as conn:
        assert ledger.verify(conn).ok
        assert freetext.opened(conn, flow.core.keyring, list(opened)) == {}
    assert _free_text_entries(engine) == before  # each entry still says a text was given
    for text in FREE_TEXTS:
        assert _anywhere(engine, text) == [], text
    assert flow.request(erasure).extension_reason == rq.ERASED_TEXT
    assert flow.request(access).rejection_reason == rq.ERASED_TEXT
    assert {d.name: d.reason for d in flow.request(erasure).destinations}["hubspot"] == \
        rq.ERASED_TEXT


def test_a_reason_given_after_the_erasure_is_not_kept_anywhere(flow: Flow):
    """An access request left open when the person was erased, rejected afterwards: there
    is no key to seal the reason under, so the entry says so and nothing keeps the text."""
    subscribe(flow)
    access, erasure = str(uuid.uuid4()), str(uuid.uuid4())
    flow.event(RequestReceived(meta("wh-a"), SubjectHint(email=EMAIL), RequestKind.ACCESS,
                               access))
    flow.event(RequestReceived(meta("wh-e"), SubjectHint(email=EMAIL), RequestKind.ERASURE,
                               erasure))
    for n, destination in enumerate(("hubspot", "partner:contact_centre")):
        flow.event(RequestAction(meta(f"wh-na{n}"), erasure, RequestStep.NOT_APPLICABLE,
                                 destination=destination, reason="none held", actor="cli"))
    flow.deliver(NOTIFIER)
    engine = flow.core.engine
    assert flow.request(erasure).status == rq.COMPLETED and count(engine, subject_keys) == 0
    assert flow.request(access).open
    flow.event(RequestAction(meta("wh-no"), access, RequestStep.REJECT, reason=REJECT_REASON,
                             actor="cli"))
    assert flow.request(access).status == rq.REJECTED
    assert flow.request(access).rejection_reason == rq.ERASED_TEXT
    assert _free_text_entries(engine)["request.rejected"]["reason"] == {
        "withheld": "the person's key is destroyed: the text was not kept"}
    assert _anywhere(engine, REJECT_REASON) == []
    with engine.connect() as conn:
        assert ledger.verify(conn).ok


def test_a_record_held_for_review_is_kept_apart_from_the_answer_and_named_in_the_story(
        flow: Flow):
    from core.crypto import Keyring
    from core.db import request_exports
    from core.keys import keys_of
    from core.model import HeldForReview

    def export(people: Sequence[PersonAt]) -> list[ExportResult]:
        return [ExportResult(p.subject_id, (ExportedField("contact:1", "firstname", "Ada",
                                                          "contact"),),
                             note="1 record(s); 1 held for review",
                             review=(HeldForReview("contact:2", "shares an address", (
                                 ExportedField("contact:2", "firstname", "Bea"),)),))
                for p in people]

    flow.vendor.export = export  # type: ignore[method-assign]
    subscribe(flow)
    rid = str(uuid.uuid4())
    flow.event(RequestReceived(meta("r9"), SubjectHint(email=EMAIL), RequestKind.ACCESS, rid))
    flow.deliver("hubspot")

    request = flow.request(rid)
    [hubspot] = [d for d in request.destinations if d.name == "hubspot"]
    assert (hubspot.status, hubspot.receipt["held_for_review"]) == (rq.AWAITING_REVIEW,
                                                                     ["contact:2"])
    assert hubspot.reason == "awaiting review: 1 record(s) held, not in the answer: " \
        "shares an address"
    assert request.status == rq.IN_PROGRESS  # the request waits for an admin's decision
    assert "Bea" not in json.dumps(hubspot.receipt) + (hubspot.reason or "")
    with flow.core.engine.connect() as conn:
        row = conn.execute(select(request_exports)).one()
        key = keys_of(conn, flow.core.keyring, [request.subject_id])[request.subject_id]
    payload = json.loads(Keyring.decrypt(key, row.payload) or b"{}")
    assert payload["fields"] == [["contact:1", "firstname", "Ada", "contact"]]
    assert [h["record"] for h in payload["review"]] == ["contact:2"]
