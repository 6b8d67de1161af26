"""The Dramatiq actor: it carries a job id and nothing personal.

The deliverer decides everything from the database; this wrapper only turns
its report into metrics and into a delayed retry (a 429's Retry-After becomes
``dramatiq.Retry(delay=...)``: workers never sleep).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dramatiq
import structlog

from core.delivery import Deliverer
from workers.broker import QUEUE
from workers.metrics import Metrics

log = structlog.get_logger("privasync.worker")


def register(broker: dramatiq.Broker, deliverer: Deliverer, metrics: Metrics, *,
             max_attempts: int) -> Callable[[int], Any]:
    """Declare the ``deliver`` actor on ``broker``; returns a function that enqueues ids."""

    def deliver(job_id: int) -> None:
        report = deliverer.run(job_id)
        for outcome, n in report.outcomes.items():
            if report.destination is not None:
                metrics.jobs.labels(report.destination, outcome).inc(n)
        for reason, n in report.dropped.items():
            metrics.fields_dropped.labels(report.destination, reason).inc(n)
        for seconds in report.latencies:
            metrics.latency.labels(report.destination).observe(seconds)
        if report.destination is not None:
            log.info("jobs.delivered", job=job_id, destination=report.destination,
                     **dict(report.outcomes))
        if report.retry_job_id is None or report.retry_in is None:
            return
        delay_ms = int(report.retry_in * 1000)
        if report.retry_job_id == job_id:
            raise dramatiq.Retry(f"job {job_id} retries in {delay_ms} ms", delay=delay_ms)
        actor.send_with_options(args=(report.retry_job_id,), delay=delay_ms)

    actor: dramatiq.Actor[[int], None] = dramatiq.Actor(
        deliver, broker=broker, actor_name="privasync_deliver", queue_name=QUEUE, priority=0,
        options={"max_retries": max_attempts + 5, "min_backoff": 1000,
                 "max_backoff": 600_000, "time_limit": 300_000})

    def send(job_id: int) -> Any:
        return actor.send(job_id)

    return send
