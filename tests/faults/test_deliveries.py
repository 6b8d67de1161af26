"""The same webhook delivered many times, and batches delivered out of order."""

from __future__ import annotations

import time

import sqlalchemy as sa

from tests.faults.harness import Deployment, assert_end_state, wait_until
from tests.timing import scaled


def _counts(dep: Deployment) -> dict[str, int]:
    with dep.engine.connect() as conn:
        return {table: int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
                for table in ("events", "jobs", "ledger")}


def test_the_same_deliveries_many_times(dep: Deployment) -> None:
    people = dep.seed(10, 0, 4)
    sender = dep.emu.hubspot.webhook_sender
    first = len(sender.sent)
    dep.unsubscribe(people)
    dep.emu.hubspot.flush_webhooks(timeout=scaled(30))
    assert_end_state(dep, people, "unsubscribes before the duplicates", time.monotonic(),
                     record=False)
    before = _counts(dep)
    batches = range(first, len(sender.sent))
    started = time.monotonic()
    for attempt in range(1, 4):
        for index in batches:
            assert sender.resend(index) == 200  # the same bytes again
            assert sender.resend(index, attempt=attempt) == 200  # a retry: other bytes
    wait_until("the redeliveries applied", dep.quiet, timeout=30)
    assert _counts(dep) == before, "a redelivered event changed something"
    assert_end_state(dep, people, f"{6 * len(batches)} redeliveries of "
                     f"{len(batches)} batch(es), as the same bytes and as retries", started)


def test_batches_out_of_order(dep: Deployment) -> None:
    people = dep.seed(10, 0, 4)
    hubspot = dep.emu.hubspot
    hubspot.webhook_sender.hold()
    for email in people.via_hubspot:  # withdraw, grant again, withdraw everything
        contact = people.contacts[email]
        hubspot.ui_set_subscription(contact, 102, False)
        hubspot.ui_set_subscription(contact, 102, True)
        hubspot.ui_unsubscribe_all(contact)
    wait_until("the sender took every event into its held batches",
               hubspot.webhook_sender.all_held, timeout=10)
    started = time.monotonic()
    held = hubspot.webhook_sender.release(
        lambda batches: [i for i in reversed(range(len(batches))) for _ in (0, 1)])
    assert held >= 3 * len(people.via_hubspot)
    assert_end_state(dep, people, f"{held} batches newest first, each twice", started)
