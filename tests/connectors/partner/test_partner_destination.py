"""Partners receive signed consent for their own purposes only, and acknowledge it."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from connectors.partner import PartnerConnector
from connectors.partner.destination import disclosed_ref
from core.errors import AuthError, ConfigError, PermanentError, TransientError
from core.mappings import Partner
from core.model import (
    Channel,
    ConsentState,
    ConsentStatus,
    DestinationRecord,
    DestinationSubject,
)
from privasync.emulators.http import Fault
from privasync.emulators.partner import PartnerEmulator
from tests.connectors.partner.conftest import KEYS
from tests.emulators.conftest import serve
from tests.timing import scaled

SECRET = "partner-secret"
WHEN = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def partner_policy(identifiers: tuple[str, ...] = ("email",)) -> Partner:
    return Partner(url="http://127.0.0.1:1/unused", secret_setting="PARTNER_SECRET",
                   purposes=("product_news", "offers"), agreement="DPA-1",
                   identifiers=identifiers)


@pytest.fixture(scope="module")
def running() -> Iterator[PartnerEmulator]:
    yield from serve(PartnerEmulator(secret=SECRET))


@pytest.fixture
def partner(running: PartnerEmulator) -> PartnerEmulator:
    running.clear_faults()
    return running


def connector(partner: PartnerEmulator, *, secret: str = SECRET,
              identifiers: tuple[str, ...] = ("email",)) -> PartnerConnector:
    return PartnerConnector(name="contact_centre", partner=partner_policy(identifiers),
                            url=f"{partner.url}{partner.path}", secret=secret, keys=KEYS,
                            timeout=scaled(5))


def subject(sid: str) -> DestinationSubject:
    consents = (
        ConsentState("offers", Channel.EMAIL, ConsentStatus.WITHDRAWN, WHEN, "hubspot"),
        ConsentState("product_news", Channel.EMAIL, ConsentStatus.GRANTED, WHEN, "mailchimp"),
        ConsentState("partner_sharing", Channel.EMAIL, ConsentStatus.GRANTED, WHEN, "crm"),
        ConsentState("research", Channel.PHONE, ConsentStatus.GRANTED, WHEN, "crm"),
    )
    return DestinationSubject(subject_id=sid, email=f"{sid}@example.com", refs=(),
                              consents=consents)


def test_the_partner_receives_only_its_purposes_and_declared_identifiers(
        partner: PartnerEmulator) -> None:
    outcomes = connector(partner).apply_consent([subject("p1"), subject("p2")])
    state = partner.state("p1")
    assert state == {"email": "p1@example.com", "fields": {}, "consents": {
        "offers/email": {"status": "withdrawn", "occurred_at": WHEN.isoformat()},
        "product_news/email": {"status": "granted", "occurred_at": WHEN.isoformat()}}}
    assert [o.subject_id for o in outcomes] == ["p1", "p2"]
    assert all(o.error is None for o in outcomes)
    receipt = outcomes[0].detail["partner_event_id"]
    assert receipt == outcomes[1].detail["partner_event_id"]
    assert partner.received_event_ids[-1] == receipt


def test_each_address_sent_is_remembered_as_a_keyed_reference_at_the_partner(
        partner: PartnerEmulator) -> None:
    """What an erasure may name later: the address went to this partner (a keyed hash)."""
    [outcome] = connector(partner).apply_consent([subject("p1")])
    assert outcome.learned_refs == (disclosed_ref(KEYS, "P1@example.com"),)
    assert "p1@example.com" not in outcome.learned_refs[0]
    [pushed] = connector(partner).push_fields([record("p1", first_name="Ada")])
    assert pushed.learned_refs == outcome.learned_refs


def test_a_partner_without_the_email_identifier_never_receives_an_address(
        partner: PartnerEmulator) -> None:
    [outcome] = connector(partner, identifiers=()).apply_consent([subject("p3")])
    state = partner.state("p3")
    assert state is not None and "email" not in state
    assert set(state["consents"]) == {"offers/email", "product_news/email"}
    assert outcome.learned_refs == ()  # so an erasure will not name one either


def test_one_batch_is_one_signed_post(partner: PartnerEmulator) -> None:
    before = partner.total_calls()
    connector(partner).apply_consent([subject(f"b{i}") for i in range(100)])
    assert partner.total_calls() == before + 1
    assert connector(partner).apply_consent([]) == []
    assert partner.total_calls() == before + 1


def test_a_server_error_is_transient_and_the_next_attempt_is_delivered(
        partner: PartnerEmulator) -> None:
    partner.inject(Fault(500))
    with pytest.raises(TransientError):
        connector(partner).apply_consent([subject("p4")])
    assert partner.state("p4") is None
    [outcome] = connector(partner).apply_consent([subject("p4")])
    assert outcome.error is None and partner.state("p4") is not None


def test_a_bad_gateway_blip_is_retried_with_the_same_event_id(partner: PartnerEmulator) -> None:
    partner.inject(Fault(503))
    [outcome] = connector(partner).apply_consent([subject("p5")])
    assert partner.received_event_ids[-1] == outcome.detail["partner_event_id"]


def test_a_rate_limit_keeps_the_partners_retry_after(partner: PartnerEmulator) -> None:
    partner.inject(Fault(429, headers={"Retry-After": "12"}))
    with pytest.raises(TransientError) as limited:
        connector(partner).apply_consent([subject("p6")])
    assert limited.value.retry_after == 12.0


def test_a_rejected_signature_is_an_auth_error(partner: PartnerEmulator) -> None:
    with pytest.raises(AuthError):
        connector(partner, secret="rotated-too-early").apply_consent([subject("p7")])
    assert partner.state("p7") is None


def test_a_refused_payload_is_permanent(partner: PartnerEmulator) -> None:
    partner.inject(Fault(422))
    with pytest.raises(PermanentError) as refused:
        connector(partner).apply_consent([subject("p8")])
    assert not isinstance(refused.value, AuthError)
    assert "p8@example.com" not in str(refused.value)


def test_check_connects_without_sending_and_reports_an_unreachable_partner(
        partner: PartnerEmulator) -> None:
    before = partner.total_calls()
    connector(partner).check()
    assert partner.total_calls() == before
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    dead = PartnerConnector(name="gone", partner=partner_policy(),
                            url=f"http://127.0.0.1:{closed_port}/x", secret=SECRET, keys=KEYS,
                            timeout=1)
    with pytest.raises(TransientError):
        dead.check()


@pytest.mark.parametrize("url", ["ftp://partner.example/x", "not a url", "http://host:99999/"])
def test_a_url_that_is_not_http_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError):
        PartnerConnector(name="bad", partner=partner_policy(), url=url, secret=SECRET,
                         keys=KEYS)


def test_the_destination_is_named_after_the_partner(partner: PartnerEmulator) -> None:
    c = connector(partner)
    assert (c.name, c.batch_size, c.record_batch_size) == ("partner:contact_centre", 100, 100)


def test_consent_batches_say_they_are_consent(partner: PartnerEmulator) -> None:
    [outcome] = connector(partner).apply_consent([subject("k1")])
    event_id = outcome.detail["partner_event_id"]
    assert partner.received_kinds[event_id] == "consent"
    body = json.loads(connector(partner).payload([subject("k1")], "ev", WHEN))
    assert body["kind"] == "consent" and "fields" not in body["subjects"][0]


def record(sid: str, **fields: str | None) -> DestinationRecord:
    return DestinationRecord(subject_id=sid, email=f"{sid}@example.com", refs=(),
                             fields=fields)


def test_push_fields_delivers_exactly_the_given_fields_in_one_signed_post(
        partner: PartnerEmulator) -> None:
    before = partner.total_calls()
    outcomes = connector(partner).push_fields([
        record("f1", first_name="Ada", city="Leeds"), record("f2", phone="+44 20 7946 0000")])
    assert partner.total_calls() == before + 1
    assert [(o.subject_id, o.error) for o in outcomes] == [("f1", None), ("f2", None)]
    event_id = outcomes[0].detail["partner_event_id"]
    assert partner.received_kinds[event_id] == "record"
    assert partner.state("f1") == {"email": "f1@example.com", "consents": {},
                                   "fields": {"first_name": "Ada", "city": "Leeds"}}
    state = partner.state("f2")
    assert state is not None and state["fields"] == {"phone": "+44 20 7946 0000"}


def test_a_record_push_keeps_consent_and_a_cleared_field_disappears(
        partner: PartnerEmulator) -> None:
    connector(partner).apply_consent([subject("f3")])
    connector(partner).push_fields([record("f3", first_name="Ada", city="Leeds")])
    connector(partner).push_fields([record("f3", city=None)])
    state = partner.state("f3")
    assert state is not None
    assert state["fields"] == {"first_name": "Ada"}
    assert set(state["consents"]) == {"offers/email", "product_news/email"}


def test_a_partner_without_the_email_identifier_gets_fields_without_an_address(
        partner: PartnerEmulator) -> None:
    connector(partner, identifiers=()).push_fields([record("f4", first_name="Ada")])
    body = json.loads(connector(partner, identifiers=()).record_payload(
        [record("f4", first_name="Ada")], "ev", WHEN))
    assert body["kind"] == "record"
    assert body["subjects"] == [{"subject_id": "f4", "fields": {"first_name": "Ada"}}]
    state = partner.state("f4")
    assert state is not None and "email" not in state


def test_a_record_push_that_fails_is_transient_and_stores_nothing(
        partner: PartnerEmulator) -> None:
    partner.inject(Fault(500))
    with pytest.raises(TransientError) as failed:
        connector(partner).push_fields([record("f5", first_name="Ada")])
    assert "Ada" not in str(failed.value) and "f5@example.com" not in str(failed.value)
    assert partner.state("f5") is None
    assert connector(partner).push_fields([]) == []
