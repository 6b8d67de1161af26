"""Claims are leases, on both backends: shared backlogs, expiry, heartbeats, late workers."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from core import outbox
from core.db import jobs, make_engine
from tests.conftest import make_database
from tests.timing import scaled

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)


def add(engine, subjects, *, at=T0, kind=outbox.CONSENT, destination="mailchimp"):  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        outbox.add(conn, at, [(kind, destination, s, at, None) for s in subjects])


def claim(engine, holder, now=T0, *, limit=100, lease=LEASE, kind=outbox.CONSENT):  # type: ignore[no-untyped-def]
    return outbox.claim(engine, "mailchimp", kind, limit=limit, holder=holder, lease=lease,
                        now=now)


def statuses(engine) -> dict[int, str]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return dict(conn.execute(select(jobs.c.id, jobs.c.status)).all())


def done(engine, c, now=T0) -> int:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        return outbox.finish(conn, c, [outbox.Outcome(outbox.DONE, tuple(j.id for j in c.jobs))],
                             now)


def test_a_claim_takes_the_due_jobs_and_leaves_the_rest(engine):  # type: ignore[no-untyped-def]
    add(engine, ["a", "b"])
    add(engine, ["c"], at=T0 + timedelta(minutes=5))
    c = claim(engine, "w1")
    assert c is not None and sorted(j.subject_id for j in c.jobs) == ["a", "b"]
    assert all(j.attempts == 1 for j in c.jobs)
    assert claim(engine, "w2") is None


def test_one_waiting_state_job_per_subject_and_destination(engine):  # type: ignore[no-untyped-def]
    add(engine, ["a"])
    add(engine, ["a", "a"])
    add(engine, ["a"], kind=outbox.RECORD)
    add(engine, ["a"], kind=outbox.RECORD)
    with engine.connect() as conn:
        kinds = sorted(conn.execute(select(jobs.c.kind)).scalars())
    assert kinds == ["consent", "record", "record"]  # values coalesce when claimed


def test_two_workers_on_one_backlog_never_claim_the_same_job(engine):  # type: ignore[no-untyped-def]
    add(engine, [f"s{i}" for i in range(400)])
    taken: dict[str, list[int]] = {}
    refused: list[int] = []

    def work(name: str) -> None:
        mine = taken.setdefault(name, [])
        while (c := claim(engine, name, limit=7)) is not None:
            mine += [j.id for j in c.jobs]
            refused.append(len(c.jobs) - done(engine, c))

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=scaled(120))
    everything = [i for ids in taken.values() for i in ids]
    assert len(everything) == len(set(everything)) == 400
    assert not any(refused)
    assert sum(1 for ids in taken.values() if ids) >= 2  # the backlog was really shared
    assert set(statuses(engine).values()) == {"done"}


def test_an_expired_lease_is_claimed_again_and_the_late_worker_cannot_finish(engine):  # type: ignore[no-untyped-def]
    add(engine, ["a", "b"])
    first = claim(engine, "dead-worker")
    assert first is not None
    assert claim(engine, "w2", T0 + LEASE - timedelta(seconds=1)) is None  # still leased
    second = claim(engine, "w2", T0 + LEASE + timedelta(seconds=1))
    assert second is not None and {j.id for j in second.jobs} == {j.id for j in first.jobs}
    assert all(j.attempts == 2 for j in second.jobs)
    assert done(engine, first) == 0  # the late worker's outcome is refused
    assert set(statuses(engine).values()) == {"running"}
    assert done(engine, second) == 2


def test_the_heartbeat_extends_the_leases_a_worker_holds(engine):  # type: ignore[no-untyped-def]
    add(engine, ["a"])
    held = claim(engine, "w1")
    assert held is not None
    extended = outbox.extend(engine, {held.token}, T0 + timedelta(seconds=25), lease=LEASE,
                             max_hold=timedelta(minutes=5))
    assert extended == 1
    assert claim(engine, "w2", T0 + timedelta(seconds=40)) is None
    assert claim(engine, "w2", T0 + timedelta(seconds=56)) is not None


def test_a_claim_its_thread_gave_up_on_is_not_extended(engine):  # type: ignore[no-untyped-def]
    # The worker lives and beats, but the thread that claimed could not record the outcome
    # (the database went away mid-batch) and moved on: the claim must run out, not be kept
    # alive by the process's heartbeat until max_hold.
    add(engine, ["a", "b"])
    abandoned = claim(engine, "w1", limit=1)
    working = claim(engine, "w1", T0 + timedelta(seconds=1), limit=1)
    assert abandoned is not None and working is not None
    assert outbox.extend(engine, {working.token}, T0 + timedelta(seconds=25), lease=LEASE,
                         max_hold=timedelta(minutes=5)) == 1
    retaken = claim(engine, "w2", T0 + LEASE + timedelta(seconds=1))
    assert retaken is not None and [j.id for j in retaken.jobs] == [abandoned.jobs[0].id]


def test_the_heartbeat_never_waits_for_a_claim_being_finished(tmp_path):  # type: ignore[no-untyped-def]
    # PostgreSQL: row locks (SQLite has one writer at a time, so no two writers to cross).
    # The outcome transaction updates its jobs row by row; a heartbeat that waited for
    # those rows could deadlock with it (seen in the backlog bench). It skips them
    # instead: they are being released.
    engine = make_engine(make_database("postgresql", tmp_path))
    add(engine, ["a", "b"])
    held = claim(engine, "w1")
    assert held is not None and len(held.jobs) == 2
    finishing = engine.connect()
    tx = finishing.begin()
    finishing.execute(jobs.update().where(jobs.c.id == held.jobs[0].id).values(sent="x"))
    extended: list[int] = []
    beat = threading.Thread(target=lambda: extended.append(outbox.extend(
        engine, {held.token}, T0 + timedelta(seconds=5), lease=LEASE,
        max_hold=timedelta(minutes=5))))
    beat.start()
    beat.join(timeout=scaled(10))
    try:
        assert not beat.is_alive(), "the heartbeat waited for a row being finished"
        assert extended == [1]
    finally:
        tx.rollback()
        finishing.close()
        beat.join()
        engine.dispose()


def test_a_claim_held_too_long_is_not_extended(engine):  # type: ignore[no-untyped-def]
    add(engine, ["a"])
    held = claim(engine, "stuck")
    assert held is not None
    later = T0 + timedelta(minutes=6)
    assert outbox.extend(engine, {held.token}, later, lease=LEASE,
                         max_hold=timedelta(minutes=5)) == 0


def test_a_subject_being_written_waits_but_a_stranded_job_holds_nothing_back(engine):  # type: ignore[no-untyped-def]
    add(engine, ["a"])
    first = claim(engine, "dead-worker", lease=timedelta(seconds=5))
    assert first is not None
    add(engine, ["a", "b"], at=T0 + timedelta(seconds=1))  # newer changes meanwhile
    meanwhile = claim(engine, "w2", T0 + timedelta(seconds=2))
    assert meanwhile is not None and [j.subject_id for j in meanwhile.jobs] == ["b"]
    after = claim(engine, "w2", T0 + timedelta(seconds=6))
    assert after is not None
    assert sorted(j.subject_id for j in after.jobs) == ["a", "a"]  # old and new, together
    assert list(after.by_subject()) == ["a"]


def test_a_retry_is_superseded_by_a_newer_job_waiting_for_the_same_subject(engine):  # type: ignore[no-untyped-def]
    add(engine, ["a", "b"])
    c = claim(engine, "w1")
    assert c is not None
    add(engine, ["a"], at=T0 + timedelta(seconds=1))
    retry = outbox.Outcome(outbox.PENDING, tuple(j.id for j in c.jobs), "http_503",
                           T0 + timedelta(seconds=30))
    with engine.begin() as conn:
        assert outbox.finish(conn, c, [retry], T0) == 2
    by_subject: dict[str, list[str]] = {}
    with engine.connect() as conn:
        for row in conn.execute(select(jobs.c.subject_id, jobs.c.status).order_by(jobs.c.id)):
            by_subject.setdefault(row.subject_id, []).append(row.status)
    assert by_subject == {"a": ["superseded", "pending"], "b": ["pending"]}


def test_due_destinations_include_expired_claims(engine):  # type: ignore[no-untyped-def]
    add(engine, ["a"])
    assert claim(engine, "dead-worker") is not None
    with engine.connect() as conn:
        assert outbox.due_destinations(conn, T0 + timedelta(seconds=5)) == set()
        assert outbox.due_destinations(conn, T0 + LEASE + timedelta(seconds=1)) == {"mailchimp"}


def test_the_dispatch_guard_lets_one_message_be_in_flight(engine):  # type: ignore[no-untyped-def]
    outbox.register(engine, ["mailchimp", "salesforce"])
    stale = timedelta(seconds=10)
    assert outbox.guard(engine, ["mailchimp"], T0, stale) == ["mailchimp"]
    assert outbox.guard(engine, ["mailchimp", "salesforce"], T0, stale) == ["salesforce"]
    assert outbox.guard(engine, ["mailchimp"], T0 + timedelta(seconds=11), stale) == [
        "mailchimp"]  # presumed lost
    outbox.unguard(engine, "mailchimp")
    assert outbox.guard(engine, ["mailchimp"], T0 + timedelta(seconds=12), stale) == [
        "mailchimp"]


def test_outcomes_are_recorded_per_group(engine):  # type: ignore[no-untyped-def]
    add(engine, ["a", "b", "c"])
    c = claim(engine, "w1")
    assert c is not None
    ids = {j.subject_id: j.id for j in c.jobs}
    with engine.begin() as conn:
        outbox.finish(conn, c, [outbox.Outcome(outbox.DONE, (ids["a"],), note="unsubscribed"),
                                outbox.Outcome(outbox.FAILED, (ids["b"],), "http_400"),
                                outbox.Outcome(outbox.DEAD, (ids["c"],), "http_503")], T0)
        rows = {r.subject_id: r for r in conn.execute(select(jobs))}
    assert [rows[s].status for s in "abc"] == ["done", "failed", "dead"]
    assert rows["b"].last_error_class == "http_400"
    assert all(r.claim_token is None and r.lease_until is None for r in rows.values())
