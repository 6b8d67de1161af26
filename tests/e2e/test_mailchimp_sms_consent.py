"""An SMS STOP in Mailchimp is a withdrawal on the SMS channel (R2), end to end: Mailchimp's
webhook, the intake, the consent record; the e-mail membership is left as it is, and a new
SMS number is acknowledged without anything kept."""

from __future__ import annotations

from sqlalchemy import select

from core.db import consents
from privasync.demo.stack import Stack
from tests.e2e.conftest import event_count, mc_status, seed, settle, subject_of, wait_for

EMAIL = "sms.person@example.nl"


def channel_status(stack: Stack, email: str) -> set[tuple[str, str, str]]:
    subject = subject_of(stack, email)
    with stack.container.engine.connect() as conn:
        rows = conn.execute(select(consents.c.purpose, consents.c.channel, consents.c.status)
                            .where(consents.c.subject_id == subject)).all()
    return {(r.purpose, r.channel, r.status) for r in rows}


def test_an_sms_stop_in_mailchimp_withdraws_on_sms_and_leaves_the_email_membership(
        stack: Stack) -> None:
    seed(stack, EMAIL)
    stack.emulators.mailchimp.user_sms_subscribe(EMAIL, "+15555550123")
    stack.emulators.mailchimp.user_sms_unsubscribe(EMAIL)
    wait_for("SMS withdrawal recorded", lambda: {
        ("product_news", "sms", "withdrawn"), ("offers", "sms", "withdrawn")}
        <= channel_status(stack, EMAIL))
    settle(stack)
    assert mc_status(stack, EMAIL) == "subscribed"


def test_a_new_sms_number_is_acknowledged_and_nothing_is_recorded(stack: Stack) -> None:
    seed(stack, EMAIL)
    settle(stack)
    before = event_count(stack)
    stack.emulators.mailchimp.user_change_sms_phone(EMAIL, "+15555550199")
    assert stack.emulators.mailchimp.flush_webhooks()
    settle(stack)
    [delivery] = [d for d in stack.emulators.mailchimp.webhook_deliveries
                  if d.event_type == "upsms"]
    assert delivery.status == 200
    assert event_count(stack) == before
