"""The spine under its promises: the answer never waits for applying or delivering."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from api.stack import Stack
from core import inbox
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
