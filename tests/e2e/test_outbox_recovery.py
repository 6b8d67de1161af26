"""The database is the truth: messages the broker lost (Redis restarted without
persistence, a RabbitMQ queue purged) are sent again by the dispatch tick."""

from __future__ import annotations

import json
import logging

from privasync.cli.main import configure_logging
from privasync.demo.stack import Stack
from tests.conftest import clear_broker, queued
from tests.e2e.conftest import (
    BOTH_BROKERS,
    mc_status,
    partner_withdrawn,
    seed,
    settle,
    sf_opted_out,
    wait_for,
)

EMAIL = "lost.message@example.org"


@BOTH_BROKERS
def test_jobs_whose_messages_the_broker_lost_are_sent_again_and_delivered(stack: Stack,
                                                                         broker: str):
    container = stack.container
    container.stop_background()  # no worker: messages pile up in the broker
    container.start_scheduler(with_applier=True)
    contact = seed(stack, EMAIL)
    stack.emulators.hubspot.ui_unsubscribe_all(contact)
    stack.emulators.hubspot.flush_webhooks()
    wait_for("dispatch messages queued", lambda: queued(broker) > 0)
    container.stop_background()
    # Redis restarted without persistence, or the RabbitMQ queue purged: all gone.
    assert clear_broker(broker) > 0 and queued(broker) == 0
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
