"""Measurements 2 and 3: a burst of unsubscribes clicked in HubSpot, until every
destination agrees, with privasync deployed as in production (bench/deploy.py).

Before privasync starts, N people are seeded in the emulators in-process (no
HTTP, no webhooks): a HubSpot contact, a Salesforce Contact, a subscribed
Mailchimp member. privasync then learns them as it would in production: the
Salesforce poller's first poll reads the N Contacts (e-mail + Salesforce ref),
the scheduler reads the Mailchimp audience in bulk, and, unless ``cold``, the
HubSpot contact ids come in as ``SubjectSeen`` (what ``contact.creation`` plus
an e-mail look-up would give). Then ``hubspot.ui_unsubscribe_all`` for each
contact: the HubSpot emulator sends signed webhook batches (up to 100 events,
3 per contact: hs_email_optout_101, _102 and hs_email_optout) from its one
sender thread. Mailchimp answers each call after ``mailchimp_latency``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from bench import backends, deploy, stats
from bench.analysis import (
    echo_counts,
    events_by_kind,
    job_rows,
    latencies,
    outcome_counts,
    verify,
)
from core import inbox
from core.db import directory, jobs, make_engine, subjects
from core.mappings import load_mappings
from core.outbox import CONSENT
from privasync.app.taxonomy import data_categories
from privasync.demo.stack import Emulators, hubspot_subscriptions
from privasync.emulators.http import Request, Response
from privasync.emulators.salesforce import SalesforceEmulator

# One vendor call per change, no bulk read of the audience: what privasync is compared with.
NAIVE = {"PRIVASYNC_WORKER__MAX_BATCH": "1", "PRIVASYNC_MAILCHIMP__DIRECTORY_REFRESH_SECONDS": "0"}

LOOKUP_SOQL = "SELECT Id, Email, IndividualId FROM "  # the destination's, not the poller's
VENDORS = ("hubspot", "salesforce", "mailchimp", "partner")
SEED_AGE = timedelta(minutes=5)
STALL_SECONDS = 20.0


class CountingSalesforce(SalesforceEmulator):
    """Tells privasync's look-up queries (destination) from the poller's by their SOQL."""

    def __init__(self) -> None:
        super().__init__()
        self.queries: Counter[str] = Counter()

    def dispatch(self, request: Request) -> Response:
        soql = request.arg("q")
        if soql is not None:
            with self.lock:
                self.queries["lookup" if soql.startswith(LOOKUP_SOQL) else "poll"] += 1
        return super().dispatch(request)


def seed_vendors(emu: Emulators, people: int) -> tuple[list[str], list[str]]:
    """HubSpot contact ids and Salesforce Contact ids of person0..person{N-1}.

    The Salesforce Contacts are dated a few minutes back (the org's clock is moved
    back while seeding), like records that existed before privasync was connected:
    the poller's first poll reads them all at once, before the burst, and
    getUpdated (minute granularity) does not report them again during it."""
    contacts, records = [], []
    emu.salesforce.advance(-SEED_AGE)
    for i in range(people):
        address = backends.email(i)
        contacts.append(emu.hubspot.create_contact(address))
        records.append(emu.salesforce.create_contact(address, last_name="Person"))
        emu.mailchimp.add_member(address, status="subscribed")
    emu.salesforce.advance(SEED_AGE)
    return contacts, records


def _count(engine: Engine, query: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def _wait(what: str, check: Any, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    print(f"  ! timed out waiting for {what}", flush=True)  # noqa: T201
    return False


def _settle(engine: Engine, since: datetime, deadline: float, kind: str | None) -> str:
    """Wait until nothing waits in the inbox and no job (of ``kind``, created since
    ``since``) is pending or running. Stop early, reporting it, when only running jobs
    are left and none has finished for STALL_SECONDS."""
    query = select(jobs.c.status, func.count()).where(jobs.c.created_at >= since)
    if kind is not None:
        query = query.where(jobs.c.kind == kind)
    query = query.group_by(jobs.c.status)
    last_done, changed = -1, time.monotonic()
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            counts: dict[str, int] = dict(conn.execute(query).tuples().all())
            waiting = inbox.backlog(conn).rows
        if not waiting and not counts.get("pending") and not counts.get("running"):
            return "complete"
        if counts.get("done", 0) != last_done:
            last_done, changed = counts.get("done", 0), time.monotonic()
        elif not counts.get("pending") and time.monotonic() - changed > STALL_SECONDS:
            print(f"  ! {counts['running']} job(s) left running, no progress for "  # noqa: T201
                  f"{STALL_SECONDS:.0f} s", flush=True)
            return f"stalled: {counts['running']} stuck"
        time.sleep(0.1)
    print("  ! timed out waiting for jobs to finish", flush=True)  # noqa: T201
    return "timed out"


def learn(engine: Engine, database: str, contacts: Sequence[str], deadline: float, *,
          hubspot_ids: bool = True, audience: bool = True) -> str:
    """privasync learns person0..N-1 as in production: their HubSpot ids as
    ``contact.creation`` and a look-up would give them (with ``hubspot_ids``), the Salesforce
    poller's first polls, the Mailchimp audience read (waited for with ``audience``). Then
    waits until nothing is left to do; returns how that ended (``_settle``)."""
    if hubspot_ids:
        backends.seed_identity(database, deploy.SECRET_KEY,
                               [(c, backends.email(i)) for i, c in enumerate(contacts)])
    _wait("the Salesforce poller's first poll", lambda: _count(engine, select(
        func.count()).select_from(subjects)) >= len(contacts), deadline)
    if audience:
        _wait("the Mailchimp audience read", lambda: _count(engine, select(
            func.count()).select_from(directory)) >= len(contacts), deadline)
    return _settle(engine, datetime.min.replace(tzinfo=UTC), deadline, None)


def _snapshot(emu: Emulators) -> dict[str, Any]:
    sf = emu.salesforce
    assert isinstance(sf, CountingSalesforce)
    with sf.lock:
        queries = Counter(sf.queries)
    with emu.hubspot.lock:
        statuses = Counter(str(status) for _, _, status in emu.hubspot.log)
    return {"calls": {name: stats.calls(getattr(emu, name)) for name in VENDORS},
            "hubspot_statuses": statuses,
            "sf_queries": queries, "deliveries": len(emu.hubspot.webhook_deliveries)}


def _api_calls(before: dict[str, Any], after: dict[str, Any], people: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in VENDORS:
        delta = after["calls"][name] - before["calls"][name]
        polling = 0
        if name == "salesforce":
            queries = after["sf_queries"] - before["sf_queries"]
            polling = queries["poll"] + sum(n for k, n in delta.items()
                                            if k.endswith(("/updated/", "/updated",
                                                           "/deleted/", "/deleted")))
        total = sum(delta.values())
        out[name] = {"delivery_calls": total - polling, "polling_calls": polling,
                     "per_unsubscribe": round((total - polling) / people, 3),
                     "by_endpoint": dict(sorted(delta.items()))}
    return out


def run(backend: str, services: backends.Services, *, people: int, poll_seconds: float,
        worker_threads: int, cold: bool, echo: bool, timeout: float,
        mailchimp_latency: float, extra: Mapping[str, str] | None = None) -> dict[str, Any]:
    emu = Emulators(salesforce=CountingSalesforce()).start()
    try:
        return _run(backend, services, emu, people=people, poll_seconds=poll_seconds,
                    worker_threads=worker_threads, cold=cold, echo=echo, timeout=timeout,
                    mailchimp_latency=mailchimp_latency, extra=extra)
    finally:
        emu.stop()


def _run(backend: str, services: backends.Services, emu: Emulators, *, people: int,
         poll_seconds: float, worker_threads: int, cold: bool, echo: bool, timeout: float,
         mailchimp_latency: float, extra: Mapping[str, str] | None) -> dict[str, Any]:
    contacts, records = seed_vendors(emu, people)
    with deploy.running(backend, services, emu, poll_seconds=poll_seconds, extra=extra,
                        worker_threads=worker_threads) as deployment:
        engine = make_engine(deployment.database_url)
        deadline = time.monotonic() + timeout
        quiet = learn(engine, deployment.database_url, contacts, deadline,
                      hubspot_ids=not cold, audience=not extra)
        emu.hubspot.configure_webhooks(f"{deployment.url}/webhooks/hubspot",
                                       hubspot_subscriptions(load_mappings(
                                           backends.MAPPINGS, data_categories())))
        emu.mailchimp.latency_seconds = mailchimp_latency
        before = _snapshot(emu)
        unchanged_before = outcome_counts(engine).get("salesforce -> unchanged", 0)
        started = datetime.now(UTC)
        for contact in contacts:
            emu.hubspot.ui_unsubscribe_all(contact)
        try:
            emu.hubspot.flush_webhooks(timeout=max(1.0, deadline - time.monotonic()))
        except TimeoutError as exc:
            print(f"  ! HubSpot webhooks not all delivered: {exc}", flush=True)  # noqa: T201
        ingested = datetime.now(UTC)
        complete = _settle(engine, started, deadline, CONSENT)
        after = _snapshot(emu)
        memory = deployment.peak_memory_mb()
        rows = job_rows(engine, started)
        checked = verify(engine, emu, contacts, records)
        stored = events_by_kind(engine, started)
        echoed = echo_counts(engine, started, poll_seconds, len(rows), unchanged_before,
                             wait=echo)
        engine.dispose()
    sent = emu.hubspot.webhook_deliveries[before["deliveries"]:after["deliveries"]]
    lat = latencies(rows, started)
    last_done = max((r.done_at for r in rows if r.kind == CONSENT and r.done_at is not None),
                    default=ingested)
    wall = (last_done - started).total_seconds()
    consent = [r for r in rows if r.kind == CONSENT]
    done = sum(1 for r in consent if r.status == "done")
    return {
        "people": people, "configuration": "naive: " + ", ".join(
            f"{k}={v}" for k, v in (extra or {}).items()) if extra else "as shipped",
        "processes": sorted(deployment.procs),
        "identity": "cold: HubSpot ids unknown, e-mails looked up in HubSpot"
        if cold else "HubSpot ids + e-mails known (SubjectSeen stored in the inbox)",
        "mailchimp_latency_ms": round(mailchimp_latency * 1000), "outcome": complete,
        "webhook_deliveries": {"batches": len(sent), "events": sum(n for s, n in sent),
                               "non_2xx": sum(1 for s, _ in sent if not 200 <= s < 300),
                               "largest_batch": max((n for _, n in sent), default=0)},
        "before_burst": quiet, "events_stored": stored,
        "jobs": dict(Counter(f"{r.destination}:{r.status}" for r in consent)),
        "other_jobs": dict(Counter(f"{r.kind}:{r.destination}:{r.status}" for r in rows
                                   if r.kind != CONSENT)),
        "hubspot_statuses": dict(after["hubspot_statuses"] - before["hubspot_statuses"]),
        "latency": lat,
        "verified": checked,
        "api_calls": _api_calls(before, after, people),
        "ingest_seconds": round((ingested - started).total_seconds(), 3),
        "wall_seconds": round(wall, 3),
        "jobs_done": done, "jobs_per_s": round(done / max(wall, 1e-9), 1),
        "unsubscribes_per_s": round(people / max(wall, 1e-9), 1),
        "peak_memory_mb": memory,
        "echo": echoed,
    }
