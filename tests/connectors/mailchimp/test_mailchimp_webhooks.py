"""Mailchimp webhook deliveries become canonical events, or a BadInput naming the field."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest

from connectors.mailchimp import MailchimpConnector, subscriber_hash
from core.errors import BadInput
from core.model import (
    Channel,
    ConsentChanged,
    ConsentStatus,
    FieldValue,
    IdentifierChanged,
    RecordChanged,
    SubjectSeen,
)
from tests.connectors.mailchimp.conftest import CONSENT_ONLY, KEYS, LIST, WITH_FIELDS

EMAIL = "x.person@example.com"
RECEIVED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MAPPING = CONSENT_ONLY
FIRED = datetime(2026, 3, 1, 10, 20, 30, tzinfo=UTC)


@pytest.fixture
def connector() -> MailchimpConnector:
    return MailchimpConnector(base_url="http://127.0.0.1:9/3.0", api_key="k-us6", list_id=LIST,
                              mapping=MAPPING, keys=KEYS)


def form(event_type: str, **data: str) -> bytes:
    pairs = [("type", event_type), ("fired_at", "2026-03-01 10:20:30")]
    pairs += [(f"data[{k.replace('__', '][')}]", v) for k, v in data.items()]
    return urlencode(pairs).encode()


def unsubscribe_body(**extra: str) -> bytes:
    fields = {"action": "unsub", "reason": "manual", "id": "8a25ff1d98", "list_id": LIST,
              "email": EMAIL, "email_type": "html", "merges__EMAIL": EMAIL,
              "merges__FNAME": "Xe", "ip_opt": "10.20.10.30", **extra}
    return form("unsubscribe", **fields)


def test_an_unsubscribe_withdraws_every_purpose_the_list_covers(
        connector: MailchimpConnector) -> None:
    body = unsubscribe_body()
    [event] = connector.parse_webhook(body, RECEIVED)
    assert isinstance(event, ConsentChanged)
    assert {(c.purpose, c.channel, c.status) for c in event.changes} == {
        ("product_news", Channel.EMAIL, ConsentStatus.WITHDRAWN),
        ("offers", Channel.EMAIL, ConsentStatus.WITHDRAWN)}
    assert event.subject.email == EMAIL
    # Found by the address alone: no member id (the MD5 of the address) is handed on, and
    # the delivery's id is a keyed hash of its bytes (they hold the address).
    assert event.subject.ref is None
    assert event.meta.source == "mailchimp"
    assert event.meta.kind == "mailchimp.unsubscribe"
    assert event.meta.source_event_id == KEYS.delivery_key(body)
    assert hashlib.sha256(body).hexdigest() != event.meta.source_event_id
    assert subscriber_hash(EMAIL) not in repr(event.meta)
    assert event.meta.occurred_at == datetime(2026, 3, 1, 10, 20, 30, tzinfo=UTC)


def test_a_subscribe_grants_with_signup_form_evidence(connector: MailchimpConnector) -> None:
    [event] = connector.parse_webhook(form("subscribe", id="8a25ff1d98", list_id=LIST,
                                           email=EMAIL, merges__EMAIL=EMAIL), RECEIVED)
    assert isinstance(event, ConsentChanged)
    assert {c.status for c in event.changes} == {ConsentStatus.GRANTED}
    assert event.evidence is not None
    assert event.evidence.method == "mailchimp_signup_form"
    assert event.evidence.proof_reference == (
        f"mailchimp:list:{LIST}:member:8a25ff1d98:2026-03-01T10:20:30+00:00")


def test_a_spam_complaint_is_an_objection(connector: MailchimpConnector) -> None:
    [event] = connector.parse_webhook(form("cleaned", list_id=LIST, campaign_id="c1",
                                           reason="abuse", email=EMAIL), RECEIVED)
    assert isinstance(event, ConsentChanged)
    assert {c.status for c in event.changes} == {ConsentStatus.WITHDRAWN}


def test_a_hard_bounce_and_a_profile_change_only_show_the_subject(
        connector: MailchimpConnector) -> None:
    bounced = connector.parse_webhook(form("cleaned", list_id=LIST, reason="hard", email=EMAIL),
                                      RECEIVED)
    profile = connector.parse_webhook(form("profile", id="1", list_id=LIST, email=EMAIL,
                                           merges__FNAME="New"), RECEIVED)
    assert [type(e) for e in bounced + profile] == [SubjectSeen, SubjectSeen]
    assert profile[0].meta.kind == "mailchimp.profile"


def test_a_profile_change_of_mapped_merge_fields_is_a_record_change() -> None:
    connector = MailchimpConnector(base_url="http://127.0.0.1:9/3.0", api_key="k-us6",
                                   list_id=LIST, mapping=WITH_FIELDS, keys=KEYS)
    [event] = connector.parse_webhook(form("profile", id="1", list_id=LIST, email=EMAIL,
                                           merges__EMAIL=EMAIL, merges__FNAME="Xe",
                                           merges__LNAME="Person", merges__INTERESTS="tea",
                                           merges__BIRTHDAY=""), RECEIVED)
    assert isinstance(event, RecordChanged)
    assert event.meta.kind == "mailchimp.profile"
    assert event.subject.email == EMAIL
    assert event.subject.ref is None
    assert dict(event.fields) == {"first_name": FieldValue("Xe", collected_at=FIRED),
                                  "product_interests": FieldValue("tea", collected_at=FIRED)}


def test_a_profile_change_with_no_mapped_merge_value_only_shows_the_subject() -> None:
    connector = MailchimpConnector(base_url="http://127.0.0.1:9/3.0", api_key="k-us6",
                                   list_id=LIST, mapping=WITH_FIELDS, keys=KEYS)
    [event] = connector.parse_webhook(form("profile", id="1", list_id=LIST, email=EMAIL,
                                           merges__FNAME="", merges__LNAME="Person"), RECEIVED)
    assert isinstance(event, SubjectSeen)


def test_a_merge_field_sent_as_a_group_is_refused_without_the_address() -> None:
    connector = MailchimpConnector(base_url="http://127.0.0.1:9/3.0", api_key="k-us6",
                                   list_id=LIST, mapping=WITH_FIELDS, keys=KEYS)
    with pytest.raises(BadInput, match=r"data\[merges\]\[FNAME\]") as refused:
        connector.parse_webhook(form("profile", list_id=LIST, email=EMAIL,
                                     merges__FNAME__x="Xe"), RECEIVED)
    assert EMAIL not in str(refused.value)


def test_an_address_change_names_the_old_address_and_the_new_one(
        connector: MailchimpConnector) -> None:
    [event] = connector.parse_webhook(form("upemail", list_id=LIST, new_id="n1",
                                           new_email="new@example.com", old_email=EMAIL),
                                      RECEIVED)
    assert isinstance(event, IdentifierChanged)
    assert event.subject.email == EMAIL
    assert event.new_email == "new@example.com"
    assert event.new_ref is None


def test_a_campaign_event_changes_nothing(connector: MailchimpConnector) -> None:
    body = form("campaign", id="c1", subject="Spring", status="sent", reason="", list_id=LIST)
    assert connector.parse_webhook(body, RECEIVED) == []


def test_a_fired_at_ahead_of_our_clock_is_held_to_the_time_received(
        connector: MailchimpConnector) -> None:
    early = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    [event] = connector.parse_webhook(unsubscribe_body(), early)
    assert event.meta.occurred_at == early


@pytest.mark.parametrize(("body", "field"), [
    (b"\xff\xfe=1", "body"),
    (b"type=unsubscribe&&fired_at", "body"),
    (urlencode({"fired_at": "2026-03-01 10:20:30", "data[email]": EMAIL}).encode(), "type"),
    (form("resubscribe", list_id=LIST, email=EMAIL), "type"),
    (form("unsubscribe", list_id=LIST), "data[email]"),
    (form("unsubscribe", list_id=LIST, email="not-an-address"), "data[email]"),
    (form("upemail", list_id=LIST, old_email=EMAIL), "data[new_email]"),
    (form("upemail", list_id=LIST, new_email=EMAIL), "data[old_email]"),
    (form("unsubscribe", list_id="otherlist1", email=EMAIL), "data[list_id]"),
    (form("unsubscribe", email=EMAIL), "data[list_id]"),
    (urlencode({"type": "unsubscribe", "fired_at": "01/03/2026 10:20",
                "data[list_id]": LIST, "data[email]": EMAIL}).encode(), "fired_at"),
    (urlencode({"type": "unsubscribe", "data[list_id]": LIST,
                "data[email]": EMAIL}).encode(), "fired_at"),
    (urlencode({"type": "unsubscribe", "fired_at": "2026-03-01 10:20:30", "data[list_id]": LIST,
                "data[email]": EMAIL, "data[email][x]": "y"}).encode(), "email"),
])
def test_a_bad_delivery_is_refused_naming_the_field_and_never_the_address(
        connector: MailchimpConnector, body: bytes, field: str) -> None:
    with pytest.raises(BadInput) as refused:
        connector.parse_webhook(body, RECEIVED)
    message = str(refused.value)
    assert field in message
    assert "@" not in message and EMAIL not in message


def test_a_naive_received_at_is_refused(connector: MailchimpConnector) -> None:
    with pytest.raises(BadInput):
        connector.parse_webhook(unsubscribe_body(), datetime(2026, 3, 1, 12, 0))  # noqa: DTZ001


# -- the SMS events (Mailchimp's webhook events since its 2026-04-30 definition) -----------
PHONE = "+15555550123"


def sms_body(event_type: str, **extra: str) -> bytes:
    return form(event_type, id="8a25ff1d98", list_id=LIST, email=EMAIL,
                sms_phone_number=PHONE, **extra)


def test_an_sms_unsubscribe_withdraws_the_list_purposes_on_the_sms_channel_only(
        connector: MailchimpConnector) -> None:
    [event] = connector.parse_webhook(sms_body("sms_unsubscribe"), RECEIVED)
    assert isinstance(event, ConsentChanged)
    assert {(c.purpose, c.channel, c.status) for c in event.changes} == {
        ("product_news", Channel.SMS, ConsentStatus.WITHDRAWN),
        ("offers", Channel.SMS, ConsentStatus.WITHDRAWN)}
    assert event.subject.email == EMAIL
    assert event.meta.kind == "mailchimp.sms_unsubscribe"
    assert event.evidence is not None and event.evidence.method == "mailchimp_sms_unsub"
    assert PHONE not in repr(event)


def test_an_sms_subscribe_grants_on_sms_as_a_subscribe_grants_on_email(
        connector: MailchimpConnector) -> None:
    [event] = connector.parse_webhook(sms_body("sms_subscribe"), RECEIVED)
    assert isinstance(event, ConsentChanged)
    assert {(c.channel, c.status) for c in event.changes} == {
        (Channel.SMS, ConsentStatus.GRANTED)}
    assert event.evidence is not None
    assert event.evidence.method == "mailchimp_sms_signup"
    assert event.evidence.proof_reference == (
        f"mailchimp:list:{LIST}:member:8a25ff1d98:2026-03-01T10:20:30+00:00")
    assert PHONE not in repr(event)


@pytest.mark.parametrize("event_type", ["upsms", "sms_campaign"])
def test_a_new_sms_number_or_an_sms_campaign_is_acknowledged_and_nothing_is_kept(
        connector: MailchimpConnector, event_type: str) -> None:
    assert connector.parse_webhook(sms_body(event_type), RECEIVED) == []


def test_an_sms_unsubscribe_without_an_address_is_refused_naming_the_field(
        connector: MailchimpConnector) -> None:
    body = form("sms_unsubscribe", id="8a25ff1d98", list_id=LIST, sms_phone_number=PHONE)
    with pytest.raises(BadInput, match=r"data\[email\] is missing") as refused:
        connector.parse_webhook(body, RECEIVED)
    assert PHONE not in str(refused.value)
