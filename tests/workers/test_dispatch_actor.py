"""The dispatch actor on Dramatiq's StubBroker and a real Worker, over a real Deliverer and
a SQLite outbox: the guard, the next batch's message, the rate gate, retries in the
database, and a broker refusing a send. Only the vendor is a fake."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Middleware, MiddlewareError
from sqlalchemy import select

from core import outbox
from core.crypto import Keyring
from core.db import dispatch, jobs, make_engine
from core.delivery import Deliverer, Policy
from core.errors import Throttled, TransientError
from core.model import DestinationSubject, Outcome
from tests.conftest import make_database
from tests.core.conftest import KEK, SECRET
from workers.actors import LATER_MARGIN_MS, Dispatcher, register
from workers.metrics import Metrics

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
DEST, QUEUE = "mailchimp", "dispatch-test"
STALE = timedelta(seconds=60)
BACKOFF = 60.0


class Vendor:
    """The destination: takes ``batch_size`` subjects a call, raises what ``errors`` holds,
    runs ``during`` inside each call, and notes what was sent when it was called."""

    batch_size = 50

    def __init__(self, sent: Callable[[], int]) -> None:
        self.name, self.sent = DEST, sent
        self.calls: list[tuple[int, int]] = []  # (subjects, messages sent before the call)
        self.errors: list[Exception] = []
        self.during: Callable[[], object] = lambda: None

    def apply_consent(self, subjects: Sequence[DestinationSubject]) -> list[Outcome]:
        self.calls.append((len(subjects), self.sent()))
        self.during()
        if self.errors:
            raise self.errors.pop(0)
        return [Outcome(s.subject_id, note="written") for s in subjects]

    def check(self) -> None:
        pass


class Unreachable(MiddlewareError):
    """The broker refusing a send (a middleware's is the error Dramatiq lets out of a hook)."""


class Recorder(Middleware):
    """What the broker was given, and the most messages one destination had waiting."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, int | None]] = []  # (queue, delay ms)
        self.waiting = self.most_waiting = 0
        self.refuse = False
        self._lock = threading.Lock()

    def before_enqueue(self, broker: dramatiq.Broker, message: object, delay: int | None) -> None:
        if self.refuse:
            raise Unreachable("broker unreachable")

    def after_enqueue(self, broker: dramatiq.Broker, message: dramatiq.Message,  # type: ignore[type-arg]
                      delay: int | None) -> None:
        with self._lock:
            self.sent.append((message.queue_name, delay))
            if delay is None:
                self.waiting += 1
                self.most_waiting = max(self.most_waiting, self.waiting)

    def before_process_message(self, broker: dramatiq.Broker, message: object) -> None:
        with self._lock:
            self.waiting -= 1


@dataclass
class World:
    deliverer: Deliverer
    dispatcher: Dispatcher
    metrics: Metrics
    broker: StubBroker
    recorder: Recorder
    vendor: Vendor
    clock: list[datetime]
    gate_waits: list[float] = field(default_factory=list)  # answers of the rate gate, in turn
    gate_calls: int = 0
    worker: dramatiq.Worker | None = None

    def gate(self, destination: str) -> float:
        self.gate_calls += 1
        return self.gate_waits.pop(0) if self.gate_waits else 0.0

    def add(self, n: int) -> None:
        with self.deliverer.engine.begin() as conn:
            outbox.add(conn, T0, [(outbox.CONSENT, DEST, f"s{i}", T0 - timedelta(seconds=2),
                                   None) for i in range(n)])

    def drain(self) -> None:
        """Start the worker, and wait until the queue and the worker have nothing left."""
        if self.worker is None:
            self.worker = dramatiq.Worker(self.broker, worker_threads=1, worker_timeout=20)
            self.worker.start()
        self.broker.join(QUEUE)
        self.worker.join()

    def jobs(self) -> list[tuple[str, int, datetime | None, str | None]]:
        with self.deliverer.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(select(
                jobs.c.status, jobs.c.attempts, jobs.c.next_attempt_at,
                jobs.c.last_error_class).order_by(jobs.c.id))]

    def guarded_since(self) -> datetime | None:
        with self.deliverer.engine.connect() as conn:
            at: datetime | None = conn.execute(select(dispatch.c.enqueued_at).where(
                dispatch.c.destination == DEST)).scalar_one()
        return at

    def sample(self, name: str, **labels: str) -> float | None:
        return self.metrics.registry.get_sample_value(name, labels)


@pytest.fixture
def world(tmp_path) -> Iterator[World]:  # type: ignore[no-untyped-def]
    engine = make_engine(make_database("sqlite", tmp_path))
    outbox.register(engine, [DEST])
    clock = [T0]
    broker, recorder = StubBroker(), Recorder()
    broker.add_middleware(recorder)
    vendor = Vendor(lambda: len(recorder.sent))
    deliverer = Deliverer(engine, {DEST: vendor}, lambda n, r: BACKOFF, lambda: clock[0],
                          holder="worker:test", keyring=Keyring(SECRET, [KEK]),
                          policy=Policy())
    metrics = Metrics()
    dispatcher = Dispatcher(engine, lambda: clock[0], metrics, stale_after=STALE)
    w = World(deliverer, dispatcher, metrics, broker, recorder, vendor, clock)
    register(broker, deliverer, metrics, dispatcher, queue=QUEUE, time_limit_ms=10_000,
             gate=w.gate)
    yield w
    if w.worker is not None:
        w.worker.stop()
    engine.dispose()


def test_a_message_clears_the_guard_delivers_the_due_jobs_and_counts_them(world: World) -> None:
    world.add(2)
    world.dispatcher([DEST])
    assert world.guarded_since() == T0
    world.drain()
    assert world.guarded_since() is None
    assert [status for status, *_ in world.jobs()] == ["done", "done"]
    assert world.vendor.calls == [(2, 1)]
    assert world.sample("privasync_job_runs_total", destination=DEST, outcome="done") == 2
    assert world.sample("privasync_vendor_batches_total", destination=DEST, result="ok") == 1
    assert world.sample("privasync_propagation_seconds_count", destination=DEST) == 2
    assert world.sample("privasync_propagation_seconds_sum", destination=DEST) == 4.0


def test_a_full_batch_sends_the_next_message_before_the_vendor_call(world: World) -> None:
    world.vendor.batch_size = 3
    world.add(7)
    world.dispatcher([DEST])
    world.dispatcher([DEST])  # a second scheduler tick: one message is waiting already
    assert world.recorder.sent == [(QUEUE, None)]
    # The scheduler also ticks during every vendor call: refused while the next batch's
    # message waits; after the last batch (not full) none waits, so it sends one more.
    world.vendor.during = lambda: world.dispatcher([DEST])
    world.drain()
    assert world.vendor.calls == [(3, 2), (3, 3), (1, 3)]
    assert len(world.recorder.sent) == 4 and world.recorder.most_waiting == 1
    assert {status for status, *_ in world.jobs()} == {"done"}
    assert world.sample("privasync_job_runs_total", destination=DEST, outcome="done") == 7
    assert world.guarded_since() is None


def test_a_rate_limit_claims_nothing_and_sends_the_message_again_delayed(world: World) -> None:
    wait = 0.05
    world.gate_waits = [wait]
    world.add(2)
    gate_calls_at_vendor: list[int] = []
    world.vendor.during = lambda: gate_calls_at_vendor.append(world.gate_calls)
    world.dispatcher([DEST])
    world.drain()
    delay = int(wait * 1000) + LATER_MARGIN_MS
    assert world.recorder.sent == [(QUEUE, None), (f"{QUEUE}.DQ", delay), (QUEUE, None)]
    assert gate_calls_at_vendor == [2]  # claimed only once the limit freed
    assert world.sample("privasync_rate_limited_total", destination=DEST) == 1
    assert [status for status, *_ in world.jobs()] == ["done", "done"]
    assert [attempts for _, attempts, *_ in world.jobs()] == [1, 1]


def test_a_retryable_vendor_error_is_rescheduled_in_the_database_not_by_the_broker(
        world: World) -> None:
    world.add(1)
    world.vendor.errors = [TransientError("HTTP 503", error_class="http_503")]
    world.dispatcher([DEST])
    world.drain()
    assert world.jobs() == [("pending", 1, T0 + timedelta(seconds=BACKOFF), "http_503")]
    assert world.sample("privasync_job_runs_total", destination=DEST, outcome="pending") == 1
    assert world.sample("privasync_vendor_batches_total", destination=DEST, result="error") == 1
    # Processed once: not redelivered, not dead-lettered, no retry on the delay queue.
    assert len(world.vendor.calls) == 1
    assert world.recorder.sent == [(QUEUE, None)] and world.broker.dead_letters == []
    assert world.broker.get_actor("privasync_dispatch").options["max_retries"] == 0


def test_a_refused_send_is_counted_and_the_next_tick_after_stale_after_sends_again(
        world: World) -> None:
    world.recorder.refuse = True
    world.dispatcher([DEST])  # raises nothing
    assert world.sample("privasync_enqueue_failures_total") == 1
    assert world.guarded_since() == T0 and world.recorder.sent == []
    world.recorder.refuse = False
    world.clock[0] = T0 + STALE - timedelta(seconds=1)
    world.dispatcher([DEST])
    assert world.recorder.sent == []  # presumed still in flight
    world.clock[0] = T0 + STALE + timedelta(seconds=1)
    world.dispatcher([DEST])
    assert world.recorder.sent == [(QUEUE, None)]
    assert world.broker.queues[QUEUE].qsize() == 1
    assert world.guarded_since() == world.clock[0]


def test_a_call_held_back_by_a_daily_allocation_at_its_reserve_counts_as_rate_limited(
        world: World) -> None:
    world.add(1)
    world.vendor.errors = [Throttled("salesforce: the daily API allocation is down to its "
                                     "reserve", retry_after=0.05, error_class="api_reserve")]
    world.dispatcher([DEST])
    world.drain()
    assert world.sample("privasync_rate_limited_total", destination=DEST) == 1
    assert world.sample("privasync_vendor_batches_total", destination=DEST,
                        result="throttled") == 1
    assert world.jobs() == [("pending", 0, T0 + timedelta(seconds=0.05), "api_reserve")]
    assert (f"{QUEUE}.DQ", 50 + LATER_MARGIN_MS) in world.recorder.sent  # sent again, later
