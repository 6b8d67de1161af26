"""Partners are asked to erase in one signed batch, and say so later in a signed ack."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

import connectors.partner.destination as destination
from connectors.partner import PartnerConnector
from connectors.partner.destination import disclosed_ref
from core.errors import AuthError, PermanentError, TransientError
from core.mappings import Partner
from core.model import (
    Channel,
    ConsentState,
    ConsentStatus,
    DestinationSubject,
    ErasureStatus,
    PersonAt,
)
from privasync.emulators.http import Fault
from privasync.emulators.partner import PartnerEmulator
from tests.connectors.partner.conftest import KEYS
from tests.emulators.conftest import Sink, serve, started
from tests.timing import scaled

SECRET = "partner-secret"
ACKS = "/webhooks/partners/contact_centre/ack"
WHEN = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def running(sink: Sink) -> Iterator[PartnerEmulator]:
    yield from serve(PartnerEmulator(secret=SECRET, ack_url=f"{sink.url}{ACKS}",
                                     auto_ack=False))


@pytest.fixture
def partner(running: PartnerEmulator) -> PartnerEmulator:
    running.clear_faults()
    return running


def connector(partner: PartnerEmulator, *, secret: str = SECRET,
              identifiers: tuple[str, ...] = ("email",)) -> PartnerConnector:
    policy = Partner(url="http://127.0.0.1:1/unused", secret_setting="PARTNER_SECRET",
                     purposes=("offers",), agreement="DPA-1", identifiers=identifiers)
    return PartnerConnector(name="contact_centre", partner=policy,
                            url=f"{partner.url}{partner.path}", secret=secret, keys=KEYS,
                            timeout=scaled(5))


def person(sid: str, *emails: str, sent: tuple[str, ...] | None = None) -> PersonAt:
    """A person to erase; ``sent``: the addresses updates carried to the partner (default:
    all of them), remembered at it as keyed references."""
    emails = emails or (f"{sid}@example.com",)
    return PersonAt(subject_id=sid, request_id=f"req-{sid}", emails=emails,
                    refs=tuple(disclosed_ref(KEYS, e) for e in (emails if sent is None
                                                                 else sent)))


def held_by(partner: PartnerEmulator, sid: str) -> None:
    consent = ConsentState("offers", Channel.EMAIL, ConsentStatus.GRANTED, WHEN, "crm")
    connector(partner).apply_consent([DestinationSubject(
        subject_id=sid, email=f"{sid}@example.com", refs=(), consents=(consent,))])
    assert partner.state(sid) is not None


def test_an_erasure_batch_reaches_the_partner_signed_and_each_person_awaits_its_ack(
        partner: PartnerEmulator) -> None:
    before = partner.total_calls()
    receipts = connector(partner).erase([person("e1", "e1@example.com", "old@example.com"),
                                         person("e2")])
    assert partner.total_calls() == before + 1
    assert [(r.subject_id, r.status, r.vendor_request_id, r.vendor_status, r.error)
            for r in receipts] == [
        ("e1", ErasureStatus.AWAITING_ACK, "req-e1", 200, None),
        ("e2", ErasureStatus.AWAITING_ACK, "req-e2", 200, None)]
    assert {r.verified for r in receipts} == {"asked; acknowledgement due"}
    assert partner.erasure("req-e1") == {"subject_id": "e1", "status": "pending",
                                         "emails": ["e1@example.com", "old@example.com"],
                                         "ack_status": None}
    assert partner.received_kinds[partner.received_event_ids[-1]] == "erasure"


def test_a_partner_without_the_email_identifier_is_asked_by_subject_id_only(
        partner: PartnerEmulator) -> None:
    connector(partner, identifiers=()).erase([person("e3")])
    held = partner.erasure("req-e3")
    assert held is not None and held["emails"] == [] and held["subject_id"] == "e3"
    body = json.loads(connector(partner, identifiers=()).erasure_payload(
        [person("e3")], "ev", WHEN))
    assert body == {"event_id": "ev", "sent_at": WHEN.isoformat(), "kind": "erasure",
                    "requests": [{"request_id": "req-e3", "subject_id": "e3"}]}


def test_an_erasure_names_only_the_addresses_the_partner_was_sent(
        partner: PartnerEmulator) -> None:
    """A second address privasync knows but never disclosed to the partner stays ours."""
    connector(partner).erase([person("e10", "e10@example.com", "private@example.com",
                                     sent=("E10@example.com",))])
    held = partner.erasure("req-e10")
    assert held is not None and held["emails"] == ["e10@example.com"]


def test_a_person_the_partner_was_never_sent_an_address_of_is_named_by_subject_id_only(
        partner: PartnerEmulator) -> None:
    body = json.loads(connector(partner).erasure_payload(
        [person("e11", "e11@example.com", sent=())], "ev", WHEN))
    assert body["requests"] == [{"request_id": "req-e11", "subject_id": "e11"}]


def test_nothing_to_erase_sends_nothing(partner: PartnerEmulator) -> None:
    before = partner.total_calls()
    assert connector(partner).erase([]) == []
    assert partner.total_calls() == before


def test_the_partners_completed_ack_verifies_and_parses_and_its_data_is_gone(
        partner: PartnerEmulator, sink: Sink) -> None:
    held_by(partner, "e4")
    c = connector(partner)
    c.erase([person("e4")])
    assert partner.state("e4") is not None  # nothing is erased before the partner says so
    assert partner.ack("req-e4", detail="removed from dialler and CRM") == 200
    assert partner.state("e4") is None
    [delivery] = [d for d in sink.received(ACKS) if b"req-e4" in d.body]
    received_at = datetime.now(UTC)
    event_id = c.verify_ack(delivery.headers, delivery.body, received_at)
    [ack] = c.parse_ack(delivery.body, received_at)
    assert (ack.destination, ack.request_id, ack.completed, ack.detail) == (
        "partner:contact_centre", "req-e4", True, "removed from dialler and CRM")
    assert (ack.meta.source, ack.meta.source_event_id, ack.meta.occurred_at) == (
        "partner:contact_centre", event_id, received_at)
    assert ack.proof == hashlib.sha256(delivery.body).hexdigest()
    assert partner.erasure("req-e4") == {"subject_id": "e4", "emails": ["e4@example.com"],
                                         "status": "completed", "ack_status": 200}


def test_a_rejection_keeps_the_data_and_is_not_a_completion(
        partner: PartnerEmulator, sink: Sink) -> None:
    held_by(partner, "e5")
    c = connector(partner)
    c.erase([person("e5")])
    partner.ack("req-e5", status="rejected", detail="legal hold until 2027")
    assert partner.state("e5") is not None
    [delivery] = [d for d in sink.received(ACKS) if b"req-e5" in d.body]
    c.verify_ack(delivery.headers, delivery.body, datetime.now(UTC))
    [ack] = c.parse_ack(delivery.body, datetime.now(UTC))
    assert (ack.completed, ack.detail) == (False, "legal hold until 2027")


def test_a_partner_acks_by_itself_after_its_delay(sink: Sink) -> None:
    path = "/webhooks/partners/auto/ack"
    emulator = PartnerEmulator(secret=SECRET, ack_url=f"{sink.url}{path}", ack_delay=0.05)
    with started(emulator):
        c = connector(emulator)
        c.erase([person("e6")])
        [delivery] = sink.wait_for(path)
        deadline = time.monotonic() + scaled(5)
        while (emulator.erasure("req-e6") or {}).get("ack_status") is None:
            assert time.monotonic() < deadline, "the partner never recorded its ack"
            time.sleep(0.01)
    assert c.verify_ack(delivery.headers, delivery.body, datetime.now(UTC))
    [ack] = c.parse_ack(delivery.body, datetime.now(UTC))
    assert (ack.request_id, ack.completed) == ("req-e6", True)
    assert emulator.erasure("req-e6") == {"subject_id": "e6", "emails": ["e6@example.com"],
                                          "status": "completed", "ack_status": 200}


def test_the_partner_refuses_our_request_when_our_secret_is_wrong(
        partner: PartnerEmulator) -> None:
    with pytest.raises(AuthError):
        connector(partner, secret="rotated-too-early").erase([person("e7")])
    assert partner.erasure("req-e7") is None


def test_the_partner_refuses_a_signature_over_other_bytes(
        partner: PartnerEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """Were our signer to cover anything but "timestamp.body", the partner's own check fails."""
    honest = destination.sign
    monkeypatch.setattr(destination, "sign",
                        lambda secret, timestamp, body: honest(secret, timestamp, body + b"\n"))
    with pytest.raises(AuthError):
        connector(partner).erase([person("e8")])
    assert partner.erasure("req-e8") is None


@pytest.mark.parametrize(("fault", "error"), [
    (Fault(500), TransientError), (Fault(429, headers={"Retry-After": "7"}), TransientError),
    (Fault(403), AuthError), (Fault(422), PermanentError)])
def test_a_failed_request_goes_through_the_error_table(
        partner: PartnerEmulator, fault: Fault, error: type[Exception]) -> None:
    partner.inject(fault)
    with pytest.raises(error) as failed:
        connector(partner).erase([person("e9")])
    assert "e9@example.com" not in str(failed.value)
    assert partner.erasure("req-e9") is None
    if fault.status == 429:
        assert isinstance(failed.value, TransientError) and failed.value.retry_after == 7.0
