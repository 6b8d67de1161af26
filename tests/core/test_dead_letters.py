"""Dead letters in the core, on both backends: when a job is given up (permanent error,
its destination's attempts or max age), what it keeps, and what a retry does with it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from core import deadletters, outbox
from core import subject_requests as rq
from core.db import jobs, ledger, ledger_pending, subjects
from core.delivery import Budget, Deliverer, Policy
from core.dsr import ERASE
from core.errors import PermanentError, Throttled, TransientError
from core.fulfil import Fulfiller
from core.model import (
    Channel,
    ConsentChange,
    ConsentChanged,
    ConsentStatus,
    DestinationRecord,
    DestinationSubject,
    ErasureReceipt,
    ErasureStatus,
    EventMeta,
    FieldValue,
    Outcome,
    PersonAt,
    RecordChanged,
    RequestKind,
    RequestReceived,
    SubjectHint,
)
from tests.core.conftest import Core, make_core

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


class Flaky:
    """A destination answering with the errors queued in ``errors`` (one per call), then
    success; it remembers what it was sent."""

    batch_size = record_batch_size = erase_batch_size = 50

    def __init__(self, name: str) -> None:
        self.name = name
        self.errors: list[Exception] = []
        self.consents: list[str] = []
        self.fields: list[dict[str, str | None]] = []
        self.erased: list[str] = []

    def _call(self) -> None:
        if self.errors:
            raise self.errors.pop(0)

    def apply_consent(self, subjects: Sequence[DestinationSubject]) -> list[Outcome]:
        self._call()
        self.consents += [s.subject_id for s in subjects]
        return [Outcome(s.subject_id, note="written") for s in subjects]

    def push_fields(self, records: Sequence[DestinationRecord]) -> list[Outcome]:
        self._call()
        self.fields += [dict(r.fields) for r in records]
        return [Outcome(r.subject_id, note="written") for r in records]

    def erase(self, people: Sequence[PersonAt]) -> list[ErasureReceipt]:
        self._call()
        self.erased += [p.request_id for p in people]
        return [ErasureReceipt(p.subject_id, ErasureStatus.DONE, vendor_status=204,
                               verified="read back: 0 found", records=1) for p in people]


class World:
    def __init__(self, engine: Engine, policy: Policy) -> None:
        self.clock = [T0]
        self.engine = engine
        self.core: Core = make_core(engine, clock=lambda: self.clock[0],
                                    erasure=("hubspot",))
        self.sf, self.hs = Flaky("salesforce"), Flaky("hubspot")
        self.deliverer = Deliverer(engine, {"salesforce": self.sf, "hubspot": self.hs},
                                   lambda n, r: max(r or 0.0, 1.0), lambda: self.clock[0],
                                   holder="worker:test", policy=policy,
                                   keyring=self.core.keyring, mappings=self.core.mappings,
                                   record_destinations={"hubspot": self.hs})
        Fulfiller(self.deliverer, self.core.keyring, erasure={"hubspot": self.hs}, exports={},
                  notifier=None, ack_within={}, export_keep=timedelta(days=30))

    def event(self, ev: object) -> None:
        self.core.store([ev], self.clock[0])  # type: ignore[list-item]
        self.core.apply()

    def withdraw(self, email: str, name: str) -> None:
        self.event(ConsentChanged(EventMeta("mailchimp", name, self.clock[0]),
                                  SubjectHint(email=email),
                                  (ConsentChange("offers", Channel.EMAIL,
                                                 ConsentStatus.WITHDRAWN),)))

    def deliver(self, destination: str, *, later: float = 2.0) -> None:
        self.deliverer.run(destination)
        self.core.apply()
        self.clock[0] += timedelta(seconds=later)

    def job(self, destination: str, kind: str = outbox.CONSENT) -> deadletters.Job:
        with self.engine.connect() as conn:
            found = [j for j in deadletters.listing(conn, status=None, destination=destination)
                     if j.kind == kind]
            found += [j for j in deadletters.listing(conn, status=outbox.DONE,
                                                     destination=destination) if j.kind == kind]
        assert found, f"no {kind} job for {destination}"
        return found[0]


def test_a_permanent_error_makes_the_job_dead_at_once_with_its_error_class(engine):  # type: ignore[no-untyped-def]
    world = World(engine, Policy(max_attempts=5))
    world.withdraw("ada@example.org", "w1")
    world.sf.errors = [PermanentError("composite/sobjects: HTTP 400", error_class="http_400")]
    world.deliver("salesforce")
    job = world.job("salesforce")
    assert (job.status, job.last_error_class, job.attempts) == ("dead", "http_400", 1)
    assert job.note == "permanent error" and job.finished_at is not None
    assert job.next_attempt_at is None and job.last_attempt_at == T0
    with engine.connect() as conn:
        assert deadletters.counts(conn) == {"salesforce": 1}


def test_attempts_are_counted_against_each_destinations_own_budget(engine):  # type: ignore[no-untyped-def]
    policy = Policy(max_attempts=4, budgets={"salesforce": Budget(2, timedelta(days=1))})
    world = World(engine, policy)
    world.withdraw("ada@example.org", "w1")
    for _ in range(3):
        world.sf.errors.append(TransientError("HTTP 500", error_class="http_500"))
        world.hs.errors.append(TransientError("HTTP 500", error_class="http_500"))
        world.deliver("salesforce")
        world.deliver("hubspot")
    sf, hs = world.job("salesforce"), world.job("hubspot")
    assert (sf.status, sf.attempts, sf.note) == ("dead", 2, "attempts exhausted")
    assert (hs.status, hs.attempts) == ("pending", 3)  # the default budget: 4
    world.hs.errors.append(TransientError("HTTP 500", error_class="http_500"))
    world.deliver("hubspot")
    assert (world.job("hubspot").status, world.job("hubspot").attempts) == ("dead", 4)


def test_a_failure_past_the_max_age_is_dead_but_a_throttled_call_never_is(engine):  # type: ignore[no-untyped-def]
    world = World(engine, Policy(max_attempts=3, max_age=timedelta(hours=1)))
    world.withdraw("ada@example.org", "w1")
    for _ in range(6):  # six 429s over two hours: no attempt spent, never given up
        world.sf.errors.append(Throttled("HTTP 429", retry_after=1200.0))
        world.deliver("salesforce", later=1200)
    job = world.job("salesforce")
    assert (job.status, job.attempts, job.last_error_class) == ("pending", 0, "http_429")
    world.sf.errors.append(TransientError("HTTP 503", error_class="http_503"))
    world.deliver("salesforce")
    job = world.job("salesforce")
    assert (job.status, job.attempts, job.note) == ("dead", 1, "past its max age")


def test_a_429_costs_no_attempt_even_with_a_budget_of_one(engine):  # type: ignore[no-untyped-def]
    world = World(engine, Policy(max_attempts=1))
    world.withdraw("ada@example.org", "w1")
    for _ in range(3):
        world.sf.errors.append(Throttled("HTTP 429", retry_after=5.0))
        world.deliver("salesforce", later=10)
        job = world.job("salesforce")
        assert (job.status, job.attempts) == ("pending", 0)
    world.deliver("salesforce")
    assert world.job("salesforce").status == "done" and len(world.sf.consents) == 1


def test_a_retry_sends_the_dead_job_back_and_it_delivers_once_the_vendor_recovers(
        engine):  # type: ignore[no-untyped-def]
    world = World(engine, Policy(max_attempts=2, max_age=timedelta(hours=1)))
    world.withdraw("ada@example.org", "w1")
    world.sf.errors = [PermanentError("HTTP 400", error_class="http_400")]
    world.deliver("salesforce")
    dead = world.job("salesforce")
    assert dead.status == "dead" and world.sf.consents == []
    world.clock[0] += timedelta(hours=3)  # the max age counts again from the retry
    done = deadletters.retry(engine, [dead.id, 999_999], world.clock[0], actor="ops-bot")
    assert done.retried == [dead.id] and done.not_dead == [999_999]
    job = world.job("salesforce")
    assert (job.status, job.attempts, job.retried_at) == ("pending", 0, world.clock[0])
    assert job.next_attempt_at == world.clock[0] and job.note == "retried by ops-bot"
    world.sf.errors = [TransientError("HTTP 500", error_class="http_500")]
    world.deliver("salesforce")  # three hours after it was queued, but just retried
    assert (world.job("salesforce").status, world.job("salesforce").attempts) == ("pending", 1)
    world.deliver("salesforce")
    assert world.job("salesforce").status == "done" and len(world.sf.consents) == 1
    with engine.connect() as conn:  # chained by the applier's tick, or still waiting
        retried = [json.loads(r.detail) for table in (ledger, ledger_pending)
                   for r in conn.execute(select(table.c.detail)
                                         .where(table.c.kind == "jobs.retried"))]
    assert retried == [{"actor": "ops-bot", "retried": [dead.id], "superseded": {},
                        "destinations": ["salesforce"]}]
    assert deadletters.retry(engine, [dead.id], world.clock[0], actor="ops-bot").not_dead \
        == [dead.id]


def test_a_dead_state_job_whose_subject_has_one_waiting_is_superseded_by_it(engine):  # type: ignore[no-untyped-def]
    world = World(engine, Policy(max_attempts=1))
    world.withdraw("ada@example.org", "w1")
    world.sf.errors = [PermanentError("HTTP 400", error_class="http_400")]
    world.deliver("salesforce")
    dead = world.job("salesforce")
    world.withdraw("ada@example.org", "w2")  # a newer change: a new job waits
    world.event(ConsentChanged(EventMeta("mailchimp", "w3", world.clock[0]),
                               SubjectHint(email="ada@example.org"),
                               (ConsentChange("product_news", Channel.EMAIL,
                                              ConsentStatus.WITHDRAWN),)))
    done = deadletters.retry_dead(engine, world.clock[0], actor="cli")
    assert done.retried == [] and done.superseded == {
        dead.id: "a waiting job will send the current state"}
    with engine.connect() as conn:
        assert conn.execute(select(jobs.c.status).where(jobs.c.id == dead.id)).scalar_one() \
            == "superseded"
        assert deadletters.counts(conn) == {}


def test_a_retried_record_job_never_sends_a_value_older_than_one_delivered_since(
        engine):  # type: ignore[no-untyped-def]
    world = World(engine, Policy(max_attempts=1))

    def edit(name: str, minute: int, **fields: str) -> None:
        world.event(RecordChanged(EventMeta("salesforce", name, T0 + timedelta(minutes=minute)),
                                  SubjectHint(email="ada@example.org"), tuple(
            (f, FieldValue(v, T0 + timedelta(minutes=minute))) for f, v in fields.items())))

    edit("e1", 1, date_of_birth="1990-04-01", city="Utrecht", customer_since="2024-01-01")
    world.hs.errors = [PermanentError("HTTP 400", error_class="http_400")]
    world.deliver("hubspot")
    dead = world.job("hubspot", outbox.RECORD)
    assert dead.status == "dead"
    with engine.connect() as conn:
        assert conn.execute(select(jobs.c.payload).where(jobs.c.id == dead.id)).scalar_one()
    edit("e2", 2, date_of_birth="1991-05-02")
    world.deliver("hubspot")
    assert world.hs.fields == [{"date_of_birth": "1991-05-02"}]
    assert deadletters.retry(engine, [dead.id], world.clock[0], actor="cli").retried == \
        [dead.id]
    world.deliver("hubspot")
    # The city is still the newest; the old date of birth is not sent back over the new one.
    assert world.hs.fields[1:] == [{"city": "Utrecht", "customer_since": "2024-01-01"}]


def test_a_dead_erasure_job_retried_puts_its_request_back_to_pending(engine):  # type: ignore[no-untyped-def]
    world = World(engine, Policy(max_attempts=3))
    world.withdraw("forget.me@example.org", "w1")
    world.deliver("hubspot")
    request_id = str(uuid.uuid4())
    world.hs.errors = [PermanentError("gdpr delete: HTTP 400", error_class="http_400")]
    world.event(RequestReceived(EventMeta("admin", "r1", world.clock[0], kind="test"),
                                SubjectHint(email="forget.me@example.org"),
                                RequestKind.ERASURE, request_id, actor="cli"))
    world.deliver("hubspot")

    def at_hubspot() -> str:
        with engine.connect() as conn:
            found = rq.get(conn, request_id)
        assert found is not None
        return {d.name: d.status for d in found.destinations}["hubspot"]

    dead = world.job("hubspot", ERASE)
    assert dead.status == "dead" and at_hubspot() == "failed"
    done = deadletters.retry(engine, [dead.id], world.clock[0], actor="cli")
    assert done.retried == [dead.id] and at_hubspot() == "pending"
    world.deliver("hubspot")
    assert world.hs.erased == [request_id] and at_hubspot() == "done"


def test_a_dead_job_of_an_erased_subject_is_never_sent_back(engine):  # type: ignore[no-untyped-def]
    world = World(engine, Policy(max_attempts=1))
    world.withdraw("gone@example.org", "w1")
    world.sf.errors = [PermanentError("HTTP 400", error_class="http_400")]
    world.deliver("salesforce")
    dead = world.job("salesforce")
    assert dead.status == "dead"
    with engine.begin() as conn:
        conn.execute(update(subjects).values(erased_at=world.clock[0]))
    done = deadletters.retry(engine, [dead.id], world.clock[0], actor="cli")
    assert done.superseded == {dead.id: "subject erased"} and done.retried == []


def test_erasing_a_person_supersedes_their_dead_jobs_and_drops_their_values(engine):  # type: ignore[no-untyped-def]
    world = World(engine, Policy(max_attempts=1))
    world.event(RecordChanged(EventMeta("salesforce", "e1", T0), SubjectHint(
        email="gone@example.org"), (("date_of_birth", FieldValue("1990-04-01", T0)),)))
    world.hs.errors = [PermanentError("HTTP 400", error_class="http_400")]
    world.deliver("hubspot")
    dead = world.job("hubspot", outbox.RECORD)
    assert dead.status == "dead"
    world.event(RequestReceived(EventMeta("admin", "r1", world.clock[0], kind="test"),
                                SubjectHint(email="gone@example.org"), RequestKind.ERASURE,
                                str(uuid.uuid4()), actor="cli"))
    world.deliver("hubspot")
    world.core.apply()
    with engine.connect() as conn:
        row = conn.execute(select(jobs.c.status, jobs.c.note, jobs.c.payload)
                           .where(jobs.c.id == dead.id)).one()
        erased = conn.execute(select(subjects.c.erased_at)).scalar_one()
    assert erased is not None
    assert (row.status, row.note, row.payload) == ("superseded", "subject erased", None)
