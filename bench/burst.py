"""Measurements 2 and 3: a burst of unsubscribes clicked in HubSpot, until every
destination agrees.

Before privasync starts, N people are seeded in the emulators in-process (no
HTTP, no webhooks): a HubSpot contact, a Salesforce Contact, a subscribed
Mailchimp member. privasync then learns them as it would in production: the
Salesforce poller's first poll reads the N Contacts (e-mail + Salesforce ref),
and, unless ``cold``, the HubSpot contact ids come through intake as
``SubjectSeen`` (what ``contact.creation`` plus an e-mail look-up would give).
Then ``hubspot.ui_unsubscribe_all`` for each contact: the HubSpot emulator
sends signed webhook batches (up to 100 events, 3 events per contact:
hs_email_optout_101, _102 and hs_email_optout) from its one sender thread.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from api.stack import Emulators, Stack
from bench import backends, stats
from bench.analysis import echo_counts, events_by_kind, job_rows, latencies, verify
from core.db import events, jobs
from core.outbox import CONSENT
from emulators.http import Request, Response
from emulators.salesforce import SalesforceEmulator

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


def _count(stack: Stack, query: Any) -> int:
    with stack.container.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def _wait(what: str, check: Any, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    print(f"  ! timed out waiting for {what}", flush=True)  # noqa: T201
    return False


def _settle(stack: Stack, since: datetime, deadline: float, kind: str | None) -> str:
    """Wait until no job (of ``kind``, created since ``since``) is pending or running.
    Stop early, reporting it, when only running jobs are left and none has finished
    for STALL_SECONDS (a worker lost their outcome: the reconciler takes them back
    only after ``stale_after``)."""
    query = select(jobs.c.status, func.count()).where(jobs.c.created_at >= since)
    if kind is not None:
        query = query.where(jobs.c.kind == kind)
    query = query.group_by(jobs.c.status)
    last_done, changed = -1, time.monotonic()
    while time.monotonic() < deadline:
        with stack.container.engine.connect() as conn:
            counts = dict(conn.execute(query).all())
        if not counts.get("pending") and not counts.get("running"):
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
        worker_threads: int, cold: bool, echo: bool, timeout: float) -> dict[str, Any]:
    emu = Emulators(salesforce=CountingSalesforce())
    contacts, records = seed_vendors(emu, people)
    with backends.running(backend, services, poll_seconds=poll_seconds,
                          worker_threads=worker_threads, emulators=emu) as stack:
        deadline = time.monotonic() + timeout
        seeded = 0.0 if cold else backends.seed_identity(
            stack, [(c, backends.email(i)) for i, c in enumerate(contacts)])
        _wait("the Salesforce poller's first poll", lambda: _count(stack, select(
            func.count()).select_from(events).where(events.c.source == "salesforce"))
            >= people, deadline)
        quiet = _settle(stack, datetime.min.replace(tzinfo=UTC), deadline, None)
        before = _snapshot(emu)
        cpu0, started = stats.cpu_seconds(), datetime.now(UTC)
        for contact in contacts:
            emu.hubspot.ui_unsubscribe_all(contact)
        try:
            emu.hubspot.flush_webhooks(timeout=max(1.0, deadline - time.monotonic()))
        except TimeoutError as exc:
            print(f"  ! HubSpot webhooks not all delivered: {exc}", flush=True)  # noqa: T201
        ingested = datetime.now(UTC)
        complete = _settle(stack, started, deadline, CONSENT)
        cpu = stats.cpu_seconds() - cpu0
        after = _snapshot(emu)
        rows = job_rows(stack, started)
        checked = verify(stack, emu, contacts, records)
        stored = events_by_kind(stack, started)
        echoed = echo_counts(stack, started, poll_seconds, len(rows), wait=echo)
    sent = emu.hubspot.webhook_deliveries[before["deliveries"]:after["deliveries"]]
    lat = latencies(rows, started)
    last_done = max((r.done_at for r in rows if r.kind == CONSENT and r.done_at is not None),
                    default=ingested)
    wall = (last_done - started).total_seconds()
    consent = [r for r in rows if r.kind == CONSENT]
    done = sum(1 for r in consent if r.status == "done")
    return {
        "people": people, "identity": "cold: HubSpot ids unknown, e-mails looked up in HubSpot"
        if cold else "HubSpot ids + e-mails known (SubjectSeen via container.intake.accept)",
        "identity_seeding_seconds": round(seeded, 2), "outcome": complete,
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
        "app_process_cpu_seconds": round(cpu, 2),
        "echo": echoed,
    }
