"""The outbox: jobs that make a destination agree with a subject's current state.

A job never carries the change itself (DESIGN.md principle 2): the worker reads
current state when it runs, so duplicates, retries and reordering are harmless,
and a burst for one destination coalesces into one vendor batch call. At most
one state job waits per (destination, subject, kind); record jobs carry the
changed values and coalesce when claimed.

Job life: pending -> running (a claim: a lease) -> done | pending (retry) |
dead (a permanent failure, attempts exhausted, or past its max age: a dead
letter, kept with its values until an operator retries it, see
``core.deadletters``) | superseded (a newer job for the same subject took over
its retry). ``failed`` is what older versions called a permanent failure; the
migration turned those into ``dead``. A claim names its holder, carries a
fresh token and a lease that the holder's heartbeat extends; the claim
statement itself takes jobs whose lease ran out, so a dead worker's batch is
back within the lease with no reaper to stall, and every outcome write matches
job, token and state, so a late worker cannot finish a job someone re-claimed.
Done and superseded jobs are deleted after a while (``prune``); what a done job sent
stays in ``disclosures``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    and_,
    bindparam,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.dml import ReturningDelete

from core import subject_requests as rq
from core.db import disclosures, dispatch, insert_for, jobs, requests, write_many

PENDING, RUNNING, DONE, FAILED, DEAD = "pending", "running", "done", "failed", "dead"
SUPERSEDED = "superseded"
OPEN = (PENDING, RUNNING)
FINISHED = (DONE, SUPERSEDED)  # the states the retention deletes (``prune``)
CONSENT, RECORD = "consent", "record"
# Kinds whose jobs carry values (several may wait per subject); the rest are state jobs.
CARRIES_VALUES = frozenset({RECORD})

NewJob = tuple[str, str, str, datetime, bytes | None]  # kind, destination, subject, origin, payload


def add(conn: Connection, now: datetime, new: Sequence[NewJob]) -> None:
    """Queue jobs in the caller's transaction; a state job for a subject that already has
    one waiting at that destination adds nothing (the waiting one reads current state)."""
    if not new:
        return
    rows = [{"kind": kind, "destination": destination, "subject_id": subject_id,
             "status": PENDING, "attempts": 0, "next_attempt_at": now,
             "origin_received_at": origin, "created_at": now, "updated_at": now,
             "payload": payload} for kind, destination, subject_id, origin, payload in new]
    write_many(conn, jobs, rows, ignore=True)


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    subject_id: str
    attempts: int
    origin_received_at: datetime
    payload: bytes | None = None
    since: datetime | None = None  # when it was queued, or last retried by an operator


@dataclass(frozen=True)
class Claim:
    """A batch of one destination's jobs of one kind, held under ``token`` until
    ``lease_until`` (which the holder's heartbeat extends)."""

    destination: str
    kind: str
    token: str
    jobs: tuple[ClaimedJob, ...]

    def by_subject(self) -> dict[str, list[ClaimedJob]]:
        """The claimed jobs per subject, oldest first: a subject is delivered once."""
        grouped: dict[str, list[ClaimedJob]] = {}
        for job in sorted(self.jobs, key=lambda j: j.id):
            grouped.setdefault(job.subject_id, []).append(job)
        return grouped


def claim(engine: Engine, destination: str, kind: str, *, limit: int, holder: str,
          lease: timedelta, now: datetime) -> Claim | None:
    """Claim up to ``limit`` due jobs of ``destination`` and ``kind`` in one statement.

    Due: pending and past ``next_attempt_at``, or running with an expired lease.
    A subject another holder is writing right now (a live lease) waits, so two
    workers never write one person at once; several workers share a backlog
    without taking the same job (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the
    write lock on SQLite).
    """
    busy = jobs.alias("busy")
    live_twin = select(busy.c.id).where(
        busy.c.subject_id == jobs.c.subject_id, busy.c.destination == jobs.c.destination,
        busy.c.kind == jobs.c.kind, busy.c.status == RUNNING, busy.c.lease_until >= now,
        busy.c.id != jobs.c.id).exists()
    due = (select(jobs.c.id)
           .where(jobs.c.destination == destination, jobs.c.kind == kind,
                  or_(and_(jobs.c.status == PENDING, jobs.c.next_attempt_at <= now),
                      and_(jobs.c.status == RUNNING, jobs.c.lease_until < now)),
                  ~live_twin)
           .order_by(jobs.c.next_attempt_at, jobs.c.id).limit(limit))
    token = str(uuid.uuid4())
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        picked = due.cte("picked")
        rows = conn.execute(
            update(jobs).where(jobs.c.id == picked.c.id)
            .values(status=RUNNING, claimed_by=holder, claim_token=token, claimed_at=now,
                    lease_until=now + lease, updated_at=now, attempts=jobs.c.attempts + 1)
            .returning(jobs.c.id, jobs.c.subject_id, jobs.c.attempts,
                       jobs.c.origin_received_at, jobs.c.payload, jobs.c.created_at,
                       jobs.c.retried_at)).all()
    if not rows:
        return None
    return Claim(destination, kind, token, tuple(
        ClaimedJob(r.id, r.subject_id, r.attempts, r.origin_received_at, r.payload,
                   r.retried_at or r.created_at)
        for r in rows))


def extend(engine: Engine, tokens: Collection[str], now: datetime, *, lease: timedelta,
           max_hold: timedelta) -> int:
    """The heartbeat: extend the leases of the claims ``tokens`` names, the ones a thread
    of this process is still working on, except claims held longer than ``max_hold`` (a
    thread stuck on a socket proves nothing by its process beating). A claim its thread
    gave up on (its outcome could not be recorded: the database went away) is not in
    ``tokens``, so its lease runs out and another worker takes the jobs."""
    if not tokens:
        return 0
    held = select(jobs.c.id).where(jobs.c.claim_token.in_(list(tokens)),
                                   jobs.c.status == RUNNING, jobs.c.claimed_at >= now - max_hold)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Rows a thread is finishing right now are locked by its outcome transaction:
            # skip them (they are about to be released) rather than wait, which could
            # deadlock against that transaction's row-by-row updates.
            held = held.with_for_update(skip_locked=True)
        return int(conn.execute(update(jobs).where(jobs.c.id.in_(held.scalar_subquery()))
                                .values(lease_until=now + lease)).rowcount)


@dataclass(frozen=True)
class Outcome:
    """How a group of claimed jobs ends: ``status`` (DONE, FAILED, DEAD, or PENDING for a
    retry at ``retry_at``), the error class, a short note."""

    status: str
    ids: tuple[int, ...]
    error_class: str | None = None
    retry_at: datetime | None = None
    note: str | None = None
    refund: bool = False  # a retry that was never tried (throttled): its attempt is given back


def finish(conn: Connection, claim: Claim, outcomes: Iterable[Outcome], now: datetime,
           sent: Mapping[int, str] | None = None) -> int:
    """Record outcomes in the caller's transaction, one statement per group; only jobs this
    claim still holds are touched. Returns how many were (fewer: the lease was lost).
    ``sent``: per done job, what it sent (field names, never values), kept for the record."""
    if sent:
        conn.execute(update(jobs).where(jobs.c.id == bindparam("job"), jobs.c.claim_token ==
                                        claim.token, jobs.c.status == RUNNING)
                     .values(sent=bindparam("what")),
                     [{"job": job, "what": what[:500]} for job, what in sent.items()])
    held = and_(jobs.c.claim_token == claim.token, jobs.c.status == RUNNING)
    release = {"claimed_by": None, "claim_token": None, "lease_until": None,
               "updated_at": now}
    touched = 0
    for o in outcomes:
        if not o.ids:
            continue
        ids: ColumnElement[bool] = jobs.c.id.in_(list(o.ids))
        if o.status == PENDING:
            assert o.retry_at is not None
            if claim.kind not in CARRIES_VALUES:
                # One waiting state job per subject: the newest claimed one retries, unless
                # a newer job is waiting already; the rest are superseded.
                newest: dict[str, int] = {}
                for job in claim.jobs:
                    if job.id in o.ids:
                        newest[job.subject_id] = max(newest.get(job.subject_id, 0), job.id)
                twin = jobs.alias("twin")
                waiting = select(twin.c.id).where(
                    twin.c.subject_id == jobs.c.subject_id,
                    twin.c.destination == jobs.c.destination, twin.c.kind == jobs.c.kind,
                    twin.c.status == PENDING).exists()
                retry = sorted(newest.values())
                ids = and_(jobs.c.id.in_(retry), ~waiting)
            attempts = {"attempts": jobs.c.attempts - 1} if o.refund else {}
            touched += conn.execute(update(jobs).where(ids, held).values(
                status=PENDING, next_attempt_at=o.retry_at, last_error_class=o.error_class,
                note=o.note, **attempts, **release)).rowcount
            touched += conn.execute(update(jobs).where(jobs.c.id.in_(list(o.ids)), held).values(
                status=SUPERSEDED, done_at=now, last_error_class=o.error_class,
                note="a newer job took over", payload=None, **release)).rowcount
            continue
        # A dead job keeps its values (sealed under the subject's key): a retry sends them.
        kept = {} if o.status == DEAD else {"payload": None}
        touched += conn.execute(update(jobs).where(ids, held).values(
            status=o.status, done_at=now, last_error_class=o.error_class, note=o.note,
            **kept, **release)).rowcount
    return int(touched)


def _due(now: datetime) -> ColumnElement[bool]:
    return and_(jobs.c.status.in_(OPEN),
                or_(and_(jobs.c.status == PENDING, jobs.c.next_attempt_at <= now),
                    and_(jobs.c.status == RUNNING, jobs.c.lease_until < now)))


def due_destinations(conn: Connection, now: datetime) -> set[str]:
    """Destinations with a job to claim now (a due one, or one whose lease ran out)."""
    return set(conn.execute(select(jobs.c.destination).distinct().where(_due(now))).scalars())


def due_kinds(conn: Connection, destination: str, now: datetime) -> set[str]:
    """The kinds of ``destination``'s jobs that could be claimed now (a read: no lock)."""
    return set(conn.execute(select(jobs.c.kind).distinct().where(
        jobs.c.destination == destination, _due(now))).scalars())


def register(engine: Engine, destinations: Iterable[str]) -> None:
    """Give each destination its dispatch guard row (idempotent)."""
    rows = [{"destination": d, "enqueued_at": None} for d in sorted(set(destinations))]
    if rows:
        with engine.begin() as conn:
            conn.execute(insert_for(conn, dispatch).on_conflict_do_nothing(), rows)


def guard(engine: Engine, destinations: Iterable[str], now: datetime,
          stale_after: timedelta, *, due: datetime | None = None) -> list[str]:
    """The destinations a dispatch message may be sent for now: those with none in flight
    (or only one older than ``stale_after``, presumed lost). Marks them in flight; a
    message delayed until ``due`` counts from then."""
    wanted = sorted(set(destinations))
    if not wanted:
        return []
    with engine.begin() as conn:
        return list(conn.execute(update(dispatch).where(
            dispatch.c.destination.in_(wanted),
            dispatch.c.enqueued_at.is_(None) | (dispatch.c.enqueued_at < now - stale_after))
            .values(enqueued_at=due or now).returning(dispatch.c.destination)).scalars())


def unguard(engine: Engine, destination: str) -> None:
    """A dispatch message arrived: later changes may send the next one."""
    with engine.begin() as conn:
        conn.execute(update(dispatch).where(dispatch.c.destination == destination)
                     .values(enqueued_at=None))


def counts(conn: Connection, *, finished: bool = True) -> dict[tuple[str, str], int]:
    """Jobs by (destination, status), for status pages; without ``finished`` (for metrics,
    read at every scrape) only the unfinished ones, which an index keeps cheap to count."""
    query = select(jobs.c.destination, jobs.c.status, func.count())
    if not finished:
        query = query.where(jobs.c.status.not_in([DONE, SUPERSEDED]))
    rows = conn.execute(query.group_by(jobs.c.destination, jobs.c.status)).all()
    return {(r[0], r[1]): int(r[2]) for r in rows}


def oldest_pending(conn: Connection) -> dict[str, datetime]:
    """Per destination, when its oldest unfinished job was created."""
    rows = conn.execute(select(jobs.c.destination, func.min(jobs.c.created_at))
                        .where(jobs.c.status.in_(OPEN))
                        .group_by(jobs.c.destination)).all()
    return {r[0]: r[1] for r in rows}


def prune(engine: Engine, before: datetime, *, batch: int = 10_000,
          go_on: Callable[[], bool] = lambda: True) -> int:
    """Delete the done and superseded jobs that finished before ``before``, at most
    ``batch`` per transaction, so that neither SQLite's one writer nor PostgreSQL's locks
    are held long while intake and delivery run; ``go_on`` is asked between batches (the
    caller may pause there, or stop: the rest waits for the next run). What a done job
    sent goes on in ``disclosures``, per person and day, in the same transaction.

    Kept whatever their age: pending, running and dead jobs (a dead letter waits for an
    operator); the erasure and export jobs of a subject with an open request (an
    acknowledgement counts only for one that went out: ``subject_requests.sent``); and the
    newest job (SQLite would hand its id out again, and ledger receipts name jobs by id).
    Returns how many jobs were deleted."""
    total = 0
    while True:
        with engine.begin() as conn:
            gone = _prune_batch(conn, before, batch)
        total += gone
        if gone < batch or not go_on():
            return total


def _prune_batch(conn: Connection, before: datetime, batch: int) -> int:
    old, newest = jobs.alias("old"), jobs.alias("newest")
    open_request = select(requests.c.id).where(
        requests.c.subject_id == old.c.subject_id, requests.c.status.in_(rq.OPEN)).exists()
    # The states as literals: SQLite uses a partial index only for a condition it can
    # match to the index's own, which a bound parameter is not.
    finished: BindParameter[str] = bindparam("finished", FINISHED, expanding=True,
                                             literal_execute=True)
    picked = (select(old.c.id)
              .where(old.c.status.in_(finished), old.c.done_at < before,
                     old.c.id < select(func.max(newest.c.id)).scalar_subquery(),
                     ~and_(old.c.kind.in_(rq.ACKED_KINDS), open_request))
              .order_by(old.c.done_at).limit(batch))
    gone = (delete(jobs).where(jobs.c.id.in_(picked.scalar_subquery()))
            .returning(jobs.c.status, jobs.c.destination, jobs.c.subject_id, jobs.c.kind,
                       jobs.c.sent, jobs.c.done_at))
    if conn.dialect.name == "postgresql":
        return _fold_in_postgresql(conn, gone)
    rows = conn.execute(gone).all()
    _disclose(conn, [r for r in rows if r.status == DONE])
    return len(rows)


_DISCLOSURE_KEY = ("destination", "subject_id", "day", "kind", "sent")


def _disclose(conn: Connection, rows: Sequence[Any]) -> None:
    """Fold done jobs' delivery records into ``disclosures``: one row per destination,
    subject, UTC day, kind and field names, with the first and last time and a count."""
    merged: dict[tuple[str, str, datetime, str, str], list[Any]] = {}
    for r in rows:
        at = r.done_at.astimezone(UTC)
        key = (r.destination, r.subject_id, datetime(at.year, at.month, at.day, tzinfo=UTC),
               r.kind, r.sent or "")
        seen = merged.get(key)
        if seen is None:
            merged[key] = [at, at, 1]
        else:
            seen[0], seen[1], seen[2] = min(seen[0], at), max(seen[1], at), seen[2] + 1
    write_many(conn, disclosures, [
        {**dict(zip(_DISCLOSURE_KEY, key, strict=True)), "first_at": first, "last_at": last,
         "jobs": n} for key, (first, last, n) in sorted(merged.items())],
        conflict=_DISCLOSURE_KEY, merge={"first_at": "min", "last_at": "max", "jobs": "sum"})


def _fold_in_postgresql(conn: Connection,
                        deleting: ReturningDelete[Any, Any, Any, Any, Any, Any]) -> int:
    """``_disclose`` in the deleting statement itself: PostgreSQL folds the deleted jobs
    into ``disclosures`` (half the time of a round through Python, none of its CPU)."""
    gone = deleting.cte("gone")
    done = select(gone.c.destination, gone.c.subject_id,
                  func.date_trunc("day", gone.c.done_at, "UTC").label("day"), gone.c.kind,
                  func.coalesce(gone.c.sent, "").label("sent"), gone.c.done_at
                  ).where(gone.c.status == DONE).subquery("done")
    key = [done.c[name] for name in _DISCLOSURE_KEY]
    add = insert_for(conn, disclosures).from_select(
        [*_DISCLOSURE_KEY, "first_at", "last_at", "jobs"],
        select(*key, func.min(done.c.done_at), func.max(done.c.done_at), func.count())
        .group_by(*key))
    d = disclosures.c
    kept = add.on_conflict_do_update(index_elements=list(_DISCLOSURE_KEY), set_={
        "first_at": func.least(d.first_at, add.excluded.first_at),
        "last_at": func.greatest(d.last_at, add.excluded.last_at),
        "jobs": d.jobs + add.excluded.jobs}).cte("kept")
    return int(conn.execute(select(func.count()).select_from(gone).add_cte(kept))
               .scalar_one())
