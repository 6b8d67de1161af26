"""The spine under its promises: the answer never waits for applying or delivering."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from core import inbox
from privasync.demo.stack import Stack
from tests.e2e.conftest import mc_status, partner_withdrawn, seed, settle, sf_opted_out, wait_for
from tests.e2e.test_unsubscribe_everywhere import _optout_event, _signed_post

EMAIL = "applier.stopped@example.org"


def test_a_webhook_is_answered_while_the_applier_is_stopped_and_applied_once_it_runs(
        stack: Stack):
    contact = seed(stack, EMAIL)
    settle(stack)
    container = stack.container
    container.stop_background()  # no applier, no worker, no scheduler
    started = time.monotonic()
    answer = _signed_post(stack, json.dumps(_optout_event(
        contact, 4242, datetime.now(UTC))).encode())
    answered_in = time.monotonic() - started
    assert answer.status_code == 200 and answer.json() == {"accepted": 1, "duplicate": False}
    with container.engine.connect() as conn:
        assert inbox.backlog(conn).rows == 1
    assert not sf_opted_out(stack, EMAIL)
    print(f"answered in {answered_in * 1000:.0f} ms with nothing running behind")  # noqa: T201
    container.start_worker()
    container.start_scheduler()
    wait_for("Salesforce opt-out", lambda: sf_opted_out(stack, EMAIL))
    wait_for("Mailchimp unsubscribed", lambda: mc_status(stack, EMAIL) == "unsubscribed")
    wait_for("partner told", lambda: partner_withdrawn(stack, EMAIL))


def test_members_read_in_bulk_are_unsubscribed_without_a_look_up_each(stack: Stack):
    from privasync.app.pollers import directory_refresher

    container = stack.container
    emails = [f"member{i}@example.org" for i in range(5)]
    contacts = [seed(stack, e) for e in emails]
    settle(stack)
    assert container.connector("mailchimp") is not None
    listed = directory_refresher(container.engine, container.keyring, "mailchimp",
                                 container.connector("mailchimp"))(datetime.now(UTC))
    assert listed == 5
    seen = len(stack.emulators.mailchimp.log)
    for contact in contacts:
        stack.emulators.hubspot.ui_unsubscribe_all(contact)
    for email in emails:
        wait_for("Mailchimp unsubscribed", lambda e=email: mc_status(stack, e) == "unsubscribed")
    wait_for("the batch call logged", lambda: any(
        c[0] == "POST" for c in list(stack.emulators.mailchimp.log)[seen:]))
    calls = list(stack.emulators.mailchimp.log)[seen:]
    assert not [c for c in calls if c[0] == "GET"], calls  # no member looked up one by one
