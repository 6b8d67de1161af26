"""The database connection cut for a few seconds (every open connection reset, new ones
refused) while privasync takes deliveries in, applies them, and delivers jobs."""

from __future__ import annotations

import time

import sqlalchemy as sa

from core.db import jobs
from tests.faults.harness import Deployment, assert_end_state, wait_until
from tests.timing import scaled

CUT_SECONDS = 3.0


def _running(dep: Deployment) -> int:
    with dep.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(jobs).where(
            jobs.c.status == "running")).scalar_one())


def test_cut_during_intake(dep: Deployment) -> None:
    # HubSpot retries a refused delivery (up to 10 times over 24 hours; the emulator's
    # schedule outlasts the cut); what the API could not store it must refuse, not lose.
    people = dep.seed(20, 0, 5)
    before = len(dep.emu.hubspot.webhook_deliveries)

    def statuses() -> set[int]:
        return {status for status, _ in dep.emu.hubspot.webhook_deliveries[before:]}
    dep.db_proxy.cut()
    dep.unsubscribe(people)
    # Down until the API has had to refuse a delivery it could not store.
    wait_until("the API refused a delivery while the database was cut",
               lambda: 503 in statuses(), timeout=30)
    dep.db_proxy.restore()
    restored = time.monotonic()
    dep.emu.hubspot.flush_webhooks(timeout=scaled(60))
    assert statuses() <= {0, 200, 503}, statuses()  # refused while down, never a 500
    assert_end_state(dep, people, "database cut during intake", restored)


def test_cut_while_applying(dep: Deployment) -> None:
    people = dep.seed(20, 10, 5)
    dep.pause("applier")
    dep.unsubscribe(people)
    dep.emu.hubspot.flush_webhooks(timeout=scaled(60))
    dep.emu.mailchimp.flush_webhooks(timeout=scaled(60))
    dep.resume("applier")
    dep.db_proxy.cut()
    time.sleep(CUT_SECONDS)
    dep.db_proxy.restore()
    assert_end_state(dep, people, "database cut while applying", time.monotonic())


def test_cut_during_delivery(dep: Deployment) -> None:
    people = dep.seed(10, 10, 5)
    dep.emu.mailchimp.latency_seconds = 1.0
    dep.unsubscribe(people)
    wait_until("a delivery in flight", lambda: _running(dep) > 0, timeout=30)
    dep.db_proxy.cut()
    time.sleep(CUT_SECONDS)
    dep.db_proxy.restore()
    dep.emu.mailchimp.latency_seconds = 0.0
    assert_end_state(dep, people, "database cut during delivery", time.monotonic())
