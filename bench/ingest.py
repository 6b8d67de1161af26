"""Measurement 1: signed HubSpot webhook events accepted durably per second, against a floor.

First the bare floor (bench/floor.py: verify, parse, insert the raw batch, commit)
on fresh storage; then privasync, deployed as in production (bench/deploy.py),
on fresh storage, with its applier and workers running while the batches come
in. The same client processes post the same signed batches to both. privasync
already knows every person (HubSpot id and e-mail) and the emulators hold them,
so each accepted opt-out is applied and delivered to three destinations behind
the answer; the figures say how long until all of it was applied and delivered.
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import requests
from sqlalchemy import func, select

from bench import backends, deploy, load, stats
from core import inbox
from core.db import jobs, make_engine, system_refs
from privasync.demo.stack import Emulators

FIRST_CONTACT = 700_001
BATCH = 100


def _signed(url: str, secret: str, contacts: list[int]) -> list[load.Signed]:
    now_ms = int(time.time() * 1000)
    return [load.sign(url, secret, [load.optout_event(c, i + 1, now_ms + i)
                                    for i, c in enumerate(contacts[s:s + BATCH], s)])
            for s in range(0, len(contacts), BATCH)]


def _summary(posted: load.Posted, sent: int) -> dict[str, Any]:
    ok = [b for b in posted.batches if b[0] == 200]
    accepted = sum(b[1] for b in ok)
    return {"events_sent": sent, "batches_ok": len(ok),
            "batches_failed": len(posted.batches) - len(ok) + (
                sent // BATCH - len(posted.batches)),
            "events_accepted": accepted, "seconds": round(posted.seconds, 3),
            "events_per_s": round(accepted / posted.seconds, 1),
            "batch_latency": stats.summary_ms([b[3] for b in ok])}


def floor(backend: str, services: backends.Services, *, events: int, clients: int,
          timeout: float) -> dict[str, Any]:
    database, _, var_dir = backends.prepare(backend, services)
    port, secret = deploy.free_port(), "floor-client-secret"
    proc = subprocess.Popen([sys.executable, "-m", "bench.floor", "--database", database,
                             "--port", str(port), "--secret", secret],
                            stdout=(var_dir / "floor.log").open("wb"),
                            stderr=subprocess.STDOUT, cwd=backends.ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"the floor app did not start; see {var_dir}/floor.log")
            time.sleep(0.05)
        items = _signed(f"{url}/webhooks/hubspot", secret,
                        [FIRST_CONTACT + i for i in range(events)])
        return _summary(load.post_all(f"{url}/webhooks/hubspot", items, clients,
                                      timeout=timeout), events)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def run(backend: str, services: backends.Services, *, events: int, clients: int,
        poll_seconds: float, timeout: float) -> dict[str, Any]:
    emu = Emulators().start()
    try:
        return _run(backend, services, emu, events=events, clients=clients,
                    poll_seconds=poll_seconds, timeout=timeout)
    finally:
        emu.stop()


def _run(backend: str, services: backends.Services, emu: Emulators, *, events: int,
         clients: int, poll_seconds: float, timeout: float) -> dict[str, Any]:
    people = []
    for i in range(events):
        address = backends.email(i)
        people.append((int(emu.hubspot.create_contact(address)), address))
        emu.salesforce.create_contact(address, last_name="Person")
        emu.mailchimp.add_member(address, status="subscribed")
    with deploy.running(backend, services, emu, poll_seconds=poll_seconds) as deployment:
        engine = make_engine(deployment.database_url)
        backends.seed_identity(deployment.database_url, deploy.SECRET_KEY,
                               [(str(c), a) for c, a in people])
        deadline = time.monotonic() + timeout
        # The Salesforce poller's first polls read every Contact (2,000 a poll) and sync
        # their fields to HubSpot: let that initial sync finish before measuring.
        while _salesforce_refs(engine) < events and time.monotonic() < deadline:
            time.sleep(0.2)
        _drain(engine, deadline)
        url = f"{deployment.url}/webhooks/hubspot"
        items = _signed(url, emu.hubspot.client_secret, [c for c, _ in people])
        posted = load.post_all(url, items, clients, timeout=timeout)
        started = posted.started
        applied_after = _drain(engine, deadline, jobs_too=False) - started
        delivered_after = _drain(engine, deadline) - started
        memory = deployment.peak_memory_mb()
        with engine.connect() as conn:
            done = int(conn.execute(select(func.count()).select_from(jobs)
                                    .where(jobs.c.status == "done")).scalar_one())
        engine.dispose()
    return {**_summary(posted, events), "client_processes": clients,
            "applied_all_after_seconds": round(applied_after, 2),
            "delivered_all_after_seconds": round(delivered_after, 2),
            "jobs_done_by_end": done, "peak_memory_mb": memory}


def _salesforce_refs(engine: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(system_refs).where(
            system_refs.c.system == "salesforce")).scalar_one())


def _drain(engine: Any, deadline: float, *, jobs_too: bool = True) -> float:
    """Wait until the inbox is applied (and, with ``jobs_too``, no job is open); returns
    the monotonic time it happened (or the deadline's)."""
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            waiting = inbox.backlog(conn).rows
            open_jobs = conn.execute(select(func.count()).select_from(jobs).where(
                jobs.c.status.in_(["pending", "running"]))).scalar_one() if jobs_too else 0
        if not waiting and not open_jobs:
            return time.monotonic()
        time.sleep(0.05)
    print("  ! timed out waiting for privasync to catch up", flush=True)  # noqa: T201
    return time.monotonic()
