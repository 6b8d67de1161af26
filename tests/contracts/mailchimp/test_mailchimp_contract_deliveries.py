"""The webhook deliveries privasync receives: each event the emulator posts is the form
Mailchimp documents (privasync.emulators.contracts.mailchimp.deliveries), and the connector reads
every one of them without refusing it."""

from __future__ import annotations

from datetime import UTC, datetime

from connectors.mailchimp import MailchimpConnector
from privasync.emulators.contracts.mailchimp.deliveries import parse_delivery
from privasync.emulators.contracts.mailchimp.lists import EVENT_TYPES
from privasync.emulators.mailchimp import MailchimpEmulator
from tests.contracts.mailchimp.conftest import LIST, Intake

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def test_every_member_event_is_posted_as_documented_and_read_by_the_connector(
        mc: MailchimpEmulator, connector: MailchimpConnector, intake: Intake) -> None:
    intake.bodies.clear()
    mc.configure_webhook(f"{intake.url}/webhooks/mailchimp/contract-token")
    mc.add_member("hook@example.com", merge_fields={"FNAME": "H"})
    mc.add_member("bounce@example.com")
    mc.add_member("complain@example.com")
    mc.user_update_profile("hook@example.com", FNAME="Hana")
    mc.user_change_email("hook@example.com", "hook2@example.com")
    mc.user_sms_subscribe("hook2@example.com", "+15555550123")
    mc.user_change_sms_phone("hook2@example.com", "+15555550124")
    mc.user_sms_unsubscribe("hook2@example.com")
    mc.user_unsubscribe("hook2@example.com")
    mc.user_subscribe("new.signup@example.com")
    mc.mark_cleaned("bounce@example.com")
    mc.mark_cleaned("complain@example.com", reason="abuse")
    assert mc.flush_webhooks()
    kinds = []
    for body in intake.bodies:
        delivery, _ = parse_delivery(body)
        kinds.append(delivery.type)
        connector.parse_webhook(body, NOW)  # raises BadInput if it refused it
    assert set(kinds) == set(EVENT_TYPES) - {"campaign", "sms_campaign"}


def test_the_documented_examples_validate_and_are_read(connector: MailchimpConnector) -> None:
    """The guide's unsubscribe example and a campaign delivery as Mailchimp describes it
    (data: id, subject, status, reason unless sent), on this list."""
    unsubscribe = ("type=unsubscribe&fired_at=2009-03-26+21%3A40%3A57&data%5Baction%5D=unsub"
                   "&data%5Breason%5D=manual&data%5Bid%5D=8a25ff1d98&data%5Blist_id%5D={list}"
                   "&data%5Bemail%5D=api%2Bunsub%40mailchimp.com&data%5Bemail_type%5D=html"
                   "&data%5Bmerges%5D%5BEMAIL%5D=api%2Bunsub%40mailchimp.com"
                   "&data%5Bmerges%5D%5BFNAME%5D=Mailchimp&data%5Bip_opt%5D=10.20.10.30"
                   "&data%5Bcampaign_id%5D=cb398d21d2")
    campaign = ("type=campaign&fired_at=2009-03-26+22%3A15%3A09&data%5Bid%5D=5aa2102003"
                "&data%5Bsubject%5D=Test+Campaign+Subject&data%5Bstatus%5D=sent"
                "&data%5Breason%5D=&data%5Blist_id%5D={list}")
    sms_campaign = ("type=sms_campaign&fired_at=2026-05-01+08%3A00%3A00&data%5Bid%5D=9f1e2d"
                    "&data%5Bstatus%5D=sent&data%5Blist_id%5D={list}")
    for text, events in ((unsubscribe, 1), (campaign, 0), (sms_campaign, 0)):
        body = text.format(list=LIST).encode()
        parse_delivery(body)
        assert len(connector.parse_webhook(body, NOW)) == events
