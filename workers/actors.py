"""The Dramatiq actor: one message per destination and tick, naming nothing personal.

The message says "destination D may have due jobs". The actor clears D's
dispatch guard, then the deliverer claims D's due jobs as a batch under a
lease, calls the vendor once and records the outcomes; if it took a full
batch, the next message is sent before the vendor call, so that another worker
takes the next batch meanwhile. Retries live in the database
(``jobs.next_attempt_at``), so a failed attempt never rides on a broker retry.

A vendor's rate limit is asked first (``gate``): while it says "not now", nothing is
claimed and the next message is sent delayed until it frees; jobs a limit deferred
mid-run get one too, so the work resumes when the limit allows, not at a later tick.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

import dramatiq
import structlog
from sqlalchemy.engine import Engine

from core import outbox
from core.delivery import Deliverer
from workers.metrics import Metrics

log = structlog.get_logger("privasync.worker")


class Dispatcher:
    """Sends dispatch messages, at most one in flight per destination: a guard row in the
    database (it works on any broker) is set before sending and cleared by the actor; one
    older than ``stale_after`` is presumed lost, and sent again."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime], metrics: Metrics, *,
                 stale_after: timedelta) -> None:
        self.engine, self.clock, self.metrics = engine, clock, metrics
        self.stale_after = stale_after
        self.send: Callable[[str], Any] | None = None
        self.send_later: Callable[[str, int], Any] | None = None

    def __call__(self, destinations: Iterable[str]) -> None:
        """A refusal is counted, not fatal: the jobs are in the database and the
        scheduler's next tick sends again."""
        assert self.send is not None, "register() the actor first"
        for destination in outbox.guard(self.engine, destinations, self.clock(),
                                        self.stale_after):
            try:
                self.send(destination)
            except Exception as exc:  # noqa: BLE001 - the outbox is the safety net
                self.metrics.enqueue_failures.inc()
                log.warning("broker.enqueue_failed", destination=destination,
                            error=type(exc).__name__)


    def later(self, destination: str, seconds: float) -> None:
        """Send ``destination``'s message ``seconds`` from now (a rate limit's wait), unless
        one is in flight already; the guard counts from when it is due."""
        assert self.send_later is not None, "register() the actor first"
        now = self.clock()
        due = now + timedelta(seconds=seconds)
        for d in outbox.guard(self.engine, [destination], now, self.stale_after, due=due):
            try:
                self.send_later(d, int(seconds * 1000) + LATER_MARGIN_MS)
            except Exception as exc:  # noqa: BLE001 - the outbox is the safety net
                self.metrics.enqueue_failures.inc()
                log.warning("broker.enqueue_failed", destination=d, error=type(exc).__name__)


# A delayed message arrives this much after the limit frees, so the jobs are due by then.
LATER_MARGIN_MS = 20


def register(broker: dramatiq.Broker, deliverer: Deliverer, metrics: Metrics,
             dispatcher: Dispatcher, *, queue: str, time_limit_ms: int,
             give_way: Callable[[], object] | None = None,
             gate: Callable[[str], float] | None = None) -> None:
    """Declare the ``dispatch`` actor on ``broker`` and let ``dispatcher`` send it.
    ``give_way`` runs first (the embedded default: requests of the same process first);
    ``gate(destination)`` says how many seconds its vendor's rate limit wants (0: none)."""

    def dispatch(destination: str) -> None:
        if give_way is not None:
            give_way()
        outbox.unguard(deliverer.engine, destination)
        wait = gate(destination) if gate is not None else 0.0
        if wait > 0:
            metrics.throttled.labels(destination).inc()
            dispatcher.later(destination, wait)
            return
        report = deliverer.run(destination, more=lambda d: dispatcher([d]))
        for outcome, n in report.outcomes.items():
            metrics.jobs.labels(destination, outcome).inc(n)
        for reason, n in report.dropped.items():
            metrics.fields_dropped.labels(destination, reason).inc(n)
        for result, n in report.batches.items():
            metrics.vendor_batches.labels(destination, result).inc(n)
        for seconds in report.latencies:
            metrics.latency.labels(destination).observe(seconds)
        if report.claimed:
            log.info("jobs.delivered", destination=destination, claimed=report.claimed,
                     lost=report.lost, **dict(report.outcomes))
        if report.lost:
            dispatcher([destination])
        if report.throttled_for is not None:
            metrics.throttled.labels(destination).inc()
            dispatcher.later(destination, report.throttled_for)

    # No broker retries: a failed delivery is rescheduled in the database, and a message
    # lost or failed outright is re-sent by the scheduler's next dispatch tick. No age
    # limit: an old message is still a true hint, and a redundant one claims nothing.
    actor: dramatiq.Actor[[str], None] = dramatiq.Actor(
        dispatch, broker=broker, actor_name="privasync_dispatch", queue_name=queue, priority=0,
        options={"max_retries": 0, "time_limit": time_limit_ms})
    dispatcher.send = actor.send
    dispatcher.send_later = lambda d, ms: actor.send_with_options(args=(d,), delay=ms)
