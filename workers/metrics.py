"""Prometheus metrics: deliveries in, events by outcome, jobs, propagation latency, backlogs.

Whatever the database knows (inbox and job backlogs, events by outcome) is
read from it at scrape time, so every process shows the same figures whatever
the number of workers; so are the vendors' daily allocations, from the rate limits'
shared store. Labels carry names of sources, destinations, outcomes and reasons: never
personal data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import select
from sqlalchemy.engine import Engine

from connectors.ratelimits import Limits
from core import erasures, inbox, ledger, outbox, runtime, subject_requests
from core.db import dispatch, event_counts, reader
from core.errors import Throttled

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800, 3600)


class _FromDatabase(Collector):
    def __init__(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        self.engine = reader(engine)
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        with self.engine.connect() as conn:
            counts = outbox.counts(conn, finished=False)
            ages = outbox.oldest_pending(conn)
            known = set(conn.execute(select(dispatch.c.destination)).scalars())
            backlog = inbox.backlog(conn)
            events = conn.execute(select(event_counts)).all()
            now = self.clock()
            overview = subject_requests.overview(conn, now)
            beats = runtime.freshest_beats(conn)
            verified = ledger.last_verification(conn)
            unlogged = erasures.backlog(conn)
            restarted = runtime.restart_counts(conn)
        yield from self._jobs(counts, ages, now)
        dead = GaugeMetricFamily("privasync_jobs_dead", "Jobs given up on (dead letters: "
                                 "`privasync jobs list --dead`), by destination",
                                 labels=["destination"])
        by_destination = dict.fromkeys(known, 0) | {
            d: n for (d, status), n in counts.items() if status == outbox.DEAD}
        for destination, n in sorted(by_destination.items()):
            dead.add_metric([destination], n)
        yield dead
        yield from self._health(beats, verified, now)
        received = CounterMetricFamily("privasync_events_received",
                                       "Events applied, by source and outcome",
                                       labels=["source", "outcome"])
        for row in sorted(events, key=lambda r: (r.source, r.outcome)):
            received.add_metric([row.source, row.outcome], row.n)
        yield received
        restarts = CounterMetricFamily("privasync_process_restarts", "Restarts of a process "
                                       "`privasync serve` supervises (api, background), by "
                                       "host, since the database was made",
                                       labels=["process", "host"])
        for (process, host), n in sorted(restarted.items()):
            restarts.add_metric([process, host], n)
        yield restarts
        yield GaugeMetricFamily("privasync_inbox_pending_rows",
                                "Stored deliveries not applied yet", value=backlog.rows)
        yield GaugeMetricFamily("privasync_inbox_pending_events",
                                "Events in stored deliveries not applied yet",
                                value=backlog.events)
        oldest = (now - backlog.oldest).total_seconds() if backlog.oldest is not None else 0.0
        yield GaugeMetricFamily("privasync_inbox_oldest_age_seconds",
                                "Age of the oldest delivery not applied yet",
                                value=max(0.0, oldest))
        yield GaugeMetricFamily("privasync_inbox_failed_rows",
                                "Stored deliveries given up on (see privasync status)",
                                value=backlog.failed)
        yield from self._requests(overview)
        yield GaugeMetricFamily("privasync_erasure_log_pending", "Completed erasures not "
                                "appended to the erasure log yet (a restore now would bring "
                                "them back unseen by restore-check)", value=unlogged.entries)
        behind = (now - unlogged.oldest).total_seconds() if unlogged.oldest else 0.0
        yield GaugeMetricFamily("privasync_erasure_log_oldest_age_seconds",
                                "Age of the oldest completed erasure not in the erasure log",
                                value=max(0.0, behind))

    @staticmethod
    def _health(beats: dict[str, datetime], verified: ledger.Verification | None,
                now: datetime) -> Iterator[Metric]:
        ages = GaugeMetricFamily("privasync_heartbeat_age_seconds", "Seconds since the "
                                 "freshest heartbeat of each component (worker, scheduler, "
                                 "applier); absent when none has reported",
                                 labels=["component"])
        for component, at in sorted(beats.items()):
            ages.add_metric([component], max(0.0, (now - at).total_seconds()))
        yield ages
        if verified is None:
            return  # not checked yet: no claim either way
        yield GaugeMetricFamily("privasync_ledger_verified", "1 if the ledger's hash chain "
                                "held at the scheduler's last check, 0 if it was broken",
                                value=1.0 if verified.ok else 0.0)
        yield GaugeMetricFamily("privasync_ledger_verified_timestamp_seconds",
                                "Unix time of the scheduler's last check of the ledger chain",
                                value=verified.at.timestamp())
        yield GaugeMetricFamily("privasync_ledger_verified_entries", "Entries of the chain "
                                "verified intact so far", value=verified.seq)

    @staticmethod
    def _requests(overview: subject_requests.Overview) -> Iterator[Metric]:
        states = GaugeMetricFamily("privasync_requests", "Data-subject requests by kind and "
                                   "status", labels=["kind", "status"])
        for (kind, status), n in sorted(overview.by_state.items()):
            states.add_metric([kind, status], n)
        yield states
        yield GaugeMetricFamily("privasync_requests_due_within_7d", "Open requests whose "
                                "Art. 12(3) deadline is within 7 days",
                                value=overview.due_within_7d)
        yield GaugeMetricFamily("privasync_requests_overdue", "Open requests past their "
                                "Art. 12(3) deadline", value=overview.overdue)
        yield GaugeMetricFamily("privasync_requests_identity_overdue", "Requests still "
                                "waiting for proof of identity (Art. 12(6)) past the time the "
                                "person was given", value=overview.identity_overdue)
        yield GaugeMetricFamily("privasync_requests_unidentified", "Open requests waiting for "
                                "someone to find out who asked (a system erased a record "
                                "privasync never knew)", value=overview.unidentified)
        acks = GaugeMetricFamily("privasync_partner_acks_overdue", "Erasures a partner has "
                                 "not acknowledged in time", labels=["destination"])
        for destination, n in sorted(overview.acks_overdue.items()):
            acks.add_metric([destination], n)
        yield acks

    @staticmethod
    def _jobs(counts: dict[tuple[str, str], int], ages: dict[str, datetime],
              now: datetime) -> Iterator[Metric]:
        jobs = GaugeMetricFamily("privasync_jobs",
                                 "Unfinished outbox jobs (pending, running, dead) by "
                                 "destination and status", labels=["destination", "status"])
        pending = GaugeMetricFamily("privasync_jobs_pending",
                                    "Jobs waiting or running, by destination",
                                    labels=["destination"])
        oldest = GaugeMetricFamily("privasync_oldest_pending_job_age_seconds",
                                   "Age of the oldest unfinished job, by destination",
                                   labels=["destination"])
        waiting: dict[str, int] = {}
        for (destination, status), n in sorted(counts.items()):
            jobs.add_metric([destination, status], n)
            if status in outbox.OPEN:
                waiting[destination] = waiting.get(destination, 0) + n
        for destination, n in sorted(waiting.items()):
            pending.add_metric([destination], n)
        for destination, created in sorted(ages.items()):
            oldest.add_metric([destination], max(0.0, (now - created).total_seconds()))
        yield jobs
        yield pending
        yield oldest


class _Allocations(Collector):
    """Each vendor's daily allocation as its allowance last read it, less the calls counted
    since. On Redis every process shows the same figures; in memory only the process that
    calls the vendor has any. No reading yet, or the store unreachable: no figure."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits

    def collect(self) -> Iterator[Metric]:
        labels = ["destination"]
        limit = GaugeMetricFamily("privasync_vendor_allocation", "A vendor's API calls "
                                  "allowed per day (Salesforce's DailyApiRequests Max), as "
                                  "last read", labels=labels)
        left = GaugeMetricFamily("privasync_vendor_allocation_remaining", "Calls left of "
                                 "that allocation: the last reading less privasync's calls "
                                 "since", labels=labels)
        reserve = GaugeMetricFamily("privasync_vendor_allocation_reserve", "Calls privasync "
                                    "leaves to the vendor account's other users: at or below "
                                    "it, its calls wait (rate_limited, api_reserve)",
                                    labels=labels)
        for name, allowance in sorted(self.limits.allowances().items()):
            try:
                now = allowance.left()
            except Throttled:  # the shared store is unreachable (logged by the allowance)
                continue
            if now is not None:
                limit.add_metric([name], now.limit)
                left.add_metric([name], now.remaining)
                reserve.add_metric([name], now.reserve)
        yield limit
        yield left
        yield reserve


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.deliveries = Counter("privasync_webhook_deliveries",
                                  "Deliveries accepted at ingress (stored or duplicate)",
                                  ["source", "result"], registry=self.registry)
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
        self.throttled = Counter("privasync_rate_limited",
                                 "Dispatches a vendor's rate limit put off (sent again, "
                                 "delayed, when it frees; a daily allocation down to its "
                                 "reserve too), by destination",
                                 ["destination"], registry=self.registry)
        self.vendor_batches = Counter("privasync_vendor_batches",
                                      "Batches handed to a destination (one vendor call each "
                                      "for consent and record jobs), by result: ok, throttled "
                                      "(HTTP 429 or held back by the vendor's rate window), "
                                      "error", ["destination", "result"],
                                      registry=self.registry)
        self.enqueue_failures = Counter("privasync_enqueue_failures",
                                        "Dispatch messages the broker refused (resent later)",
                                        registry=self.registry)

    def watch_database(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        self.registry.register(_FromDatabase(engine, clock))

    def watch_allocations(self, limits: Limits) -> None:
        """Report the daily allocations built in ``limits`` at every scrape."""
        self.registry.register(_Allocations(limits))
