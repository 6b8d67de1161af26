"""What customer service and the DPO do with data-subject requests, for the CLI and the API.

Changes go through the inbox like any delivery (the applier is the one writer of
requests) and are checked at the door first with the applier's own rules, so a
refusal comes back at once with its reason; the caller then waits a few seconds
for the applier to have applied it. Reads are direct.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from core import inbox, keys, plan
from core import subject_requests as rq
from core.db import inbox as inbox_table
from core.db import reader
from core.dsr import step as apply_step
from core.errors import BadInput, Conflict, NotFound
from core.model import (
    EventMeta,
    FieldValue,
    RequestAction,
    RequestKind,
    RequestReceived,
    RequestStep,
    SubjectHint,
)
from core.plan_load import Loaded
from privasync.app.views import Desk

WAIT_SECONDS = 10.0
SOURCE = "admin"


@dataclass(frozen=True)
class Stored:
    request_id: str
    applied: bool


def valid_email(value: str) -> str:
    address = value.strip()
    local, at, domain = address.rpartition("@")
    if not at or not local or "." not in domain or len(address) > 254 \
            or any(c.isspace() for c in address):
        raise BadInput("email is not an e-mail address")
    return address


def create(desk: Desk, *, kind: RequestKind, email: str,
           received: datetime | None = None, identity_verified: bool,
           fields: dict[str, str] | None = None, actor: str,
           wait: float = WAIT_SECONDS) -> Stored:
    """Record a request a person made; returns its id (the person's reference).
    ``identity_verified`` has no default: whoever records it says whether the person's
    identity was checked (False asks for proof, Art. 12(6), and stops the clock)."""
    now = desk.clock()
    received = received or now
    if received.tzinfo is None or received > now:
        raise BadInput("received must be a past time with a zone")
    if kind == RequestKind.RECTIFICATION and not fields:
        raise BadInput("a rectification needs at least one corrected field")
    unknown = sorted(set(fields or {}) - set(desk.mappings.fields))
    if unknown:
        raise BadInput("a corrected field is not a canonical field of the mappings")
    address = valid_email(email)
    if kind == RequestKind.ERASURE:
        keys.refresh(desk.engine, desk.keyring)  # a rotation's digest version
        with reader(desk.engine).connect() as conn:
            subject = desk.identity.by_email(conn, address)
            already = rq.open_for(conn, [subject], kind.value) if subject else {}
        if already:
            raise Conflict(f"an erasure request is already open for this person: "
                           f"{next(iter(already.values()))}")
    request_id = str(uuid.uuid4())
    ev = RequestReceived(EventMeta(SOURCE, f"request:{request_id}", received,
                                   kind=f"request.{kind.value}"),
                         SubjectHint(email=address), kind, request_id,
                         identity_verified,
                         tuple((n, FieldValue(v, received)) for n, v in (fields or {}).items()),
                         actor)
    stored = desk.store_events(SOURCE, [ev], now, key=_reference(request_id, kind.value))
    return Stored(request_id, _applied(desk, stored, wait))


def _reference(request_id: str, kind: str) -> str:
    """The inbox row's dedupe key for a new request: its id and kind (nothing personal),
    so that it can be found and shown before the applier has made a request of it."""
    return f"request:{request_id}:{kind}"


_REQUEST_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass(frozen=True)
class Received:
    """A request stored in the inbox that the applier has not made a request of yet, as
    its row says without opening the sealed body: its id, kind, when privasync received
    it, and the reason the applier gave up on it or will try it again (a class name)."""

    id: str
    kind: str
    received_at: datetime
    given_up: bool
    error: str | None


def received(desk: Desk, request_id: str) -> Received | None:
    """The stored-but-not-yet-applied request ``request_id``, or None."""
    if not _REQUEST_ID.fullmatch(request_id):  # and so no LIKE wildcard either
        return None
    with reader(desk.engine).connect() as conn:
        row = conn.execute(select(inbox_table.c.delivery_key, inbox_table.c.received_at,
                                  inbox_table.c.applied_at, inbox_table.c.last_error)
                           .where(inbox_table.c.source == SOURCE,
                                  inbox_table.c.delivery_key.like(f"request:{request_id}:%"))
                           ).first()
    if row is None or (row.applied_at is not None and row.last_error is None):
        return None  # applied: the request itself answers (or never was one)
    return Received(request_id, row.delivery_key.rsplit(":", 1)[1], row.received_at,
                    row.applied_at is not None, row.last_error)


def received_summary(found: Received) -> dict[str, Any]:
    """A received request as ``summary`` shows a request: status ``received`` (or
    ``failed`` when the applier gave up on it), no deadline yet (it counts from the time
    the person asked, which the sealed body holds)."""
    note = (f"privasync could not apply it ({found.error}); see privasync status"
            if found.given_up else "stored; privasync applies it as soon as its applier "
            "runs (privasync serve or scheduler)" + (f"; retrying after {found.error}"
                                                     if found.error else ""))
    return {
        "id": found.id, "kind": found.kind, "status": "failed" if found.given_up
        else "received", "source": SOURCE, "actor": None,
        "received_at": found.received_at.isoformat(), "due_at": None, "overdue": False,
        "clock_paused": False, "paused_seconds": 0, "extended_months": 0,
        "extension_reason": None, "extension_told_at": None, "rejection_reason": None,
        "completed_at": None, "identity_due_at": None, "identity_overdue": False,
        "person_told_at": None, "note": note, "acks_overdue": [], "destinations": [],
        "covers": [], "not_configured": None,
        "history": [{"at": found.received_at.isoformat(), "event": "request.stored"}]}


def act(desk: Desk, request_id: str, step: RequestStep, *, actor: str,
        reason: str = "", months: int = 0, destination: str = "",
        records: tuple[tuple[str, str], ...] = (), wait: float = WAIT_SECONDS) -> Stored:
    """Move a request on (verify identity, extend, reject, not applicable, retry, review:
    ``records`` each held record with ``include`` or ``exclude``)."""
    if step in (RequestStep.CONFIRMED, RequestStep.NOT_TOLD, RequestStep.FINISH,
                RequestStep.EXTENSION_TOLD):
        raise BadInput("that step is privasync's own")
    now = desk.clock()
    ev = RequestAction(EventMeta(SOURCE, f"action:{uuid.uuid4()}", now,
                                 kind=f"request.{step.value}"),
                       request_id, step, reason.strip(), months, destination, actor,
                       records=tuple(records))
    with reader(desk.engine).connect() as conn:
        request = rq.get(conn, request_id)
        kept = rq.kept_exports(conn, [request_id]) if records else set()
    if request is None:
        raise NotFound("no such request")
    scratch = plan.Plan(Loaded(requests={request_id: request}, kept_exports=kept),
                        desk.keyring, desk.mappings, desk.applier.routes, now)
    try:
        apply_step(scratch, ev)  # the applier's rules, on a plan that is never written
    except BadInput as exc:
        raise Conflict(str(exc)) from None
    stored = desk.store_events(SOURCE, [ev], now)
    return Stored(request_id, _applied(desk, stored, wait))


def _applier_running(desk: Desk) -> bool:
    """Whether some process holds an unexpired applier lease (or this one runs it)."""
    from core.applier import LEASE
    from core.db import leases

    if desk.applier_loop is not None:
        return True
    with reader(desk.engine).connect() as conn:
        expires = conn.execute(select(leases.c.expires_at).where(
            leases.c.name == LEASE)).scalar_one_or_none()
    return expires is not None and expires > desk.clock()


def _applied(desk: Desk, stored: inbox.Stored, wait: float) -> bool:
    """Wait (at most ``wait`` seconds) for the applier to apply the stored entry."""
    if stored.id is None:
        return True
    if not _applier_running(desk):
        return False  # nobody would apply it while we wait: say so at once
    deadline = time.monotonic() + wait
    engine = reader(desk.engine)
    while True:
        with engine.connect() as conn:
            applied = conn.execute(select(inbox_table.c.applied_at).where(
                inbox_table.c.id == stored.id)).scalar_one_or_none()
        if applied is not None:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def summary(request: rq.Request, now: datetime) -> dict[str, Any]:
    """A request as the CLI and the API show it (no personal data: ids and states)."""
    return {
        "id": request.id, "kind": request.kind, "status": request.status,
        "source": request.source, "actor": request.actor,
        "received_at": request.received_at.isoformat(), "due_at": request.due(now).isoformat(),
        "overdue": request.overdue(now), "clock_paused": request.paused_since is not None,
        "identity_due_at": (request.identity_due_at.isoformat()
                            if request.identity_due_at else None),
        "identity_overdue": request.identity_overdue(now),
        "paused_seconds": int(request.paused(now).total_seconds()),
        "extended_months": request.extended_months,
        "extension_reason": request.extension_reason,
        "extension_told_at": (request.extension_told_at.isoformat()
                              if request.extension_told_at else None),
        "rejection_reason": request.rejection_reason,
        "completed_at": request.completed_at.isoformat() if request.completed_at else None,
        "person_told_at": request.confirmed_at.isoformat() if request.confirmed_at else None,
        "note": request.note, "acks_overdue": request.acks_overdue(now),
        "destinations": [{"destination": d.name, "status": d.status, "reason": d.reason,
                          "ack_due": d.ack_due.isoformat() if d.ack_due else None,
                          "overdue": d.overdue(now), "receipt": dict(d.receipt)}
                         for d in request.destinations],
        "covers": [d.name for d in request.destinations],
        "not_configured": (list(request.not_configured)
                           if request.not_configured is not None else None)}


def get(desk: Desk, request_id: str) -> rq.Request:
    """The request; raises NotFound, saying so when it is received but not applied yet."""
    with reader(desk.engine).connect() as conn:
        request = rq.get(conn, request_id)
    if request is None:
        if received(desk, request_id) is not None:
            raise NotFound("the request is received but not applied yet: privasync applies "
                           "it as soon as its applier runs (privasync serve or scheduler)")
        raise NotFound("no such request")
    return request
