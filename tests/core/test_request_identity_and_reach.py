"""What a request says about the person's identity and about the systems it cannot reach,
on both backends: proof of identity is asked for when the request is recorded (a request
typed in days after it came keeps those days on its clock), the person has a limit to
answer, past which the request is flagged for an admin and never dropped by itself; the
known systems with no connection here are recorded at receipt, as they stood then."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from core import ledger
from core import subject_requests as rq
from core.model import RequestAction, RequestKind, RequestReceived, RequestStep, SubjectHint
from tests.core.test_requests_flow import EMAIL, NOW, Flow, count, meta, subscribe

WAIT = timedelta(days=20)


@pytest.fixture
def flow(engine) -> Flow:  # type: ignore[no-untyped-def]
    return Flow(engine, identity_wait=WAIT, not_configured=("mailchimp", "salesforce"))


def _entries(flow: Flow, kind: str) -> list[dict[str, object]]:
    with flow.core.engine.connect() as conn:
        found = conn.execute(select(ledger.ledger.c.detail).where(
            ledger.ledger.c.kind == kind)).scalars().all()
    return [json.loads(d) for d in found]


def _unverified(flow: Flow, came: datetime) -> str:
    rid = str(uuid.uuid4())
    flow.event(RequestReceived(meta(f"r-{rid}", came), SubjectHint(email=EMAIL),
                               RequestKind.ERASURE, rid, identity_verified=False, actor="cli"))
    return rid


def test_the_identity_pause_starts_when_proof_is_asked_for_not_when_the_letter_came(
        flow: Flow):
    subscribe(flow)
    came = NOW - timedelta(days=10)  # a letter, typed in ten days later
    rid = _unverified(flow, came)
    request = flow.request(rid)
    assert request.received_at == came and request.paused_since == NOW
    flow.clock[0] = NOW + timedelta(days=5)
    flow.event(RequestAction(meta("v", flow.clock[0]), rid, RequestStep.VERIFY_IDENTITY,
                             actor="cli"))
    verified = flow.request(rid)
    assert verified.status == rq.IN_PROGRESS
    assert verified.paused(flow.clock[0]) == timedelta(days=5)  # not the 15 since the letter
    assert verified.due(flow.clock[0]) == datetime(2026, 11, 27, 13, tzinfo=UTC)
    asked = _entries(flow, "request.identity_asked")
    assert asked == [{"request": rid, "asked_at": NOW.isoformat(),
                      "identity_due_at": (NOW + WAIT).isoformat(),
                      "clock": "paused until verified"}]


def test_an_identity_check_past_its_limit_is_flagged_for_an_admin_not_dropped(flow: Flow):
    subscribe(flow)
    rid = _unverified(flow, NOW)
    request = flow.request(rid)
    assert request.identity_due_at == NOW + WAIT
    engine = flow.core.engine
    before, after = NOW + WAIT - timedelta(minutes=1), NOW + WAIT + timedelta(minutes=1)
    assert not request.identity_overdue(before) and request.identity_overdue(after)
    assert not request.overdue(after)  # the Art. 12(3) clock stands still meanwhile
    with engine.connect() as conn:
        assert rq.listing(conn, before, overdue=True) == []
        assert [r.id for r in rq.listing(conn, after, overdue=True)] == [rid]
        assert (rq.overview(conn, before).identity_overdue,
                rq.overview(conn, after).identity_overdue) == (0, 1)
    flow.clock[0] = after
    flow.core.apply()
    late = flow.request(rid)
    assert late.status == rq.IDENTITY_PENDING and late.completed_at is None  # left for an admin
    assert count(engine, ledger.ledger, ledger.ledger.c.kind == "request.rejected") == 0
    flow.event(RequestAction(meta("v", after), rid, RequestStep.VERIFY_IDENTITY, actor="cli"))
    assert not flow.request(rid).identity_overdue(after + timedelta(days=1))
    with engine.connect() as conn:
        assert rq.overview(conn, after).identity_overdue == 0


def test_a_verified_request_asks_nothing_and_has_no_identity_limit(flow: Flow):
    subscribe(flow)
    rid = str(uuid.uuid4())
    flow.event(RequestReceived(meta("ok"), SubjectHint(email=EMAIL), RequestKind.ERASURE, rid))
    request = flow.request(rid)
    assert request.identity_due_at is None and request.paused_since is None
    assert not request.identity_overdue(NOW + timedelta(days=400))
    assert _entries(flow, "request.identity_asked") == []


def test_a_request_records_the_known_systems_not_configured_as_they_were_at_receipt(
        flow: Flow, engine) -> None:  # type: ignore[no-untyped-def]
    subscribe(flow)
    rid = str(uuid.uuid4())
    flow.event(RequestReceived(meta("r-nc"), SubjectHint(email=EMAIL), RequestKind.ERASURE,
                               rid))
    request = flow.request(rid)
    assert request.not_configured == ("mailchimp", "salesforce")
    assert [d.name for d in request.destinations] == ["hubspot", "partner:contact_centre"]
    received = _entries(flow, "request.received")
    assert received[0]["not_configured"] == ["mailchimp", "salesforce"]
    # Salesforce configured since: what was true when the request came stays its record.
    later = Flow(engine, not_configured=("mailchimp",))
    later.core.apply()
    assert later.request(rid).not_configured == ("mailchimp", "salesforce")


def test_requests_waiting_for_identity_before_the_limit_existed_get_one(tmp_path):  # type: ignore[no-untyped-def]
    import sqlalchemy as sa
    from alembic import command

    from core.crypto import Keyring
    from core.db import AwareDateTime, make_engine, requests
    from core.schema import alembic_config, upgrade
    from tests.core.conftest import KEK, SECRET

    engine = make_engine(f"sqlite:///{tmp_path}/old.db")
    config = alembic_config(engine)
    with engine.begin() as conn:  # a database as the release before this one left it
        config.attributes["connection"] = conn
        command.upgrade(config, "f2c9d4a7b1e6")
    old = sa.table("requests", *(sa.column(n, t) for n, t in (
        ("id", sa.String()), ("kind", sa.String()), ("subject_id", sa.String()),
        ("source", sa.String()), ("received_at", AwareDateTime()),
        ("due_at", AwareDateTime()), ("status", sa.String()),
        ("paused_since", AwareDateTime()))))
    row = {"kind": "erasure", "subject_id": "s1", "source": "admin", "received_at": NOW,
           "due_at": NOW + timedelta(days=30)}
    with engine.begin() as conn:
        conn.execute(sa.insert(old), [
            row | {"id": "waiting", "status": rq.IDENTITY_PENDING, "paused_since": NOW},
            row | {"id": "running", "status": rq.IN_PROGRESS, "paused_since": None}])
    upgrade(engine, Keyring(SECRET, [KEK]))
    with engine.connect() as conn:
        due = dict(conn.execute(sa.select(requests.c.id, requests.c.identity_due_at)).all())
        waiting = rq.get(conn, "waiting")
    assert due == {"waiting": NOW + timedelta(days=30), "running": None}
    assert waiting is not None and waiting.not_configured is None
    assert waiting.identity_overdue(NOW + timedelta(days=31))
