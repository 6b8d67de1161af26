"""The outbox: jobs that make a destination agree with a subject's current state.

A job never carries the change itself (DESIGN.md principle 2): the worker reads
current state when it runs, so duplicates, retries and reordering are harmless
and a burst for one destination coalesces into one vendor batch call.

Job life: pending -> running -> done | pending (retry) | failed (permanent) | dead
(attempts exhausted). A running job whose worker died goes back to pending
after ``stale_after``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.engine import Connection, Engine

from core.db import jobs

PENDING, RUNNING, DONE, FAILED, DEAD = "pending", "running", "done", "failed", "dead"
CONSENT, RECORD = "consent", "record"


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    subject_id: str
    attempts: int
    origin_received_at: datetime
    payload: bytes | None = None


@dataclass(frozen=True)
class Claim:
    destination: str
    kind: str
    jobs: tuple[ClaimedJob, ...]


@dataclass(frozen=True)
class Backoff:
    min_seconds: float
    max_seconds: float
    max_attempts: int

    def delay(self, attempts: int, retry_after: float | None, jitter: float) -> float:
        """Exponential backoff with jitter in [1, 2), never shorter than the vendor asked."""
        base = min(self.max_seconds, self.min_seconds * 2.0 ** max(0, attempts - 1) * jitter)
        return float(max(base, retry_after or 0.0))


def pending(conn: Connection, *, kind: str, destination: str, subject_id: str) -> int | None:
    """The job of this kind for this subject and destination that has not started yet."""
    found: int | None = conn.execute(select(jobs.c.id).where(
        jobs.c.subject_id == subject_id, jobs.c.destination == destination,
        jobs.c.kind == kind, jobs.c.status == PENDING).limit(1)).scalar_one_or_none()
    return found


def enqueue_many(conn: Connection, *, kind: str, destinations: Sequence[str], subject_id: str,
                 now: datetime, origin_received_at: datetime) -> list[int]:
    """One job per destination that has none pending for this subject; their new ids."""
    busy = set(conn.execute(select(jobs.c.destination).where(
        jobs.c.subject_id == subject_id, jobs.c.kind == kind, jobs.c.status == PENDING,
        jobs.c.destination.in_(list(destinations)))).scalars())
    rows = [{"kind": kind, "destination": d, "subject_id": subject_id, "status": PENDING,
             "attempts": 0, "next_attempt_at": now, "enqueued_at": now,
             "origin_received_at": origin_received_at, "created_at": now, "updated_at": now,
             "payload": None} for d in dict.fromkeys(destinations) if d not in busy]
    if not rows:
        return []
    return [int(r[0]) for r in conn.execute(insert(jobs).returning(jobs.c.id), rows)]


def enqueue(conn: Connection, *, kind: str, destination: str, subject_id: str,
            now: datetime, origin_received_at: datetime,
            payload: bytes | None = None) -> int | None:
    """Add a job unless an identical one is still pending; returns the new id or None."""
    if pending(conn, kind=kind, destination=destination, subject_id=subject_id) is not None:
        return None
    result = conn.execute(insert(jobs).values(
        kind=kind, destination=destination, subject_id=subject_id, status=PENDING, attempts=0,
        next_attempt_at=now, enqueued_at=now, origin_received_at=origin_received_at,
        created_at=now, updated_at=now, payload=payload))
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def claim(engine: Engine, job_id: int, limit_for: Callable[[str, str], int],
          now: datetime) -> Claim | None:
    """Claim ``job_id`` and due pending jobs of its destination, up to its batch size.

    Returns None when the job is not due or someone else already took it (its
    message is then a harmless duplicate). A subject whose previous job at this
    destination is still running waits: two workers never write one person at
    once (the reconciler re-sends the waiting job's message).
    """
    with engine.begin() as conn:
        row = conn.execute(select(jobs.c.destination, jobs.c.kind).where(
            jobs.c.id == job_id, jobs.c.status == PENDING,
            jobs.c.next_attempt_at <= now)).first()
        if row is None:
            return None
        busy = jobs.alias("busy")
        running_twin = select(busy.c.id).where(
            busy.c.subject_id == jobs.c.subject_id, busy.c.destination == jobs.c.destination,
            busy.c.kind == jobs.c.kind, busy.c.status == RUNNING).exists()
        due = (select(jobs.c.id, jobs.c.subject_id, jobs.c.attempts, jobs.c.origin_received_at,
                      jobs.c.payload)
               .where(jobs.c.destination == row.destination, jobs.c.kind == row.kind,
                      jobs.c.status == PENDING, jobs.c.next_attempt_at <= now,
                      ~running_twin)
               .order_by((jobs.c.id == job_id).desc(), jobs.c.id)
               .limit(limit_for(row.destination, row.kind)))
        if conn.dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        picked = conn.execute(due).all()
        taken: list[ClaimedJob] = []
        seen: set[str] = set()
        for j in picked:
            if j.subject_id in seen:
                continue  # a twin from a race: it stays pending and runs in the next batch
            seen.add(j.subject_id)
            taken.append(ClaimedJob(j.id, j.subject_id, j.attempts + 1, j.origin_received_at,
                                    j.payload))
        if not taken:
            return None
        # The picked rows are ours alone: locked (PostgreSQL) or in an exclusive
        # transaction (SQLite), so one UPDATE claims them all.
        conn.execute(update(jobs).where(jobs.c.id.in_([t.id for t in taken])).values(
            status=RUNNING, claimed_at=now, updated_at=now, attempts=jobs.c.attempts + 1))
        return Claim(row.destination, row.kind, tuple(taken))


def _close(conn: Connection, ids: Sequence[int], status: str, now: datetime, *,
           error_class: str | None = None, note: str | None = None) -> None:
    if ids:
        conn.execute(update(jobs).where(jobs.c.id.in_(ids)).values(
            status=status, updated_at=now, done_at=now, last_error_class=error_class,
            note=note, payload=None))


def complete(conn: Connection, job_id: int, now: datetime, note: str = "") -> None:
    _close(conn, [job_id], DONE, now, note=note[:200] or None)


def fail(conn: Connection, job_id: int, now: datetime, error_class: str) -> None:
    _close(conn, [job_id], FAILED, now, error_class=error_class)


def retry(conn: Connection, job: ClaimedJob, now: datetime, backoff: Backoff,
          error_class: str, retry_after: float | None) -> float | None:
    """Schedule another attempt; returns the delay in seconds, or None if the job is dead."""
    if job.attempts >= backoff.max_attempts:
        _close(conn, [job.id], DEAD, now, error_class=error_class)
        return None
    delay = backoff.delay(job.attempts, retry_after, 1 + random.random())  # noqa: S311
    conn.execute(update(jobs).where(jobs.c.id == job.id).values(
        status=PENDING, next_attempt_at=now + timedelta(seconds=delay), updated_at=now,
        last_error_class=error_class, enqueued_at=now))
    return delay


def release(engine: Engine, job_ids: Iterable[int], now: datetime) -> None:
    """Put claimed jobs back (the worker hit an unexpected error before finishing)."""
    with engine.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.id.in_(list(job_ids)), jobs.c.status == RUNNING)
                     .values(status=PENDING, updated_at=now, next_attempt_at=now,
                             last_error_class="worker_error"))


def reconcile(engine: Engine, now: datetime, *, grace: timedelta,
              stale_after: timedelta, limit: int = 1000) -> list[int]:
    """Jobs whose broker message is presumed lost; marks them re-enqueued and returns ids.

    A pending job that became due more than ``grace`` ago without running, or a
    running job claimed longer than ``stale_after`` ago (its worker died).
    """
    with engine.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.status == RUNNING,
                                        jobs.c.claimed_at < now - stale_after)
                     .values(status=PENDING, next_attempt_at=now, updated_at=now,
                             last_error_class="worker_lost"))
        ids = list(conn.execute(select(jobs.c.id).where(
            jobs.c.status == PENDING, jobs.c.next_attempt_at <= now - grace,
            jobs.c.enqueued_at <= now - grace).order_by(jobs.c.id).limit(limit)).scalars())
        if ids:
            conn.execute(update(jobs).where(jobs.c.id.in_(ids)).values(enqueued_at=now))
        return ids


def counts(conn: Connection) -> dict[tuple[str, str], int]:
    """Jobs by (destination, status), for metrics and status pages."""
    rows = conn.execute(select(jobs.c.destination, jobs.c.status, func.count())
                        .group_by(jobs.c.destination, jobs.c.status)).all()
    return {(r[0], r[1]): int(r[2]) for r in rows}


def oldest_pending(conn: Connection) -> dict[str, datetime]:
    rows = conn.execute(select(jobs.c.destination, func.min(jobs.c.created_at))
                        .where(and_(jobs.c.status.in_([PENDING, RUNNING])))
                        .group_by(jobs.c.destination)).all()
    return {r[0]: r[1] for r in rows}
