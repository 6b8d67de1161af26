"""The database is the truth: messages the broker lost are sent again."""

from __future__ import annotations

import json
import logging

from api.cli import configure_logging
from api.stack import Stack
from tests.conftest import clear_broker
from tests.e2e.conftest import (
    mc_status,
    partner_withdrawn,
    seed,
    settle,
    sf_opted_out,
    wait_for,
)

EMAIL = "lost.message@example.org"


def test_jobs_whose_messages_redis_lost_are_re_enqueued_and_delivered(stack: Stack,
                                                                      redis_url: str):
    container = stack.container
    container.stop_background()  # no worker: messages pile up in Redis
    contact = seed(stack, EMAIL)
    stack.emulators.hubspot.ui_unsubscribe_all(contact)
    stack.emulators.hubspot.flush_webhooks()
    clear_broker(redis_url)  # Redis restarted without persistence
    container.start_worker()
    container.start_scheduler()
    wait_for("Salesforce opt-out", lambda: sf_opted_out(stack, EMAIL), timeout=30)
    wait_for("Mailchimp unsubscribed", lambda: mc_status(stack, EMAIL) == "unsubscribed")
    wait_for("partner told", lambda: partner_withdrawn(stack, EMAIL))


def test_no_email_address_appears_in_any_log_line(stack: Stack, capfd):  # type: ignore[no-untyped-def]
    configure_logging("DEBUG")
    try:
        contact = seed(stack, EMAIL)
        stack.emulators.hubspot.ui_unsubscribe_all(contact)
        wait_for("Mailchimp unsubscribed", lambda: mc_status(stack, EMAIL) == "unsubscribed")
        wait_for("partner told", lambda: partner_withdrawn(stack, EMAIL))
        settle(stack)
        logging.getLogger("privasync.test").info("marker")
    finally:
        configure_logging("WARNING")
    out, err = capfd.readouterr()
    lines = [line for line in (out + err).splitlines() if line.strip()]
    assert any(json.loads(line).get("event") == "jobs.delivered"
               for line in lines if line.startswith("{"))
    assert not [line for line in lines if "lost.message" in line or "example.org" in line]
