"""Rights after erasure, on both backends: suppression keeps an erased person's data out of
every sync, never their withdrawal, objection or request. A person who comes back is held
by a new subject for what they asked, shredded again when it is done; their vendor record
ids stay on the suppression list like their addresses."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from core import outbox
from core import subject_requests as rq
from core.db import jobs, ledger, subject_keys, subjects, suppression
from core.dsr import NOTIFIER
from core.model import (
    Channel,
    ConsentChange,
    ConsentChanged,
    ConsentStatus,
    ErasureRequested,
    EventMeta,
    FieldValue,
    IdentifierChanged,
    RecordChanged,
    RequestAction,
    RequestKind,
    RequestReceived,
    RequestStep,
    SubjectHint,
    SubjectSeen,
    SubjectsMerged,
    SystemRef,
)
from tests.core.test_requests_flow import (
    EMAIL,
    NOW,
    Flow,
    count,
    meta,
    subscribe,
)

LATER = NOW + timedelta(days=3)
SF_CONTACT = SystemRef("salesforce", "contact:0035g00000ErAsEd")


@pytest.fixture
def flow(engine) -> Flow:  # type: ignore[no-untyped-def]
    return Flow(engine)


def erased(flow: Flow, *, ref: SystemRef | None = None) -> str:
    """The person known (with ``ref`` if given), erased everywhere, told, shredded; returns
    the erasure's request id."""
    subscribe(flow)
    if ref is not None:
        flow.event(SubjectSeen(EventMeta(ref.system, "seen-1", NOW), SubjectHint(ref, EMAIL)))
    rid = str(uuid.uuid4())
    flow.event(RequestReceived(meta("erase-1"), SubjectHint(email=EMAIL), RequestKind.ERASURE,
                               rid, actor="cli"))
    flow.deliver("hubspot", "partner:contact_centre")
    flow.event(_ack(rid))
    flow.deliver(NOTIFIER)
    assert flow.request(rid).status == rq.COMPLETED
    assert count(flow.core.engine, subject_keys) == 0
    flow.clock[0] = LATER
    return rid


def _ack(rid: str) -> object:
    from core.model import RequestAcknowledged

    return RequestAcknowledged(EventMeta("partner:contact_centre", f"ack-{rid}", NOW),
                               "partner:contact_centre", rid, True, "deleted", "ab" * 32)


def returning_subjects(flow: Flow) -> dict[str, str]:
    with flow.core.engine.connect() as conn:
        return {r.id: r.returned_after for r in conn.execute(
            select(subjects.c.id, subjects.c.returned_after).where(
                subjects.c.returned_after.is_not(None), subjects.c.erased_at.is_(None)))}


def blocked(flow: Flow) -> int:
    return count(flow.core.engine, ledger, ledger.c.kind == "suppression.blocked")


def test_a_withdrawal_for_an_erased_address_still_reaches_every_system(flow: Flow):
    rid = erased(flow)
    routes = flow.core.applier.routes
    flow.event(ConsentChanged(EventMeta("mailchimp", "unsub-after", LATER),
                              SubjectHint(email=EMAIL.upper()),
                              (ConsentChange("offers", Channel.EMAIL, ConsentStatus.WITHDRAWN),)))
    [(held, erased_by)] = returning_subjects(flow).items()
    assert erased_by == rid
    engine = flow.core.engine
    with engine.connect() as conn:
        sent = set(conn.execute(select(jobs.c.destination).where(
            jobs.c.subject_id == held, jobs.c.kind == outbox.CONSENT)).scalars())
        address = flow.core.identity.email(conn, held)
    assert sent == set(routes.targets({"offers"}, "mailchimp")) and sent
    assert address == EMAIL.lower()

    # Nothing else of theirs comes in meanwhile: a record, a grant.
    jobs_before = count(engine, jobs)
    flow.event(RecordChanged(EventMeta("hubspot", "rec-after", LATER), SubjectHint(email=EMAIL),
                             (("first_name", FieldValue("Ada", LATER)),)))
    flow.event(ConsentChanged(EventMeta("hubspot", "grant-after", LATER),
                              SubjectHint(email=EMAIL),
                              (ConsentChange("offers", Channel.EMAIL, ConsentStatus.GRANTED),)))
    assert count(engine, jobs) == jobs_before and blocked(flow) == 2

    # Held while its withdrawals are on their way, and for a quiet while after they are
    # through: a system echoing our own write back finds the person withdrawn already, and
    # sends nothing out again. Then shredded again.
    assert flow.core.applier.sweep_returning() == 0
    with engine.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.subject_id == held).values(status=outbox.DONE))
    assert flow.core.applier.sweep_returning() == 0
    jobs_before = count(engine, jobs)
    flow.event(ConsentChanged(EventMeta("hubspot", "echo-of-our-write", LATER),
                              SubjectHint(email=EMAIL),
                              (ConsentChange("offers", Channel.EMAIL, ConsentStatus.WITHDRAWN),)))
    assert list(returning_subjects(flow)) == [held] and count(engine, jobs) == jobs_before
    flow.clock[0] = LATER + flow.core.applier.policy.returning_quiet + timedelta(seconds=1)
    flow.core.apply()  # the applier's own sweep, an hour on
    assert returning_subjects(flow) == {}
    assert count(engine, subject_keys) == 0
    with engine.connect() as conn:
        assert set(conn.execute(select(suppression.c.request_id)).scalars()) == {rid}


def test_a_new_erasure_request_for_an_erased_address_reads_every_system_again(flow: Flow):
    first = erased(flow)
    flow.vendor.held.add(EMAIL.lower())  # they signed up again in HubSpot
    again = str(uuid.uuid4())
    flow.event(RequestReceived(meta("erase-2", LATER), SubjectHint(email=EMAIL),
                               RequestKind.ERASURE, again, actor="cli"))
    request = flow.request(again)
    assert request.status == rq.IN_PROGRESS
    assert {d.name: d.status for d in request.destinations} == {
        "hubspot": rq.PENDING, "partner:contact_centre": rq.PENDING}
    flow.deliver("hubspot", "partner:contact_centre")
    assert EMAIL.lower() not in flow.vendor.held
    flow.event(_ack(again))
    flow.deliver(NOTIFIER)
    done = flow.request(again)
    assert done.status == rq.COMPLETED and done.confirmed_at is not None
    assert flow.told.notices[-1] == (EMAIL.lower(), "erasure", again)
    engine = flow.core.engine
    assert count(engine, subject_keys) == 0 and returning_subjects(flow) == {}
    with engine.connect() as conn:
        assert set(conn.execute(select(suppression.c.request_id)).scalars()) == {first}


def test_an_access_request_of_a_returning_person_gathers_every_system_and_names_the_erasure(
        flow: Flow):
    first = erased(flow)
    flow.vendor.held.add(EMAIL.lower())
    rid = str(uuid.uuid4())
    flow.event(RequestReceived(meta("access-2", LATER), SubjectHint(email=EMAIL),
                               RequestKind.ACCESS, rid, actor="cli"))
    assert {d.name: d.status for d in flow.request(rid).destinations} == {
        "hubspot": rq.PENDING, "privasync": rq.DONE}
    flow.deliver("hubspot")
    request = flow.request(rid)
    assert request.status == rq.COMPLETED
    with flow.core.engine.connect() as conn:
        earlier = rq.earlier_erasure(conn, request.subject_id)
        completed_at = rq.get(conn, first).completed_at  # type: ignore[union-attr]
    assert earlier == rq.EarlierErasure(first, completed_at) and completed_at is not None
    # The answer is kept to be read: the subject stays until the export is pruned.
    assert flow.core.applier.sweep_returning() == 0


def test_an_objection_of_a_returning_person_is_carried_out(flow: Flow):
    first = erased(flow)
    rid = str(uuid.uuid4())
    flow.event(RequestReceived(meta("object-2", LATER), SubjectHint(email=EMAIL),
                               RequestKind.OBJECTION, rid, actor="cli"))
    request = flow.request(rid)
    assert request.status == rq.COMPLETED
    assert returning_subjects(flow) == {request.subject_id: first}
    assert count(flow.core.engine, jobs, jobs.c.subject_id == request.subject_id,
                 jobs.c.kind == outbox.CONSENT, jobs.c.status == outbox.PENDING) > 0


def test_an_erased_persons_vendor_record_stays_suppressed_under_another_address(flow: Flow):
    rid = erased(flow, ref=SF_CONTACT)
    with flow.core.engine.connect() as conn:
        kinds = {r.kind: r.request_id for r in conn.execute(select(suppression))}
    assert kinds == {"email": rid, "system_ref": rid}
    before = blocked(flow)
    flow.event(SubjectSeen(EventMeta("salesforce", "poll-again", LATER),
                           SubjectHint(SF_CONTACT, "someone.else@example.org")))
    flow.event(RecordChanged(EventMeta("salesforce", "poll-again-2", LATER),
                             SubjectHint(ref=SF_CONTACT),
                             (("first_name", FieldValue("Ada", LATER)),)))
    assert count(flow.core.engine, subjects, subjects.c.erased_at.is_(None)) == 0
    assert blocked(flow) == before + 2


OTHER = "someone.else@example.org"
OLD = "old.address@example.org"


def identified(flow: Flow, email: str) -> str | None:
    with flow.core.engine.connect() as conn:
        return flow.core.identity.by_email(conn, email)


def test_a_merge_carries_every_address_so_the_erasure_reaches_and_suppresses_them_all(
        flow: Flow):
    primary, merged = SystemRef("hubspot", "contact:1"), SystemRef("hubspot", "contact:2")
    flow.event(SubjectSeen(EventMeta("hubspot", "p", NOW), SubjectHint(primary, EMAIL)))
    flow.event(SubjectSeen(EventMeta("hubspot", "m", NOW), SubjectHint(merged, OLD)))
    flow.event(IdentifierChanged(EventMeta("mailchimp", "up", NOW), SubjectHint(email=OLD),
                                 OTHER))
    flow.event(SubjectsMerged(EventMeta("hubspot", "merge", NOW), SubjectHint(ref=primary),
                              (merged,)))
    winner = identified(flow, EMAIL)
    assert winner is not None and identified(flow, OLD) == identified(flow, OTHER) == winner

    flow.vendor.held |= {OLD, OTHER}
    rid = str(uuid.uuid4())
    flow.event(RequestReceived(meta("erase-m"), SubjectHint(email=EMAIL), RequestKind.ERASURE,
                               rid, actor="cli"))
    flow.deliver("hubspot", "partner:contact_centre")
    assert flow.vendor.held == set()  # every address reached
    flow.event(_ack(rid))
    flow.deliver(NOTIFIER)
    assert flow.request(rid).status == rq.COMPLETED
    with flow.core.engine.connect() as conn:
        kinds = [r.kind for r in conn.execute(select(suppression))]
    assert kinds.count("email") == 3
    before = blocked(flow)
    flow.event(SubjectSeen(EventMeta("salesforce", "back", LATER), SubjectHint(email=OLD)))
    assert identified(flow, OLD) is None and blocked(flow) == before + 1


def test_no_path_attaches_an_erased_persons_address_to_someone(flow: Flow):
    erased(flow)
    flow.event(SubjectSeen(EventMeta("hubspot", "c", LATER), SubjectHint(email=OTHER)))
    other = identified(flow, OTHER)
    assert other is not None
    before = blocked(flow)
    flow.event(IdentifierChanged(EventMeta("mailchimp", "upemail", LATER),
                                 SubjectHint(email=OTHER), EMAIL))
    assert identified(flow, EMAIL) is None and blocked(flow) == before + 1
    jobs_before = count(flow.core.engine, jobs)
    flow.event(RecordChanged(EventMeta("hubspot", "rec", LATER), SubjectHint(email=OTHER),
                             (("email", FieldValue(EMAIL, LATER)),
                              ("first_name", FieldValue("Ada", LATER)))))
    assert identified(flow, EMAIL) is None and blocked(flow) == before + 2
    assert count(flow.core.engine, jobs) == jobs_before
    rid = str(uuid.uuid4())
    flow.event(RequestReceived(meta("rect", LATER), SubjectHint(email=OTHER),
                               RequestKind.RECTIFICATION, rid, actor="cli",
                               fields=(("email", FieldValue(EMAIL, LATER)),)))
    request = flow.request(rid)
    assert request.status == rq.COMPLETED and "suppression list" in (request.note or "")
    assert identified(flow, EMAIL) is None and blocked(flow) == before + 3


def test_a_vendor_erasure_of_a_record_never_stored_waits_for_identity_and_is_counted(
        flow: Flow):
    ref = SystemRef("hubspot", "contact:404404")
    flow.event(ErasureRequested(EventMeta("hubspot", "pd-unknown", NOW), SubjectHint(ref=ref)))
    with flow.core.engine.connect() as conn:
        [request] = rq.listing(conn, NOW, status=rq.IDENTITY_PENDING)
        overview = rq.overview(conn, NOW)
        entries = list(conn.execute(select(ledger.c.kind).where(
            ledger.c.subject_id == request.subject_id)).scalars())
    assert request.kind == "erasure" and request.source == "hubspot"
    assert (request.note or "").startswith("unidentified")
    assert overview.unidentified == 1
    assert "request.unidentified" in entries
    assert count(flow.core.engine, jobs, jobs.c.kind == "erasure") == 0  # nobody to erase yet
    flow.event(RequestAction(meta("no-one"), request.id, RequestStep.REJECT,
                             reason="recorded again as the person's own request", actor="cli"))
    with flow.core.engine.connect() as conn:
        assert rq.overview(conn, NOW).unidentified == 0


def test_a_merge_naming_an_erased_persons_address_attaches_it_to_no_one(flow: Flow):
    """A merge resolves its primary record in the database, not in the batch: the same
    resolver, so the suppression list holds there too."""
    erased(flow)
    someone = SystemRef("hubspot", "contact:someone")
    flow.event(SubjectSeen(EventMeta("hubspot", "s", LATER), SubjectHint(someone, OTHER)))
    assert identified(flow, OTHER) is not None
    before = blocked(flow)
    flow.event(SubjectsMerged(EventMeta("hubspot", "merge-erased", LATER),
                              SubjectHint(someone, EMAIL),
                              (SystemRef("hubspot", "contact:gone"),)))
    assert identified(flow, EMAIL) is None and blocked(flow) == before + 1
