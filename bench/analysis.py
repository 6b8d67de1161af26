"""Reading a burst back: job timings from the outbox, end state from the emulators."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from bench import backends
from bench.stats import summary_ms
from core.db import event_counts, events, jobs, system_refs
from core.outbox import CONSENT
from privasync.demo.stack import Emulators


def job_rows(engine: Engine, since: datetime) -> list[Any]:
    """Every job created since ``since``: consent jobs (the unsubscribes) and any other."""
    with engine.connect() as conn:
        return list(conn.execute(select(
            jobs.c.kind, jobs.c.destination, jobs.c.subject_id, jobs.c.status, jobs.c.attempts,
            jobs.c.origin_received_at, jobs.c.claimed_at, jobs.c.done_at)
            .where(jobs.c.created_at >= since)).all())


def latencies(rows: Sequence[Any], clicked: datetime) -> dict[str, Any]:
    """Per destination: webhook accepted -> destination updated (done_at - origin_received_at),
    split into waiting (-> claimed_at of the last attempt) and the delivery run itself.
    ``all destinations``: per person, from their first accepted event to their last
    destination updated; ``from the click``: from the burst's start (every click happens
    within milliseconds) to the person's last destination updated, HubSpot's queue
    included."""
    by_destination: dict[str, dict[str, list[float]]] = defaultdict(
        lambda: {"total": [], "wait": [], "run": []})
    first: dict[str, datetime] = {}
    last: dict[str, datetime] = {}
    for r in rows:
        if r.kind != CONSENT or r.status != "done" or r.done_at is None:
            continue
        d = by_destination[r.destination]
        d["total"].append((r.done_at - r.origin_received_at).total_seconds())
        if r.claimed_at is not None:
            d["wait"].append((r.claimed_at - r.origin_received_at).total_seconds())
            d["run"].append((r.done_at - r.claimed_at).total_seconds())
        first[r.subject_id] = min(first.get(r.subject_id, r.origin_received_at),
                                  r.origin_received_at)
        last[r.subject_id] = max(last.get(r.subject_id, r.done_at), r.done_at)
    out: dict[str, Any] = {}
    for name, parts in sorted(by_destination.items()):
        out[name] = {**summary_ms(parts["total"]),
                     "wait_p50_ms": summary_ms(parts["wait"])["p50_ms"],
                     "run_p50_ms": summary_ms(parts["run"])["p50_ms"]}
    out["all destinations (per person)"] = summary_ms(
        [(last[s] - first[s]).total_seconds() for s in first])
    out["from the click (per person)"] = summary_ms(
        [(last[s] - clicked).total_seconds() for s in last])
    return out


def events_by_kind(engine: Engine, since: datetime) -> dict[str, int]:
    """Events privasync stored since ``since``, by source, kind and outcome (no-ops such as
    echoes are only counted: see ``outcome_counts``)."""
    with engine.connect() as conn:
        rows = conn.execute(select(events.c.source, events.c.kind, events.c.outcome, func.count())
                            .where(events.c.received_at >= since)
                            .group_by(events.c.source, events.c.kind, events.c.outcome)).all()
    return {f"{r[0]} {r[1]} -> {r[2]}": int(r[3]) for r in sorted(rows)}


def _withdrawn(held: dict[str, Any] | None) -> bool:
    consents = (held or {}).get("consents", {}).values()
    return bool(consents) and all(c["status"] == "withdrawn" for c in consents)


def outcome_counts(engine: Engine) -> dict[str, int]:
    """Events applied since the start, by source and outcome."""
    with engine.connect() as conn:
        return {f"{r.source} -> {r.outcome}": int(r.n)
                for r in conn.execute(select(event_counts)).all()}


def verify(engine: Engine, emu: Emulators, contacts: Sequence[str],
           records: Sequence[str]) -> dict[str, Any]:
    """How many of the N people each system now holds as unsubscribed."""
    sf = sum(1 for r in records if (emu.salesforce.record(r) or {}).get("HasOptedOutOfEmail"))
    mc = sum(1 for i in range(len(contacts))
             if (emu.mailchimp.member(backends.email(i)) or {}).get("status") == "unsubscribed")
    with engine.connect() as conn:
        owner = dict(conn.execute(select(system_refs.c.ref, system_refs.c.subject_id).where(
            system_refs.c.system == "hubspot")).all())
    subjects = [owner.get(f"contact:{c}") for c in contacts]
    partner = sum(1 for s in subjects if s and _withdrawn(emu.partner.state(s)))
    people = len(contacts)
    return {"salesforce HasOptedOutOfEmail": sf, "mailchimp unsubscribed": mc,
            "partner withdrawn": partner, "of": people,
            "all_ok": sf == mc == partner == people}


def echo_counts(engine: Engine, since: datetime, poll_seconds: float, jobs_before: int,
                unchanged_before: int, wait: bool) -> dict[str, Any]:
    """Our own Salesforce writes read back by the poller, and the jobs they caused.

    The poller's SOQL path reads a write back on its next poll; getUpdated, which
    works to the minute, reports it again after the next minute boundary. With
    ``wait`` this sleeps until then plus two polls. Read-backs that change nothing
    are counted, not stored."""
    waited = 0.0
    if wait:
        now = datetime.now(UTC)
        waited = 60 - now.second - now.microsecond / 1e6 + 2 * poll_seconds + 1.0
        time.sleep(waited)
    with engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(events).where(
            events.c.source == "salesforce", events.c.received_at >= since)).scalar_one()
        total_jobs = conn.execute(select(func.count()).select_from(jobs).where(
            jobs.c.created_at >= since)).scalar_one()
    unchanged = outcome_counts(engine).get("salesforce -> unchanged", 0) - unchanged_before
    return {"salesforce_events_read_back": int(stored) + unchanged,
            "new_jobs_caused": int(total_jobs) - jobs_before,
            "waited_seconds": round(waited, 1)}
