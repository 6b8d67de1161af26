"""Process bookkeeping kept in the database: heartbeats, poll cursors, leader leases.

Heartbeats let /readyz tell a live worker from a dead one (a Redis ping would
not); cursors survive restarts; a lease keeps one scheduler leading at a time.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from core.db import cursors, heartbeats, insert_for, leases, reader, restarts


def beat(engine: Engine, name: str, now: datetime) -> None:
    with engine.begin() as conn:
        stmt = insert_for(conn, heartbeats).values(name=name, at=now)
        conn.execute(stmt.on_conflict_do_update(index_elements=["name"],
                                                set_={"at": stmt.excluded.at}))


def forget_beat(engine: Engine, name: str) -> None:
    with engine.begin() as conn:
        conn.execute(delete(heartbeats).where(heartbeats.c.name == name))


def latest_beat(engine: Engine, prefix: str) -> datetime | None:
    with reader(engine).connect() as conn:
        value: datetime | None = conn.execute(select(func.max(heartbeats.c.at)).where(
            heartbeats.c.name.like(f"{prefix}%"))).scalar()
    return value


COMPONENTS = ("worker", "scheduler", "applier")


def freshest_beats(conn: Connection) -> dict[str, datetime]:
    """Each component's freshest heartbeat (names are ``component:host:pid``)."""
    found: dict[str, datetime] = {}
    for name, at in conn.execute(select(heartbeats.c.name, heartbeats.c.at)):
        component = str(name).split(":", 1)[0]
        if component in COMPONENTS and (component not in found or at > found[component]):
            found[component] = at
    return found


def count_restart(engine: Engine, process: str, host: str, last_exit: int,
                  now: datetime) -> None:
    """One more restart of ``process`` on ``host`` (its last exit status; negative: the
    signal that ended it)."""
    with engine.begin() as conn:
        stmt = insert_for(conn, restarts).values(name=f"{process}:{host}", count=1,
                                                 last_exit=last_exit, at=now)
        conn.execute(stmt.on_conflict_do_update(index_elements=["name"], set_={
            "count": restarts.c.count + 1, "last_exit": stmt.excluded.last_exit,
            "at": stmt.excluded.at}))


def restart_counts(conn: Connection) -> dict[tuple[str, str], int]:
    """Restarts by (process, host)."""
    found: dict[tuple[str, str], int] = {}
    for name, count in conn.execute(select(restarts.c.name, restarts.c.count)):
        process, _, host = str(name).partition(":")
        found[(process, host)] = int(count)
    return found


def read_cursor(engine: Engine, name: str) -> str | None:
    with reader(engine).connect() as conn:
        value: str | None = conn.execute(select(cursors.c.value)
                                         .where(cursors.c.name == name)).scalar_one_or_none()
    return value


def write_cursor(conn: Connection, name: str, value: str, now: datetime) -> None:
    """Store a cursor in the caller's transaction (with what it covered)."""
    if not conn.execute(update(cursors).where(cursors.c.name == name)
                        .values(value=value, updated_at=now)).rowcount:
        conn.execute(insert(cursors).values(name=name, value=value, updated_at=now))


def hold_lease(engine: Engine, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
    """Take or renew the lease ``name`` for ``holder``; False while another holds it."""
    with engine.begin() as conn:
        renewed = conn.execute(update(leases).where(
            leases.c.name == name,
            (leases.c.holder == holder) | (leases.c.expires_at < now))
            .values(holder=holder, expires_at=now + ttl)).rowcount
        if renewed:
            return True
        try:
            with conn.begin_nested():
                conn.execute(insert(leases).values(name=name, holder=holder,
                                                   expires_at=now + ttl))
        except IntegrityError:
            return False
        return True


def renew_lease(conn: Connection, name: str, holder: str, now: datetime,
                ttl: timedelta) -> bool:
    """In the caller's transaction: extend ``holder``'s unexpired lease, or return False
    (it expired or another took it): the fencing check before a leader writes."""
    return bool(conn.execute(update(leases).where(
        leases.c.name == name, leases.c.holder == holder, leases.c.expires_at > now)
        .values(expires_at=now + ttl)).rowcount)


class Leadership:
    """One holder's view of a lease: renewed once half of it is spent, trusted locally
    until then (measured from the renewal), so leading costs a write per half-lease."""

    def __init__(self, engine: Engine, name: str, holder: str, ttl: timedelta) -> None:
        self.engine, self.name, self.holder, self.ttl = engine, name, holder, ttl
        self._trusted_until: datetime | None = None
        self._lock = threading.Lock()  # a leader's loops share one view of its lease

    def held(self, now: datetime) -> bool:
        with self._lock:
            return self._held(now)

    def _held(self, now: datetime) -> bool:
        if self._trusted_until is not None and now < self._trusted_until - self.ttl / 2:
            return True
        if self._trusted_until is None and lease_holder(self.engine, self.name, now) \
                not in (None, self.holder):
            return False  # another leads: a read, no write lock, until its lease runs out
        if hold_lease(self.engine, self.name, self.holder, now, self.ttl):
            self._trusted_until = now + self.ttl
            beat(self.engine, self.holder, now)
            return True
        self._trusted_until = None
        return False

    def release(self) -> None:
        """Give the lease up (a graceful stop): a standby takes over at its next look
        instead of waiting for the lease to run out. Free when this holder never led."""
        with self._lock:
            if self._trusted_until is None:
                return
            with self.engine.begin() as conn:
                conn.execute(delete(leases).where(leases.c.name == self.name,
                                                  leases.c.holder == self.holder))
            self._trusted_until = None

    def fence(self, conn: Connection, now: datetime) -> bool:
        """In the caller's write transaction: still the holder? (and extend)."""
        if renew_lease(conn, self.name, self.holder, now, self.ttl):
            self._trusted_until = now + self.ttl
            return True
        self._trusted_until = None
        return False


def lease_holder(engine: Engine, name: str, now: datetime) -> str | None:
    """Who holds the lease ``name`` now, if anyone."""
    with reader(engine).connect() as conn:
        holder: str | None = conn.execute(select(leases.c.holder).where(
            leases.c.name == name, leases.c.expires_at > now)).scalar_one_or_none()
    return holder
