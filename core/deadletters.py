"""Dead letters: the jobs privasync gave up on, listed and sent back by an operator.

A job is ``dead`` after a permanent error, its last allowed attempt, or a failure
past its max age (``core.delivery.Budget``). It stays in the database with its
error class, attempts and times (and a record job with its sealed values) until
an operator retries it: back to ``pending``, attempts from zero, due now, its max
age counted again from the retry. Each retry is one ledger entry naming the
actor (``cli`` or the admin token's name) and the jobs; no personal data.

A job says "make the destination agree with the subject's current state", so a
retry sends what is true now, not what was true when the job died:

- a state job whose subject already has one waiting at that destination is
  superseded (the waiting one reads the same current state);
- a record job's values older than the newest seen for their field are left out
  when it is delivered (``records.current``);
- an erasure or export job puts its request's destination back to ``pending``,
  or is superseded when the request is no longer open;
- a job of an erased subject is superseded: nothing may be sent about them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from core import ledger, outbox
from core import subject_requests as rq
from core.db import jobs, subjects
from core.dsr import ERASE, EXPORT
from core.model import RequestKind

STATUSES = (outbox.PENDING, outbox.RUNNING, outbox.DONE, outbox.DEAD, outbox.SUPERSEDED,
            outbox.FAILED)
CHUNK = 500  # jobs per retry transaction (and per ledger entry)
_REQUEST_KINDS = {ERASE: (RequestKind.ERASURE,),
                  EXPORT: (RequestKind.ACCESS, RequestKind.PORTABILITY)}


@dataclass(frozen=True)
class Job:
    """A job as an operator sees it: ids, states, error class and times; never values."""

    id: int
    kind: str
    destination: str
    subject_id: str
    status: str
    attempts: int
    last_error_class: str | None
    note: str | None
    created_at: datetime
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    finished_at: datetime | None
    retried_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v)
                for k, v in self.__dict__.items()}


_COLUMNS = (jobs.c.id, jobs.c.kind, jobs.c.destination, jobs.c.subject_id, jobs.c.status,
            jobs.c.attempts, jobs.c.last_error_class, jobs.c.note, jobs.c.created_at,
            jobs.c.claimed_at, jobs.c.next_attempt_at, jobs.c.done_at, jobs.c.retried_at)


def _job(row: Any) -> Job:
    waiting = row.status in outbox.OPEN
    return Job(row.id, row.kind, row.destination, row.subject_id, row.status, row.attempts,
               row.last_error_class, row.note, row.created_at, row.claimed_at,
               row.next_attempt_at if waiting else None,
               None if waiting else row.done_at, row.retried_at)


def listing(conn: Connection, *, status: str | None = None, destination: str | None = None,
            limit: int = 100, after: int = 0) -> list[Job]:
    """Jobs by id (oldest first) after the id ``after``, at most ``limit``; every status
    but done and superseded unless ``status`` names one."""
    where: list[ColumnElement[bool]] = [jobs.c.id > after]
    if status is not None:
        where.append(jobs.c.status == status)
    else:
        where.append(jobs.c.status.not_in([outbox.DONE, outbox.SUPERSEDED]))
    if destination is not None:
        where.append(jobs.c.destination == destination)
    rows = conn.execute(select(*_COLUMNS).where(*where).order_by(jobs.c.id).limit(limit))
    return [_job(r) for r in rows]


def get(conn: Connection, job_id: int) -> Job | None:
    row = conn.execute(select(*_COLUMNS).where(jobs.c.id == job_id)).first()
    return _job(row) if row is not None else None


def counts(conn: Connection) -> dict[str, int]:
    """Dead jobs per destination (the unfinished-jobs index serves it)."""
    rows = conn.execute(select(jobs.c.destination, func.count())
                        .where(jobs.c.status == outbox.DEAD).group_by(jobs.c.destination))
    return {r[0]: int(r[1]) for r in rows}


@dataclass
class Retried:
    """What a retry did: jobs sent back, jobs superseded (with why), ids not dead."""

    retried: list[int] = field(default_factory=list)
    superseded: dict[int, str] = field(default_factory=dict)
    not_dead: list[int] = field(default_factory=list)
    destinations: set[str] = field(default_factory=set)

    def add(self, other: Retried) -> None:
        self.retried += other.retried
        self.superseded |= other.superseded
        self.not_dead += other.not_dead
        self.destinations |= other.destinations


def retry(engine: Engine, ids: Sequence[int], now: datetime, *, actor: str) -> Retried:
    """Send these dead jobs back (see the module's rules); ids that are not dead jobs are
    reported in ``not_dead`` and left alone. One transaction and ledger entry per chunk."""
    report = Retried()
    wanted = sorted(set(ids))
    for start in range(0, len(wanted), CHUNK):
        report.add(_retry_chunk(engine, wanted[start:start + CHUNK], now, actor))
    return report


def retry_dead(engine: Engine, now: datetime, *, actor: str,
               destination: str | None = None) -> Retried:
    """Send back every dead job (of ``destination``), in chunks."""
    report, after = Retried(), 0
    while True:
        with engine.connect() as conn:
            where = [jobs.c.status == outbox.DEAD, jobs.c.id > after]
            if destination is not None:
                where.append(jobs.c.destination == destination)
            chunk = list(conn.execute(select(jobs.c.id).where(*where).order_by(jobs.c.id)
                                      .limit(CHUNK)).scalars())
        if not chunk:
            return report
        report.add(_retry_chunk(engine, chunk, now, actor))
        after = chunk[-1]


def _retry_chunk(engine: Engine, ids: list[int], now: datetime, actor: str) -> Retried:
    # A job the applier queues at the same moment may take the one waiting place first:
    # the chunk is then decided again (the dead twin is superseded).
    for attempt in range(3):
        try:
            with engine.begin() as conn:
                return _retry_in(conn, ids, now, actor)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _retry_in(conn: Connection, ids: list[int], now: datetime, actor: str) -> Retried:
    query = select(jobs.c.id, jobs.c.kind, jobs.c.destination, jobs.c.subject_id).where(
        jobs.c.id.in_(ids), jobs.c.status == outbox.DEAD)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    rows = conn.execute(query.order_by(jobs.c.id)).all()
    found = {r.id for r in rows}
    report = Retried(not_dead=[i for i in ids if i not in found])
    if not rows:
        return report
    erased = set(conn.execute(select(subjects.c.id).where(
        subjects.c.id.in_({r.subject_id for r in rows}),
        subjects.c.erased_at.is_not(None))).scalars())
    candidates: dict[tuple[str, str, str], int] = {}  # state jobs: the newest per subject
    send: list[int] = []
    for r in rows:
        if r.subject_id in erased:
            report.superseded[r.id] = "subject erased"
        elif r.kind in _REQUEST_KINDS and not _reopen(conn, r, now, actor):
            report.superseded[r.id] = "no open request"
        elif r.kind in outbox.CARRIES_VALUES:
            send.append(r.id)
        else:
            twin = (r.destination, r.subject_id, r.kind)
            if twin in candidates:
                report.superseded[candidates[twin]] = "a newer job took over"
            candidates[twin] = r.id
    send += candidates.values()
    note = f"retried by {actor}"[:200]
    if send:
        waiting = jobs.alias("waiting")
        has_twin = select(waiting.c.id).where(
            waiting.c.subject_id == jobs.c.subject_id,
            waiting.c.destination == jobs.c.destination, waiting.c.kind == jobs.c.kind,
            waiting.c.status == outbox.PENDING,
            jobs.c.kind.not_in(sorted(outbox.CARRIES_VALUES))
        ).exists()
        moved = conn.execute(update(jobs).where(
            jobs.c.id.in_(send), jobs.c.status == outbox.DEAD, ~has_twin).values(
            status=outbox.PENDING, attempts=0, next_attempt_at=now, retried_at=now,
            done_at=None, note=note, updated_at=now).returning(jobs.c.id)).scalars()
        report.retried = sorted(moved)
        report.superseded |= {i: "a waiting job will send the current state"
                              for i in send if i not in set(report.retried)}
    by_why: dict[str, list[int]] = {}
    for job_id, why in report.superseded.items():
        by_why.setdefault(why, []).append(job_id)
    for why, job_ids in by_why.items():
        conn.execute(update(jobs).where(jobs.c.id.in_(job_ids), jobs.c.status == outbox.DEAD)
                     .values(status=outbox.SUPERSEDED, payload=None, note=why[:200],
                             done_at=now, updated_at=now))
    report.destinations = {r.destination for r in rows if r.id in set(report.retried)}
    ledger.append(conn, at=now, kind="jobs.retried", detail={
        "actor": actor, "retried": report.retried,
        "superseded": {str(k): v for k, v in sorted(report.superseded.items())},
        "destinations": sorted({r.destination for r in rows})})
    return report


def _reopen(conn: Connection, row: Any, now: datetime, actor: str) -> bool:
    """An erasure or export job's open request goes back to waiting on this destination
    (in the request's story, like ``requests retry``); False when the subject has no open
    request of that kind."""
    for kind in _REQUEST_KINDS[row.kind]:
        request_id = rq.open_for(conn, [row.subject_id], kind.value).get(row.subject_id)
        if request_id is None:
            continue
        if rq.record(conn, request_id, row.destination, status=rq.PENDING, now=now,
                     only_from=(rq.FAILED,)):
            ledger.append(conn, at=now, kind="request.retried", subject_id=row.subject_id,
                          detail={"request": request_id, "destinations": [row.destination],
                                  "actor": actor, "job": row.id}, sealed=False)
        return True
    return False
