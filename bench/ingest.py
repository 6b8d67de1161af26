"""Measurement 1: signed HubSpot webhook events accepted per second.

privasync already knows every contact (HubSpot contact id and e-mail, taught
through ``container.intake.accept`` with ``SubjectSeen`` events), so accepting a
batch costs no HubSpot API look-up: verify the signature, parse, resolve, one
intake transaction (events, consent state, ledger, 3 outbox jobs per person),
enqueue. The worker runs meanwhile and drains those jobs, as it would in
production, so ingest shares the machine with delivery.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import func, select

from bench import backends, load, stats
from core.db import jobs

FIRST_CONTACT = 700_001
BATCH = 100


def run(backend: str, services: backends.Services, *, events: int, clients: int,
        poll_seconds: float, worker_threads: int, timeout: float) -> dict[str, Any]:
    with backends.running(backend, services, poll_seconds=poll_seconds,
                          worker_threads=worker_threads) as stack:
        people = [(FIRST_CONTACT + i, backends.email(i)) for i in range(events)]
        seed_seconds = backends.seed_identity(stack, [(str(c), e) for c, e in people])
        url = f"{stack.url}/webhooks/hubspot"
        secret = stack.emulators.hubspot.client_secret
        now_ms = int(time.time() * 1000)
        items = [load.sign(url, secret, [load.optout_event(c, i + 1, now_ms + i)
                                         for i, (c, _) in enumerate(people[s:s + BATCH], s)])
                 for s in range(0, len(people), BATCH)]
        cpu_before = stats.cpu_seconds()
        posted = load.post_all(url, items, clients, timeout=timeout)
        cpu = stats.cpu_seconds() - cpu_before
        with stack.container.engine.connect() as conn:
            done = conn.execute(select(func.count()).select_from(jobs)
                                .where(jobs.c.status == "done")).scalar_one()
        hubspot_calls = stack.emulators.hubspot.total_calls()
    ok = [b for b in posted.batches if b[0] == 200]
    accepted = sum(b[1] for b in ok)
    return {
        "identity_seeding": {"method": "container.intake.accept(SubjectSeen(hubspot ref + "
                                       "e-mail)) in chunks of 250, no HTTP",
                             "people": len(people), "seconds": round(seed_seconds, 2)},
        "events_sent": len(people), "batches_sent": len(items), "events_per_batch": BATCH,
        "client_processes": clients, "batches_ok": len(ok),
        "batches_failed": len(items) - len(ok),  # refused, or not sent before the deadline
        "events_accepted": accepted, "jobs_created": sum(b[2] for b in ok),
        "seconds": round(posted.seconds, 3),
        "events_per_s": round(accepted / posted.seconds, 1),
        "batches_per_s": round(len(ok) / posted.seconds, 2),
        "batch_latency": stats.summary_ms([b[3] for b in ok]),
        "jobs_done_by_end": int(done),
        "hubspot_api_calls": hubspot_calls,
        "app_process_cpu_seconds": round(cpu, 2),
    }
