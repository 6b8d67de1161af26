"""Process bookkeeping kept in the database: heartbeats, poll cursors, leader leases.

Heartbeats let /readyz tell a live worker from a dead one (a Redis ping would
not); cursors survive restarts; a lease keeps one scheduler leading at a time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from core.db import cursors, heartbeats, leases


def beat(engine: Engine, name: str, now: datetime) -> None:
    with engine.begin() as conn:
        if not conn.execute(update(heartbeats).where(heartbeats.c.name == name)
                            .values(at=now)).rowcount:
            conn.execute(insert(heartbeats).values(name=name, at=now))


def forget_beat(engine: Engine, name: str) -> None:
    with engine.begin() as conn:
        conn.execute(delete(heartbeats).where(heartbeats.c.name == name))


def latest_beat(engine: Engine, prefix: str) -> datetime | None:
    with engine.connect() as conn:
        value: datetime | None = conn.execute(select(func.max(heartbeats.c.at)).where(
            heartbeats.c.name.like(f"{prefix}%"))).scalar()
    return value


def read_cursor(engine: Engine, name: str) -> str | None:
    with engine.connect() as conn:
        value: str | None = conn.execute(select(cursors.c.value)
                                         .where(cursors.c.name == name)).scalar_one_or_none()
    return value


def write_cursor(engine: Engine, name: str, value: str, now: datetime) -> None:
    with engine.begin() as conn:
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
