"""The whole product on loopback: emulators, the app, a real broker (the machine's Redis,
or its RabbitMQ) and PostgreSQL, a worker and the scheduler.

Every test taking ``broker`` runs on Redis; one marked ``@pytest.mark.brokers("redis",
"rabbitmq")`` runs on both (the key cases: the whole doubled would add a minute and a half).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core import inbox
from core.db import events, jobs
from privasync.demo.stack import Stack, start_stack
from tests.conftest import BROKER_NAMESPACE, clear_broker, make_database
from tests.timing import scaled, wait_until

MAPPINGS = Path(__file__).parents[2] / "mappings"
BOTH_BROKERS = pytest.mark.brokers("redis", "rabbitmq")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "broker" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("brokers")
        metafunc.parametrize("broker", marker.args if marker else ("redis",), indirect=True)


@pytest.fixture
def broker(request: pytest.FixtureRequest) -> str:
    """The broker URL of this test (this session's namespace, emptied first)."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    clear_broker(url)
    return url


@pytest.fixture
def stack(broker: str, tmp_path: Path) -> Iterator[Stack]:
    database = make_database("postgresql", tmp_path)
    running = start_stack(database_url=database, var_dir=tmp_path, broker_url=broker,
                          broker_namespace=BROKER_NAMESPACE,
                          mappings_dir=MAPPINGS, poll_seconds=0.3)
    yield running
    running.stop()


def wait_for(what: str, check: Callable[[], bool], timeout: float = 20.0) -> float:
    """Seconds until ``check`` holds; fails the test naming ``what`` otherwise."""
    return wait_until(what, check, timeout)


def settle(stack: Stack, seconds: float = 1.0) -> None:
    """Wait until nothing is waiting to be applied and no job is pending or running for
    ``seconds`` (the system is quiet)."""
    quiet_since = time.monotonic()
    deadline = quiet_since + scaled(30)
    while time.monotonic() < deadline:
        with stack.container.engine.connect() as conn:
            waiting = inbox.backlog(conn).rows
        if open_jobs(stack) or waiting:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= seconds:
            return
        time.sleep(0.05)
    pytest.fail("jobs never settled")


def applied(stack: Stack) -> None:
    """Wait until every stored delivery has been applied."""
    def empty() -> bool:
        with stack.container.engine.connect() as conn:
            return inbox.backlog(conn).rows == 0
    wait_for("the inbox applied", empty)


def open_jobs(stack: Stack) -> int:
    with stack.container.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(jobs).where(
            jobs.c.status.in_(["pending", "running"]))).scalar_one())


def job_count(stack: Stack) -> int:
    with stack.container.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(jobs)).scalar_one())


def event_count(stack: Stack) -> int:
    with stack.container.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(events)).scalar_one())


def subject_of(stack: Stack, email: str) -> str | None:
    with stack.container.engine.connect() as conn:
        return stack.container.identity.by_email(conn, email)


def partner_withdrawn(stack: Stack, email: str) -> bool:
    subject = subject_of(stack, email)
    held = stack.emulators.partner.state(subject) if subject else None
    consents = held["consents"].values() if held else []
    return bool(consents) and all(c["status"] == "withdrawn" for c in consents)


def sf_opted_out(stack: Stack, email: str) -> bool:
    emu = stack.emulators.salesforce
    ids = emu.find_by_email(email)
    return bool(ids) and all((emu.record(i) or {}).get("HasOptedOutOfEmail") is True
                             for i in ids)


def mc_status(stack: Stack, email: str) -> str | None:
    return (stack.emulators.mailchimp.member(email) or {}).get("status")


def seed(stack: Stack, email: str) -> str:
    """A customer known to every system, subscribed; returns the HubSpot contact id."""
    return stack.seed_customer(email)
