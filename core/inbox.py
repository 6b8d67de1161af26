"""The durable inbox: a verified, validated delivery stored as one sealed row.

A webhook's whole request is verify, validate, ``store``, commit, answer 2xx:
it never waits on the applier, calls a vendor or takes a lock that applying
or delivery hold. The applier takes rows by state (``due``: not applied, in id
order, never by a high-water mark that a late commit could skip) and marks
them applied in the same transaction as everything they caused, clearing the
body: a delivery's personal data lives here only until it is applied, or until
the applier gives up on it (its reason stays, its body does not: nothing can
replay a row, so a kept body would only be personal data waiting for ``prune``).
The same bytes delivered again store nothing and are still answered 2xx.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Connection

from core.db import inbox, insert_for


@dataclass(frozen=True)
class Stored:
    """What ``store`` did: the new row's id, or None when these bytes were stored before."""

    id: int | None
    events: int

    @property
    def duplicate(self) -> bool:
        return self.id is None


@dataclass(frozen=True)
class Delivery:
    """An inbox row waiting to be applied; ``body`` is still sealed."""

    id: int
    source: str
    received_at: datetime
    events: int
    body: bytes | None
    attempts: int


def store(conn: Connection, *, source: str, sealed: bytes, key: str, received_at: datetime,
          events: int) -> Stored:
    """Insert one delivery in the caller's transaction unless ``(source, key)`` is there."""
    row = conn.execute(insert_for(conn, inbox).values(
        source=source, delivery_key=key, received_at=received_at, events=events, body=sealed,
        attempts=0).on_conflict_do_nothing(index_elements=["source", "delivery_key"])
        .returning(inbox.c.id)).first()
    return Stored(int(row.id) if row is not None else None, events)


def due(conn: Connection, now: datetime, *, max_rows: int, max_events: int) -> list[Delivery]:
    """The oldest unapplied rows that may run now: at most ``max_rows``, and no more than
    ``max_events`` events in all (but always the first row)."""
    rows = conn.execute(select(inbox.c.id, inbox.c.source, inbox.c.received_at,
                               inbox.c.events, inbox.c.body, inbox.c.attempts)
                        .where(inbox.c.applied_at.is_(None),
                               inbox.c.not_before.is_(None) | (inbox.c.not_before <= now))
                        .order_by(inbox.c.id).limit(max_rows)).all()
    taken: list[Delivery] = []
    total = 0
    for r in rows:
        if taken and total + r.events > max_events:
            break
        total += r.events
        taken.append(Delivery(r.id, r.source, r.received_at, r.events, r.body, r.attempts))
    return taken


def mark_applied(conn: Connection, ids: Sequence[int], now: datetime,
                 error: str | None = None) -> int:
    """Mark rows applied (``error``: given up on, for that reason) and clear their bodies,
    either way; returns the number of rows that were still unapplied."""
    if not ids:
        return 0
    return int(conn.execute(update(inbox).where(inbox.c.id.in_(list(ids)),
                                                inbox.c.applied_at.is_(None))
                            .values(applied_at=now, last_error=error, body=None)).rowcount)


def defer(conn: Connection, ids: Sequence[int], until: datetime, error: str) -> None:
    """Try these rows again at ``until``, counting the attempt."""
    if ids:
        conn.execute(update(inbox).where(inbox.c.id.in_(list(ids))).values(
            attempts=inbox.c.attempts + 1, not_before=until, last_error=error))


@dataclass(frozen=True)
class Backlog:
    rows: int
    events: int
    oldest: datetime | None
    failed: int


def backlog(conn: Connection) -> Backlog:
    """Rows waiting to be applied, their events and the oldest arrival; rows given up on."""
    waiting = conn.execute(select(func.count(), func.coalesce(func.sum(inbox.c.events), 0),
                                  func.min(inbox.c.received_at))
                           .where(inbox.c.applied_at.is_(None))).one()
    failed = conn.execute(select(func.count()).select_from(inbox).where(
        inbox.c.applied_at.is_not(None), inbox.c.last_error.is_not(None))).scalar_one()
    return Backlog(int(waiting[0]), int(waiting[1]), waiting[2], int(failed))


def prune(conn: Connection, applied_before: datetime) -> int:
    """Forget rows applied before ``applied_before``: their dedupe keys are no longer
    needed once senders have stopped retrying (HubSpot: 24 hours). Rows given up on
    before their bodies were cleared with them (an older release kept those) lose
    their bodies now."""
    conn.execute(update(inbox).where(inbox.c.applied_at.is_not(None),
                                     inbox.c.body.is_not(None)).values(body=None))
    return int(conn.execute(delete(inbox).where(
        inbox.c.applied_at < applied_before)).rowcount)
