"""The applier as a set-based, leased, fault-tolerant writer, on both backends."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import event, select

from core import inbox, ledger
from core.db import consents, jobs
from core.db import inbox as inbox_table
from core.errors import TransientError
from core.model import (
    CanonicalEvent,
    Channel,
    ConsentChange,
    ConsentChanged,
    ConsentStatus,
    EventMeta,
    SubjectHint,
    SubjectSeen,
    SystemRef,
)
from tests.core.conftest import Core, at, make_core

W = ConsentStatus.WITHDRAWN
NOW = datetime(2026, 11, 1, 13, 0, tzinfo=UTC)


def optout(i: int, minute: int = 1) -> ConsentChanged:
    return ConsentChanged(EventMeta("hubspot", f"o{i}-{minute}", at(minute)),
                          SubjectHint(ref=SystemRef("hubspot", f"contact:{i}")),
                          (ConsentChange("product_news", Channel.EMAIL, W),
                           ConsentChange("offers", Channel.EMAIL, W)))


def known_people(core: Core, n: int) -> None:
    core.accept([SubjectSeen(EventMeta("hubspot", f"seen{i}", at(0)),
                             SubjectHint(ref=SystemRef("hubspot", f"contact:{i}"),
                                         email=f"person{i}@example.org")) for i in range(n)],
                NOW)


def statements_of_one_tick(core: Core) -> list[str]:
    """The SQL statements one applier tick sends (transaction control left out)."""
    seen: list[str] = []

    def hook(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.split()[0] not in ("BEGIN", "COMMIT", "ROLLBACK"):
            seen.append(statement.split()[0])

    event.listen(core.engine, "before_cursor_execute", hook)
    try:
        report = core.applier.tick()
    finally:
        event.remove(core.engine, "before_cursor_execute", hook)
    assert report is not None and report.events == 100
    return seen


def test_a_batch_of_100_opt_outs_is_applied_in_under_20_statements(engine, core):  # type: ignore[no-untyped-def]
    known_people(core, 100)
    core.apply()  # the lease is taken; chained entries settled
    core.store([optout(i) for i in range(100)], NOW)
    statements = statements_of_one_tick(core)
    with engine.connect() as conn:
        assert conn.execute(select(consents.c.status).distinct()).scalars().all() == ["withdrawn"]
        assert len(conn.execute(select(jobs.c.id).where(
            jobs.c.status == "pending")).all()) == 300
    assert len(statements) < 20, statements


class Boom(RuntimeError):
    pass


def test_a_row_that_keeps_failing_is_set_aside_and_the_others_apply(engine):  # type: ignore[no-untyped-def]
    clock = [NOW]
    core = make_core(engine, clock=lambda: clock[0])

    def explode(body: bytes, received_at: datetime) -> Sequence[CanonicalEvent]:
        raise Boom("a parser bug")

    core.applier.parsers["broken"] = explode
    with engine.begin() as conn:
        inbox.store(conn, source="broken", sealed=core.keyring.seal(b"[]"), key="k1",
                    received_at=NOW, events=3)
    core.store([optout(1)], NOW)
    known_people(core, 2)
    with engine.connect() as conn:
        row = conn.execute(select(inbox_table).where(inbox_table.c.source == "broken")).one()
        assert (row.attempts, row.last_error, row.applied_at) == (1, "Boom", None)
        assert inbox.backlog(conn).rows == 1
    for _ in range(core.applier.policy.max_attempts):
        clock[0] += timedelta(minutes=10)
        core.apply()
    with engine.connect() as conn:
        row = conn.execute(select(inbox_table).where(inbox_table.c.source == "broken")).one()
        backlog = inbox.backlog(conn)
    assert row.applied_at is not None and row.last_error == "error:Boom"
    assert (backlog.rows, backlog.failed) == (0, 1)


def test_a_row_keeps_its_body_while_it_is_retried_and_loses_it_when_set_aside(engine):  # type: ignore[no-untyped-def]
    """A failed row's delivery is personal data like an applied one's: nothing replays a
    row given up on, so only its reason stays, not its body (until prune, days later)."""
    clock = [NOW]
    core = make_core(engine, clock=lambda: clock[0])

    def explode(body: bytes, received_at: datetime) -> Sequence[CanonicalEvent]:
        raise Boom("a parser bug")

    core.applier.parsers["broken"] = explode
    with engine.begin() as conn:
        inbox.store(conn, source="broken", sealed=core.keyring.seal(b"[]"), key="k1",
                    received_at=NOW, events=1)
        inbox.store(conn, source="test", sealed=core.keyring.seal(b"not json"), key="k2",
                    received_at=NOW, events=1)
    core.apply()
    with engine.connect() as conn:
        bodies = dict(conn.execute(select(inbox_table.c.source, inbox_table.c.body)).all())
    assert bodies["broken"] is not None  # tried again later: it still needs its body
    assert bodies["test"] is None  # unparseable: given up on at once
    for _ in range(core.applier.policy.max_attempts):
        clock[0] += timedelta(minutes=10)
        core.apply()
    with engine.connect() as conn:
        rows = conn.execute(select(inbox_table.c.last_error, inbox_table.c.body)).all()
    assert sorted((r.last_error, r.body) for r in rows) == [("error:Boom", None),
                                                            ("unparseable", None)]


def test_housekeeping_clears_the_body_an_older_release_kept_on_a_row_set_aside(engine, core):  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        inbox.store(conn, source="test", sealed=core.keyring.seal(b"[]"), key="k",
                    received_at=NOW, events=1)
        conn.execute(inbox_table.update().values(applied_at=NOW, last_error="error:Boom"))
        assert inbox.prune(conn, NOW - timedelta(days=3)) == 0
        row = conn.execute(select(inbox_table.c.last_error, inbox_table.c.body)).one()
    assert (row.last_error, row.body) == ("error:Boom", None)


def test_a_row_sealed_under_another_secret_is_set_aside_as_unreadable(engine, core):  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        inbox.store(conn, source="test", sealed=b"not a fernet token", key="k",
                    received_at=NOW, events=1)
    report = core.apply()
    assert report.failed_rows == 1 and report.outcomes == Counter({("test", "failed"): 1})


class Directory:
    """A system that knows its contacts' addresses (HubSpot's batch read, in the app)."""

    def __init__(self, emails: dict[SystemRef, str]) -> None:
        self.emails = emails
        self.calls = 0
        self.down = False

    def lookup_emails(self, refs: Sequence[SystemRef]) -> Mapping[SystemRef, str]:
        self.calls += 1
        if self.down:
            raise TransientError("hubspot: HTTP 503", error_class="http_503")
        return {r: self.emails[r] for r in refs if r in self.emails}


def test_unknown_references_are_looked_up_once_per_batch_outside_the_request(engine):  # type: ignore[no-untyped-def]
    clock = [NOW]
    core = make_core(engine, clock=lambda: clock[0])
    directory = Directory({SystemRef("hubspot", f"contact:{i}"): f"p{i}@example.org"
                           for i in range(5)})
    core.applier.resolvers["hubspot"] = directory
    directory.down = True
    core.store([optout(i) for i in range(6)], NOW)
    report = core.apply()
    assert report.deferred == 1 and not report.outcomes  # waits for HubSpot to answer
    directory.down = False
    clock[0] += timedelta(minutes=1)
    report = core.apply()
    assert report.outcomes == Counter({("hubspot", "applied"): 5,
                                       ("hubspot", "unknown_subject"): 1})
    assert directory.calls == 2
    with engine.connect() as conn:
        assert core.identity.by_email(conn, "p3@example.org") is not None


def test_only_the_lease_holder_applies_and_another_takes_over_when_it_lapses(engine):  # type: ignore[no-untyped-def]
    clock = [NOW]
    first = make_core(engine, holder="applier:one", clock=lambda: clock[0])
    second = make_core(engine, holder="applier:two", clock=lambda: clock[0])
    first.store([optout(1)], NOW)
    assert first.applier.tick() is not None
    second.store([optout(2)], NOW)
    assert second.applier.tick() is None  # the first leads
    clock[0] += first.applier.policy.lease + timedelta(seconds=1)
    assert second.applier.tick() is not None
    assert first.applier.tick() is None
    with engine.connect() as conn:
        assert ledger.verify(conn).ok
        assert inbox.backlog(conn).rows == 0
