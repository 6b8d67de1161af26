"""Vendor rate limits shared by every worker: two `privasync worker` processes and the
scheduler on PostgreSQL and Redis, a backlog of withdrawals for every destination, one
vendor call per person, against emulators that refuse what the vendor would."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from core import codec, inbox
from core.crypto import Keyring
from core.db import jobs, make_engine
from core.model import (
    Channel,
    ConsentChange,
    ConsentChanged,
    ConsentStatus,
    EventMeta,
    SubjectHint,
)
from privasync.demo.stack import Emulators, Stack, start_stack
from privasync.emulators.salesforce import API
from tests import launch
from tests.conftest import BROKER_NAMESPACE, clear_broker, make_database
from tests.e2e.conftest import MAPPINGS, wait_for
from tests.e2e.test_processes import environment
from tests.timing import scaled

ROOT = Path(__file__).parents[2]
PEOPLE = 30
WINDOW = 20  # calls per 10 s the HubSpot emulator allows: 30 calls need two windows


@pytest.fixture
def emulators() -> Iterator[Emulators]:
    emu = Emulators()
    emu.hubspot.rate_limit = WINDOW
    emu.hubspot.latency_seconds = 0.1  # calls of both workers overlap at the window's edge
    emu.mailchimp.latency_seconds = 2.0  # calls overlap: 16 threads would open 16
    emu.start()
    yield emu
    emu.stop()


def people(emu: Emulators) -> list[str]:
    emails = [f"limit{n}@example.org" for n in range(PEOPLE)]
    for email in emails:
        contact = emu.hubspot.create_contact(email)
        for subscription in (101, 102):
            emu.hubspot.ui_set_subscription(contact, subscription, True)
        emu.mailchimp.add_member(email, status="subscribed")
    return emails


def withdraw(database: str, secret: str, emails: list[str]) -> None:
    """Everyone withdraws everything on a web form: a job per person and destination."""
    now = datetime.now(UTC)
    events = [ConsentChanged(EventMeta("web_form", f"limits-{email}", now),
                             SubjectHint(email=email),
                             tuple(ConsentChange(p, Channel.EMAIL, ConsentStatus.WITHDRAWN)
                                   for p in ("product_news", "offers")))
              for email in emails]
    body = codec.encode(events)
    engine = make_engine(database)
    try:
        with engine.begin() as conn:
            keyring = Keyring(secret.encode())
            inbox.store(conn, source="web_form", sealed=keyring.seal(body),
                        key=keyring.delivery_key(body), received_at=now, events=len(events))
    finally:
        engine.dispose()


def open_jobs(engine: Engine, destination: str | None = None) -> int:
    query = select(func.count()).select_from(jobs).where(jobs.c.status.in_(["pending",
                                                                             "running"]))
    if destination is not None:
        query = query.where(jobs.c.destination == destination)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def statuses(engine: Engine, destination: str) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(select(jobs.c.status, func.count()).where(
            jobs.c.destination == destination).group_by(jobs.c.status)).all()
    return {r[0]: int(r[1]) for r in rows}


@pytest.mark.parametrize("configured", [WINDOW, 100], ids=["configured", "told-by-headers"])
def test_two_worker_processes_keep_to_the_vendors_limits_and_finish_everything(
        emulators: Emulators, redis_url: str, tmp_path: Path, configured: int):
    """HubSpot: its window (configured, or learnt from its headers by whichever worker
    answered first) is never exceeded, 0 calls refused. Mailchimp: never more than 10
    connections at once. Every job done."""
    clear_broker(redis_url)
    database = make_database("postgresql", tmp_path)
    env = environment(emulators, database, redis_url, tmp_path) | {
        "PRIVASYNC_BROKER_NAMESPACE": BROKER_NAMESPACE,
        "PRIVASYNC_HUBSPOT__REQUESTS_PER_10S": str(configured),
        "PRIVASYNC_WORKER__MAX_BATCH": "1", "PRIVASYNC_WORKER__MIN_BACKOFF_SECONDS": "0.2",
        "PRIVASYNC_WORKER__DISPATCH_SECONDS": "0.5"}
    emails = people(emulators)
    # Forked from tests.launch's server: separate processes without an interpreter's start
    # each (test_processes.py runs the commands as `python -m privasync`).
    procs = [launch.Process(["scheduler"], env, ROOT, tmp_path / "scheduler.log")]
    procs += [launch.Process(["worker", "--threads", "8"], env, ROOT, tmp_path / f"worker{i}.log")
              for i in (1, 2)]
    engine = make_engine(database)
    try:
        withdraw(database, env["PRIVASYNC_SECRET_KEY"], emails)
        started = time.monotonic()
        # The bound includes three processes starting (the scheduler applies the inbox).
        wait_for("jobs queued", lambda: statuses(engine, "hubspot").get("pending", 0) > 0
                 or statuses(engine, "hubspot").get("done", 0) > 0, timeout=90)
        wait_for("every job done", lambda: open_jobs(engine) == 0, timeout=90)
        took = time.monotonic() - started
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(timeout=scaled(30)) for proc in procs]
        engine.dispose()
    logs = "".join(p.read_text() for p in tmp_path.glob("*.log"))
    assert codes == [0, 0, 0], logs[-3000:]
    hub, chimp = emulators.hubspot, emulators.mailchimp
    assert hub.rate_limited == 0, f"{hub.rate_limited} HubSpot calls refused with 429"
    assert statuses(make_engine(database), "hubspot") == {"done": PEOPLE}
    assert all(hub.subscription_status(e, s) == "NOT_SUBSCRIBED"
               for e in emails for s in (101, 102))
    assert took >= 10, "30 calls at 20 per 10 s cannot all go in one window"
    assert chimp.refused_connections == 0 and chimp.peak_connections <= 10, (
        chimp.peak_connections, chimp.refused_connections)
    assert all((chimp.member(e) or {}).get("status") == "unsubscribed" for e in emails)
    assert "example.org" not in logs and "Traceback" not in logs


@pytest.fixture
def reserved_stack(redis_url: str, tmp_path: Path) -> Iterator[Stack]:
    """One process on PostgreSQL and Redis whose Salesforce allocation is read every 0.5 s."""
    clear_broker(redis_url)
    running = start_stack(
        database_url=make_database("postgresql", tmp_path), var_dir=tmp_path,
        broker_url=redis_url, broker_namespace=BROKER_NAMESPACE, mappings_dir=MAPPINGS,
        poll_seconds=0.3)
    assert running.container.connector("salesforce") is not None
    allowance = running.container.connector("salesforce").allowance
    assert allowance is not None
    allowance.refresh_seconds = 0.5  # PRIVASYNC_SALESFORCE__LIMITS_REFRESH_SECONDS
    yield running
    running.stop()


def test_salesforce_jobs_wait_below_the_reserve_and_go_when_the_allocation_recovers(
        reserved_stack: Stack):
    stack, sf = reserved_stack, reserved_stack.emulators.salesforce
    email = "reserve@example.org"
    stack.seed_customer(email)
    sf.api_limit, sf.api_used = 1000, 950  # 50 left: within the 10 % reserve
    readings = sf.total_calls(f"{API}/limits")
    wait_for("/limits read again", lambda: sf.total_calls(f"{API}/limits") > readings)
    writes = sf.total_calls(f"{API}/composite")
    withdraw(stack.container.settings.database_url,
             stack.container.settings.secret_key.get_secret_value(),  # type: ignore[union-attr]
             [email])
    engine = stack.container.engine
    wait_for("HubSpot done meanwhile", lambda: open_jobs(engine, "hubspot") == 0)
    seen = sf.total_calls(f"{API}/limits")
    wait_for("two readings more, still within the reserve",
             lambda: sf.total_calls(f"{API}/limits") >= seen + 2)
    assert statuses(engine, "salesforce") == {"pending": 1}
    with engine.connect() as conn:
        attempts = conn.execute(select(jobs.c.attempts).where(
            jobs.c.destination == "salesforce")).scalar_one()
    assert attempts == 0
    assert sf.total_calls(f"{API}/composite") == writes

    sf.api_used = 0  # the rolling 24 h freed the allocation
    # The outcome is recorded a moment after Salesforce answered: wait for the record.
    wait_for("the Salesforce job recorded done once the allocation recovered",
             lambda: statuses(engine, "salesforce") == {"done": 1}, timeout=15)
    assert all((sf.record(i) or {}).get("HasOptedOutOfEmail") is True
               for i in sf.find_by_email(email))
