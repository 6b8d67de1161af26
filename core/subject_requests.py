"""Data-subject requests (Art. 12-22): their deadline, their state, where they stand.

The deadline is counted in calendar months, never in days (Art. 12(3)): one month
from receipt (31 January -> the last day of February), extended once by up to two
further months with a recorded reason; the clock stops while the requester's
identity is being verified (Art. 12(6)) and goes on from where it was once it is. The
pause starts when the person is asked to prove who they are (when the request is recorded
as unverified, never earlier: a request typed in days after it came by letter loses those
days), and has its own limit (``identity_due_at``): past it the request is flagged
(``identity_overdue``, the metric, ``listing(overdue=True)``) for an admin to verify or
reject; nothing rejects it by itself, since a refusal must be told with its reason.

A request's progress is kept per destination (``request_destinations``): a
request is complete only when every destination is done or marked not applicable
by an admin with a reason; an access answer with records held for review stands
``awaiting_review`` until an admin decided the last of them. Receipts hold no
personal data. Reasons (an admin's, or a partner's rejecting acknowledgement) may
describe the person: they are kept for the notice and the admin's view, and cleared
when the person is erased (``forget_texts``); the note only ever holds privasync's
own words.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.engine import Connection

from core.db import request_destinations, requests, subjects
from core.deadlines import add_months
from core.errors import BadInput

# Request states.
IDENTITY_PENDING, IN_PROGRESS = "identity_pending", "in_progress"
COMPLETED, REJECTED = "completed", "rejected"
OPEN = (IDENTITY_PENDING, IN_PROGRESS)
# Destination states.
PENDING, DONE, FAILED = "pending", "done", "failed"
NOT_APPLICABLE, AWAITING_ACK = "not_applicable", "awaiting_ack"
# An access answer gathered with records held for an admin's review (core.review): the
# request waits for the decisions, so its deadline covers them.
AWAITING_REVIEW = "awaiting_review"
FINAL = (DONE, NOT_APPLICABLE)
# The jobs whose going out an acknowledgement needs (``sent``): the outbox's retention keeps
# them, finished or not, while their subject has an open request.
ACKED_KINDS = ("erasure", "export")
MAX_EXTENSION_MONTHS = 2
# A request's note when its notice could not be delivered; the error class follows.
NOT_TOLD_NOTE = "the person could not be told"
# A vendor's erasure of a record privasync never stored (HubSpot purges the contact before
# its privacyDeletion arrives): nobody to erase until someone finds out who asked.
UNIDENTIFIED_NOTE = ("unidentified: the system erased a record privasync never knew; find "
                     "the person's address, record the request with it, then reject this one")
# What a request's free text (a reason, a partner's words) becomes once its person is erased.
ERASED_TEXT = "(erased with the person's key; the ledger keeps its salted hash)"


def due_at(received_at: datetime, *, paused: timedelta = timedelta(0),
           extended_months: int = 0) -> datetime:
    """One calendar month from receipt, plus any extension (in months), plus the time the
    clock stood still."""
    return add_months(received_at, 1 + extended_months) + paused


@dataclass(frozen=True)
class Destination:
    name: str
    status: str
    reason: str | None
    ack_due: datetime | None
    escalated_at: datetime | None
    receipt: Mapping[str, Any]
    updated_at: datetime

    def overdue(self, now: datetime) -> bool:
        return self.status == AWAITING_ACK and self.ack_due is not None and self.ack_due < now


@dataclass(frozen=True)
class Request:
    id: str
    kind: str
    subject_id: str
    source: str
    actor: str
    received_at: datetime
    status: str
    paused_since: datetime | None
    paused_seconds: int
    extended_months: int
    extension_reason: str | None
    rejection_reason: str | None
    completed_at: datetime | None
    confirmed_at: datetime | None
    note: str | None
    destinations: tuple[Destination, ...] = ()
    extension_told_at: datetime | None = None
    identity_due_at: datetime | None = None
    # Known systems with no connection configured when it came in (None: not recorded).
    not_configured: tuple[str, ...] | None = None

    def paused(self, now: datetime) -> timedelta:
        running = (now - self.paused_since) if self.paused_since is not None else timedelta(0)
        return timedelta(seconds=self.paused_seconds) + running

    def due(self, now: datetime) -> datetime:
        """The deadline as it stands at ``now`` (it moves while the clock is paused)."""
        return due_at(self.received_at, paused=self.paused(now),
                      extended_months=self.extended_months)

    def overdue(self, now: datetime) -> bool:
        return self.status in OPEN and self.due(now) < now

    def identity_overdue(self, now: datetime) -> bool:
        """Still waiting for proof of identity past the time the person was given."""
        return (self.status == IDENTITY_PENDING and self.identity_due_at is not None
                and self.identity_due_at < now)

    def acks_overdue(self, now: datetime) -> list[str]:
        return [d.name for d in self.destinations if d.overdue(now)]

    @property
    def open(self) -> bool:
        return self.status in OPEN

    # -- transitions: each returns what it changes; ``Changes`` keeps and stores it ------
    def verify_identity(self, now: datetime) -> RequestChange:
        """The person proved who they are: the clock runs again from where it stood.
        Raises BadInput unless the request waits for that."""
        if self.status != IDENTITY_PENDING:
            raise BadInput("the request is not waiting for identity verification")
        paused = self.paused(now)
        return RequestChange(status=IN_PROGRESS, resumed=True,
                             paused_seconds=int(paused.total_seconds()),
                             due_at=due_at(self.received_at, paused=paused,
                                           extended_months=self.extended_months))

    def extend(self, months: int, reason: str, now: datetime) -> RequestChange:
        """Art. 12(3): the deadline moves by ``months``; ``reason`` as the row keeps it."""
        return RequestChange(extended_months=months, extension_reason=reason,
                             due_at=due_at(self.received_at, paused=self.paused(now),
                                           extended_months=months))

    def reject(self, reason: str, now: datetime) -> RequestChange:
        """Refused, with ``reason`` as the row keeps it: closed, its clock stopped."""
        return RequestChange(status=REJECTED, rejection_reason=reason, completed_at=now,
                             resumed=True)

    def complete(self, now: datetime) -> RequestChange:
        return RequestChange(status=COMPLETED, completed_at=now)

    def confirm(self, now: datetime) -> RequestChange:
        """The person was told."""
        return RequestChange(confirmed_at=now)

    def extension_told(self, now: datetime) -> RequestChange:
        return RequestChange(extension_told_at=now)

    def annotate(self, note: str) -> RequestChange:
        """privasync's own words about the request (never the person's)."""
        return RequestChange(note=note)

    def move(self, destination: str, status: str, *, reason: str | None = None,
             receipt: Mapping[str, Any] | None = None) -> DestinationChange:
        """Where the request now stands at ``destination`` (its reason is cleared unless
        given; its receipt is kept unless given)."""
        return DestinationChange(self.id, destination, status, reason, receipt)


@dataclass(frozen=True)
class RequestChange:
    """What one decision changes of a request; None (False for ``resumed``) leaves a value
    as it is. ``then`` merges decisions in order, ``columns`` is where they meet the
    table."""

    status: str | None = None
    resumed: bool = False  # the identity pause ended: ``paused_since`` cleared
    paused_seconds: int | None = None
    due_at: datetime | None = None
    extended_months: int | None = None
    extension_reason: str | None = None
    rejection_reason: str | None = None
    completed_at: datetime | None = None
    confirmed_at: datetime | None = None
    extension_told_at: datetime | None = None
    note: str | None = None

    def then(self, later: RequestChange) -> RequestChange:
        """This change followed by ``later``: what ``later`` sets wins."""
        return replace(self, **{f.name: value for f in fields(later)
                                if (value := getattr(later, f.name)) is not None
                                and value is not False})

    def columns(self) -> dict[str, object]:
        values: dict[str, object] = {f.name: value for f in fields(self)
                                     if f.name != "resumed"
                                     and (value := getattr(self, f.name)) is not None}
        if self.resumed:
            values["paused_since"] = None
        return values


@dataclass(frozen=True)
class DestinationChange:
    """Where a request now stands at one destination (``Request.move``)."""

    request_id: str
    destination: str
    status: str
    reason: str | None = None
    receipt: Mapping[str, Any] | None = None


@dataclass
class Changes:
    """A batch's decisions on requests, typed and in order, until ``write`` stores them.
    The rules read a request as the batch left it through ``current`` (or ``status``,
    ``statuses`` and ``receipts``); the request they were given stays as it was read."""

    opened: list[Request] = field(default_factory=list)
    requests: dict[str, RequestChange] = field(default_factory=dict)
    destinations: list[DestinationChange] = field(default_factory=list)

    def open(self, request: Request) -> None:
        self.opened.append(request)

    def change(self, request_id: str, change: RequestChange) -> None:
        self.requests[request_id] = self.requests.get(request_id, RequestChange()).then(change)

    def move(self, change: DestinationChange) -> None:
        self.destinations.append(change)

    def changed(self, request_id: str) -> RequestChange:
        """What this batch changed of the request so far."""
        return self.requests.get(request_id, RequestChange())

    def status(self, request: Request) -> str:
        return self.changed(request.id).status or request.status

    def current(self, request: Request) -> Request:
        """``request`` as this batch's steps so far left it: what a later batch would read
        (its deadline, pause, extension, status, and where each destination stands)."""
        change = self.changed(request.id)
        values = {f.name: value for f in fields(change)
                  if f.name not in ("resumed", "due_at")
                  and (value := getattr(change, f.name)) is not None}
        if change.resumed:
            values["paused_since"] = None
        destinations = {d.name: d for d in request.destinations}
        for m in self.moves(request.id):  # as ``record`` stores a move
            was = destinations.get(m.destination)
            if was is None:  # no such row for ``record`` to update
                continue
            destinations[m.destination] = replace(
                was, status=m.status, reason=m.reason, ack_due=None,
                receipt=was.receipt if m.receipt is None else m.receipt)
        return replace(request, **values, destinations=tuple(destinations.values()))

    def moves(self, request_id: str) -> list[DestinationChange]:
        """This batch's changes to the request's destinations, in order."""
        return [m for m in self.destinations if m.request_id == request_id]

    def statuses(self, request: Request) -> dict[str, str]:
        """Each destination's status as it stands with this batch's earlier steps."""
        found = {d.name: d.status for d in request.destinations}
        for m in self.moves(request.id):
            found[m.destination] = m.status
        return found

    def receipts(self, request: Request) -> dict[str, dict[str, Any]]:
        """Each destination's receipt as it stands with this batch's earlier decisions (two
        reviews in one batch are a first and a second)."""
        found = {d.name: dict(d.receipt) for d in request.destinations}
        for m in self.moves(request.id):
            if m.receipt is not None:
                found[m.destination] = dict(m.receipt)
        return found

    def write(self, conn: Connection, now: datetime) -> None:
        """Store them in the caller's transaction: the one place a request's state meets
        the columns of ``requests`` and ``request_destinations``."""
        if self.opened:
            conn.execute(requests.insert(), [_row(r) for r in self.opened])
        rows = [{"request_id": r.id, "destination": d.name, "status": d.status,
                 "updated_at": d.updated_at} for r in self.opened for d in r.destinations]
        if rows:
            conn.execute(request_destinations.insert(), rows)
        for request_id, change in self.requests.items():
            conn.execute(update(requests).where(requests.c.id == request_id)
                         .values(**change.columns()))
        for m in self.destinations:
            record(conn, m.request_id, m.destination, now=now, status=m.status,
                   receipt=m.receipt, reason=m.reason)


def _row(request: Request) -> dict[str, object]:
    """A new request's row; its deadline counts no identity pause yet."""
    return {"id": request.id, "kind": request.kind, "subject_id": request.subject_id,
            "source": request.source, "actor": request.actor,
            "received_at": request.received_at,
            "due_at": due_at(request.received_at, extended_months=request.extended_months)
            + timedelta(seconds=request.paused_seconds),
            "status": request.status, "paused_since": request.paused_since,
            "paused_seconds": request.paused_seconds,
            "extended_months": request.extended_months,
            "completed_at": request.completed_at, "note": request.note,
            "extension_told_at": request.extension_told_at,
            "identity_due_at": request.identity_due_at,
            "not_configured": None if request.not_configured is None
            else json.dumps(list(request.not_configured))}


def _request(row: Any, destinations: Sequence[Destination] = ()) -> Request:
    return Request(row.id, row.kind, row.subject_id, row.source, row.actor, row.received_at,
                   row.status, row.paused_since, row.paused_seconds, row.extended_months,
                   row.extension_reason, row.rejection_reason, row.completed_at,
                   row.confirmed_at, row.note, tuple(destinations), row.extension_told_at,
                   row.identity_due_at,
                   tuple(json.loads(row.not_configured)) if row.not_configured else None)


def _destination(row: Any) -> Destination:
    return Destination(row.destination, row.status, row.reason, row.ack_due, row.escalated_at,
                       json.loads(row.receipt) if row.receipt else {}, row.updated_at)


def get(conn: Connection, request_id: str) -> Request | None:
    row = conn.execute(select(requests).where(requests.c.id == request_id)).first()
    if row is None:
        return None
    found = conn.execute(select(request_destinations).where(
        request_destinations.c.request_id == request_id)
        .order_by(request_destinations.c.destination)).all()
    return _request(row, [_destination(d) for d in found])


@dataclass(frozen=True)
class EarlierErasure:
    """The erasure a returning person's address was suppressed by: its request, and when
    it completed (None while it had not)."""

    request_id: str
    completed_at: datetime | None


def earlier_erasure(conn: Connection, subject_id: str) -> EarlierErasure | None:
    """For a subject held for a person who came back after an erasure, that erasure; None
    for anyone else."""
    erased_by = conn.execute(select(subjects.c.returned_after).where(
        subjects.c.id == subject_id)).scalar_one_or_none()
    if erased_by is None:
        return None
    completed = conn.execute(select(requests.c.completed_at).where(
        requests.c.id == erased_by)).scalar_one_or_none()
    return EarlierErasure(erased_by, completed)


def many(conn: Connection, ids: Iterable[str]) -> dict[str, Request]:
    """Requests with their destinations, by id, in two queries."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return {}
    rows = conn.execute(select(requests).where(requests.c.id.in_(wanted))).all()
    by_request: dict[str, list[Destination]] = {}
    for d in conn.execute(select(request_destinations).where(
            request_destinations.c.request_id.in_(wanted))
            .order_by(request_destinations.c.destination)):
        by_request.setdefault(d.request_id, []).append(_destination(d))
    return {r.id: _request(r, by_request.get(r.id, [])) for r in rows}


def listing(conn: Connection, now: datetime, *, kind: str | None = None,
            status: str | None = None, open_only: bool = False,
            due_within: timedelta | None = None, overdue: bool = False,
            limit: int = 500) -> list[Request]:
    """Requests, the soonest due first. ``due_within``: open ones due by ``now`` plus that;
    ``overdue``: open ones past their deadline, with an acknowledgement overdue, or waiting
    for proof of identity past its limit."""
    query = select(requests.c.id)
    if status is not None:
        query = query.where(requests.c.status == status)
    if open_only or due_within is not None or overdue:
        query = query.where(requests.c.status.in_(OPEN))
    if kind is not None:
        query = query.where(requests.c.kind == kind)
    ids = list(conn.execute(query.order_by(requests.c.due_at).limit(limit)).scalars())
    found = many(conn, ids)
    out = [found[i] for i in ids]
    if due_within is not None:
        out = [r for r in out if r.due(now) <= now + due_within]
    if overdue:
        out = [r for r in out if r.overdue(now) or r.acks_overdue(now)
               or r.identity_overdue(now)]
    return out


def open_for(conn: Connection, subject_ids: Sequence[str], kind: str) -> dict[str, str]:
    """The open request of ``kind`` per subject (the newest if several)."""
    if not subject_ids:
        return {}
    rows = conn.execute(select(requests.c.subject_id, requests.c.id).where(
        requests.c.subject_id.in_(list(subject_ids)), requests.c.kind == kind,
        requests.c.status.in_(OPEN)).order_by(requests.c.received_at)).all()
    return {r.subject_id: r.id for r in rows}


def record(conn: Connection, request_id: str, destination: str, *, status: str, now: datetime,
           receipt: Mapping[str, Any] | None = None, reason: str | None = None,
           ack_due: datetime | None = None, only_from: Sequence[str] = ()) -> int:
    """Set where a request stands at one destination. ``only_from``: only if it stands in
    one of these states (a worker's outcome never overwrites what an acknowledgement that
    overtook it, or an admin, decided meanwhile)."""
    values: dict[str, Any] = {"status": status, "updated_at": now, "reason": reason,
                              "ack_due": ack_due}
    if receipt is not None:
        values["receipt"] = json.dumps(receipt, sort_keys=True, default=str)
    where = [request_destinations.c.request_id == request_id,
             request_destinations.c.destination == destination]
    if only_from:
        where.append(request_destinations.c.status.in_(list(only_from)))
    return int(conn.execute(update(request_destinations).where(*where).values(**values))
               .rowcount)


def sent(conn: Connection, pairs: Sequence[tuple[Request, str]]) -> set[tuple[str, str]]:
    """(request id, destination) of these pairs whose erasure or export job went out to the
    destination (claimed at least once) since the request was received: only then can an
    acknowledgement from it mean anything."""
    from core.db import jobs

    found: set[tuple[str, str]] = set()
    for request, destination in pairs:
        went = conn.execute(select(jobs.c.id).where(
            jobs.c.subject_id == request.subject_id, jobs.c.destination == destination,
            jobs.c.kind.in_(ACKED_KINDS), jobs.c.created_at >= request.received_at,
            or_(jobs.c.attempts > 0, jobs.c.status.in_(["running", "done", "failed", "dead"])))
            .limit(1)).first()
        if went is not None:
            found.add((request.id, destination))
    return found


def ready_to_finish(conn: Connection, request_ids: Iterable[str]) -> list[Request]:
    """Open requests among these whose every destination is done or not applicable (not
    awaiting an acknowledgement, nor an admin's review of held records)."""
    found = many(conn, request_ids)
    return [r for r in found.values() if r.status == IN_PROGRESS
            and all(d.status in FINAL for d in r.destinations)]


def stalled(conn: Connection, now: datetime, quiet: timedelta) -> list[str]:
    """In-progress requests whose every destination ended at least ``quiet`` ago while no
    job of their subject is unfinished: the finish that two last answers applied at the
    same moment (a worker's receipt, a partner's ack) each left to the other."""
    from core.db import jobs

    unsettled = select(request_destinations.c.request_id).where(
        request_destinations.c.request_id == requests.c.id,
        or_(request_destinations.c.status.not_in(list(FINAL)),
            request_destinations.c.updated_at > now - quiet)).exists()
    busy = select(jobs.c.id).where(jobs.c.subject_id == requests.c.subject_id,
                                   jobs.c.status.in_(["pending", "running"])).exists()
    return list(conn.execute(select(requests.c.id).where(
        requests.c.status == IN_PROGRESS, ~unsettled, ~busy)).scalars())


def acks_due(conn: Connection, now: datetime) -> list[tuple[str, str]]:
    """(request, destination) pairs whose acknowledgement is overdue and not escalated yet."""
    rows = conn.execute(select(request_destinations.c.request_id,
                               request_destinations.c.destination).where(
        request_destinations.c.status == AWAITING_ACK, request_destinations.c.ack_due < now,
        request_destinations.c.escalated_at.is_(None))).all()
    return [(r.request_id, r.destination) for r in rows]


def escalate(conn: Connection, pairs: Sequence[tuple[str, str]], now: datetime) -> None:
    for request_id, destination in pairs:
        conn.execute(update(request_destinations).where(
            request_destinations.c.request_id == request_id,
            request_destinations.c.destination == destination).values(escalated_at=now))


@dataclass(frozen=True)
class Overview:
    """Counts for metrics: open requests by kind and status, due soon, overdue, overdue acks,
    identity checks past their limit."""

    by_state: dict[tuple[str, str], int]
    due_within_7d: int
    overdue: int
    acks_overdue: dict[str, int]
    identity_overdue: int = 0
    unidentified: int = 0


def overview(conn: Connection, now: datetime) -> Overview:
    states = {(r.kind, r.status): int(r.n) for r in conn.execute(
        select(requests.c.kind, requests.c.status, func.count().label("n"))
        .group_by(requests.c.kind, requests.c.status))}
    open_rows = many(conn, conn.execute(select(requests.c.id).where(
        requests.c.status.in_(OPEN))).scalars())
    due_soon = sum(1 for r in open_rows.values() if now <= r.due(now) <= now + timedelta(days=7))
    overdue = sum(1 for r in open_rows.values() if r.overdue(now))
    acks: dict[str, int] = {}
    for r in conn.execute(select(request_destinations.c.destination, func.count().label("n"))
                          .where(and_(request_destinations.c.status == AWAITING_ACK,
                                      request_destinations.c.ack_due < now))
                          .group_by(request_destinations.c.destination)):
        acks[r.destination] = int(r.n)
    identity = sum(1 for r in open_rows.values() if r.identity_overdue(now))
    unidentified = sum(1 for r in open_rows.values() if r.status == IDENTITY_PENDING
                       and (r.note or "").startswith(UNIDENTIFIED_NOTE[:12]))
    return Overview(states, due_soon, overdue, acks, identity, unidentified)


def prune_exports(conn: Connection, now: datetime) -> int:
    """Delete access-request exports past their keeping time."""
    from core.db import request_exports

    return int(conn.execute(request_exports.delete().where(
        request_exports.c.expires_at < now)).rowcount)


def kept_exports(conn: Connection, request_ids: Iterable[str]) -> set[tuple[str, str]]:
    """(request, destination) pairs whose gathered answer is still kept: not pruned past
    its keeping time, not shredded with the person. Only these hold records an admin can
    still decide on."""
    from core.db import request_exports

    wanted = list(dict.fromkeys(request_ids))
    if not wanted:
        return set()
    return {(r.request_id, r.destination) for r in conn.execute(
        select(request_exports.c.request_id, request_exports.c.destination).where(
            request_exports.c.request_id.in_(wanted)))}


def forget_texts(conn: Connection, subject_ids: Sequence[str]) -> None:
    """The erased people's requests keep no free text: their extension and rejection
    reasons, and their destinations' reasons given by an admin (not applicable) or a
    partner (a rejecting acknowledgement), become ``ERASED_TEXT``. A worker's reason (an
    error class) stays: it is privasync's own."""
    ids = list(subject_ids)
    for column in (requests.c.extension_reason, requests.c.rejection_reason):
        conn.execute(update(requests).where(requests.c.subject_id.in_(ids),
                                            column.is_not(None))
                     .values({column.name: ERASED_TEXT}))
    rows = conn.execute(select(request_destinations.c.request_id,
                               request_destinations.c.destination,
                               request_destinations.c.status, request_destinations.c.receipt)
                        .where(request_destinations.c.request_id.in_(
                            select(requests.c.id).where(requests.c.subject_id.in_(ids))),
                            request_destinations.c.reason.is_not(None))).all()
    for r in rows:
        if r.status == NOT_APPLICABLE or "acknowledged" in json.loads(r.receipt or "{}"):
            conn.execute(update(request_destinations).where(
                request_destinations.c.request_id == r.request_id,
                request_destinations.c.destination == r.destination)
                .values(reason=ERASED_TEXT))
