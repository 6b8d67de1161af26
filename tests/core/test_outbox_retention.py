"""The outbox's retention, on both backends: finished jobs past their keeping time go, a
batch per transaction; what is still read stays (open and dead jobs, the erasure and export
jobs an open request's acknowledgement is checked against, the newest job); what a done job
sent stays in ``disclosures``, per person and day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine

from core import outbox
from core import subject_requests as rq
from core.db import disclosures, jobs, requests

NOW = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)
BEFORE = NOW - timedelta(days=7)
OLD = NOW - timedelta(days=10)


def job(engine: Engine, status: str, *, at: datetime = OLD, kind: str = outbox.CONSENT,
        destination: str = "mailchimp", subject: str = "s1", sent: str | None = None) -> int:
    """One job as it ends up: queued at ``at`` and, unless open, finished then."""
    finished = status not in outbox.OPEN
    with engine.begin() as conn:
        return int(conn.execute(insert(jobs).values(
            kind=kind, destination=destination, subject_id=subject, status=status,
            attempts=1, next_attempt_at=at, origin_received_at=at, created_at=at,
            updated_at=at, done_at=at if finished else None, sent=sent,
            lease_until=at if status == outbox.RUNNING else None)
            .returning(jobs.c.id)).scalar_one())


def left(engine: Engine) -> set[int]:
    with engine.connect() as conn:
        return set(conn.execute(select(jobs.c.id)).scalars())


def disclosed(engine: Engine) -> list[tuple[Any, ...]]:
    d = disclosures.c
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(d.destination, d.day, d.subject_id, d.kind, d.sent, d.first_at, d.last_at,
                   d.jobs).order_by(d.day, d.destination, d.subject_id, d.kind, d.sent))]


def request(engine: Engine, subject: str, status: str) -> rq.Request:
    with engine.begin() as conn:
        conn.execute(insert(requests).values(
            id=f"r-{subject}", kind="erasure", subject_id=subject, source="api",
            received_at=OLD - timedelta(hours=1), due_at=NOW + timedelta(days=20),
            status=status))
        return rq.many(conn, [f"r-{subject}"])[f"r-{subject}"]


def test_old_done_and_superseded_jobs_go_and_the_rest_stays(engine):  # type: ignore[no-untyped-def]
    gone = {job(engine, outbox.DONE), job(engine, outbox.SUPERSEDED)}
    kept = {job(engine, outbox.PENDING), job(engine, outbox.RUNNING), job(engine, outbox.DEAD),
            job(engine, outbox.DONE, at=NOW - timedelta(days=1)),
            job(engine, outbox.SUPERSEDED, at=BEFORE + timedelta(seconds=1))}
    assert outbox.prune(engine, BEFORE) == 2
    assert left(engine) == kept and not gone & left(engine)


def test_the_newest_job_stays_so_its_id_is_never_handed_out_again(engine):  # type: ignore[no-untyped-def]
    ids = [job(engine, outbox.DONE) for _ in range(3)]
    assert outbox.prune(engine, BEFORE) == 2
    assert left(engine) == {ids[-1]}
    assert job(engine, outbox.PENDING, at=NOW) > ids[-1]


def test_an_open_requests_erasure_and_export_jobs_stay_until_it_closes(engine):  # type: ignore[no-untyped-def]
    asked = request(engine, "asked", rq.IN_PROGRESS)
    erasure = job(engine, outbox.DONE, kind="erasure", destination="partner:contact_centre",
                  subject="asked")
    export = job(engine, outbox.SUPERSEDED, kind="export", subject="asked")
    consent = job(engine, outbox.DONE, subject="asked")
    request(engine, "closed", rq.COMPLETED)
    closed = job(engine, outbox.DONE, kind="erasure", subject="closed")
    job(engine, outbox.PENDING, at=NOW, subject="someone else")
    outbox.prune(engine, BEFORE)
    assert {erasure, export} <= left(engine) and not {consent, closed} & left(engine)
    with engine.connect() as conn:  # the partner's acknowledgement still counts
        assert rq.sent(conn, [(asked, "partner:contact_centre")]) == {
            (asked.id, "partner:contact_centre")}
    with engine.begin() as conn:
        conn.execute(update(requests).where(requests.c.id == asked.id)
                     .values(status=rq.COMPLETED))
    outbox.prune(engine, BEFORE)
    assert not {erasure, export} & left(engine)


def test_more_jobs_than_a_batch_go_one_batch_per_transaction(engine):  # type: ignore[no-untyped-def]
    old = [job(engine, outbox.DONE, subject=f"s{i}", at=OLD + timedelta(minutes=i))
           for i in range(25)]
    newest = job(engine, outbox.PENDING, at=NOW)
    asked: list[int] = []

    def go_on() -> bool:
        asked.append(len(left(engine)))  # each batch was committed before the next
        return True

    assert outbox.prune(engine, BEFORE, batch=10, go_on=go_on) == 25
    assert left(engine) == {newest} and asked == [16, 6]
    assert sum(r[-1] for r in disclosed(engine)) == 25 and old


def test_a_caller_that_says_stop_leaves_the_rest_for_the_next_run(engine):  # type: ignore[no-untyped-def]
    old = [job(engine, outbox.DONE, subject=f"s{i}", at=OLD + timedelta(minutes=i))
           for i in range(25)]
    newest = job(engine, outbox.PENDING, at=NOW)
    assert outbox.prune(engine, BEFORE, batch=10, go_on=lambda: False) == 10
    assert left(engine) == {*old[10:], newest}  # the oldest went first
    assert outbox.prune(engine, BEFORE, batch=10) == 15
    assert left(engine) == {newest}


def test_what_done_jobs_sent_stays_per_person_destination_and_day(engine):  # type: ignore[no-untyped-def]
    day = datetime(OLD.year, OLD.month, OLD.day, tzinfo=UTC)
    morning, evening = day + timedelta(hours=8), day + timedelta(hours=20)
    job(engine, outbox.DONE, at=evening, sent="consent")
    job(engine, outbox.DONE, at=morning, sent="consent")
    job(engine, outbox.DONE, at=day + timedelta(hours=12), kind=outbox.RECORD,
        sent="city,firstname")
    job(engine, outbox.DONE, at=day + timedelta(days=1, hours=1), sent="consent")
    job(engine, outbox.DONE, at=morning, destination="hubspot")  # recorded no field names
    job(engine, outbox.SUPERSEDED, at=morning, sent="consent")  # sent nothing
    job(engine, outbox.PENDING, at=NOW)
    # One job per batch: the day's row is added to, not written twice.
    assert outbox.prune(engine, BEFORE, batch=1) == 6
    assert disclosed(engine) == [
        ("hubspot", day, "s1", "consent", "", morning, morning, 1),
        ("mailchimp", day, "s1", "consent", "consent", morning, evening, 2),
        ("mailchimp", day, "s1", "record", "city,firstname", day + timedelta(hours=12),
         day + timedelta(hours=12), 1),
        ("mailchimp", day + timedelta(days=1), "s1", "consent", "consent",
         day + timedelta(days=1, hours=1), day + timedelta(days=1, hours=1), 1)]
