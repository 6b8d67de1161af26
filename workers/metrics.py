"""Prometheus metrics: events in, jobs by outcome, propagation latency, backlog.

Backlog gauges are read from the database at scrape time, so they are right in
every process whatever the number of workers. Labels carry names of sources,
destinations and outcomes: never personal data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine

from core import outbox

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800, 3600)


class _Backlog(Collector):
    def __init__(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        jobs = GaugeMetricFamily("privasync_jobs", "Outbox jobs by destination and status",
                                 labels=["destination", "status"])
        pending = GaugeMetricFamily("privasync_jobs_pending",
                                    "Jobs waiting or running, by destination",
                                    labels=["destination"])
        oldest = GaugeMetricFamily("privasync_oldest_pending_job_age_seconds",
                                   "Age of the oldest unfinished job, by destination",
                                   labels=["destination"])
        with self.engine.connect() as conn:
            counts = outbox.counts(conn)
            ages = outbox.oldest_pending(conn)
        waiting: dict[str, int] = {}
        for (destination, status), n in sorted(counts.items()):
            jobs.add_metric([destination, status], n)
            if status in (outbox.PENDING, outbox.RUNNING):
                waiting[destination] = waiting.get(destination, 0) + n
        for destination, n in sorted(waiting.items()):
            pending.add_metric([destination], n)
        now = self.clock()
        for destination, created in sorted(ages.items()):
            oldest.add_metric([destination], max(0.0, (now - created).total_seconds()))
        yield jobs
        yield pending
        yield oldest


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.events = Counter("privasync_events_received", "Events accepted at ingress",
                              ["source", "outcome"], registry=self.registry)
        self.rejected = Counter("privasync_webhooks_rejected", "Deliveries refused at ingress",
                                ["source", "reason"], registry=self.registry)
        self.jobs = Counter("privasync_job_runs", "Job outcomes by destination",
                            ["destination", "outcome"], registry=self.registry)
        self.latency = Histogram("privasync_propagation_seconds",
                                 "From an event's arrival to the destination agreeing",
                                 ["destination"], buckets=LATENCY_BUCKETS,
                                 registry=self.registry)
        self.fields_dropped = Counter("privasync_fields_dropped",
                                      "Fields minimisation kept from a destination, by reason",
                                      ["destination", "reason"], registry=self.registry)
        self.enqueue_failures = Counter("privasync_enqueue_failures",
                                        "Job ids the broker refused (the reconciler resends)",
                                        registry=self.registry)

    def watch_backlog(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        self.registry.register(_Backlog(engine, clock))
