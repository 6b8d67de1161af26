"""OpenDSR processors get one erasure request per person and settle it by signed callback."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from connectors.partner import OpenDsrConnector, verify_callback
from core.errors import AuthError, BadInput, ConfigError, PermanentError, TransientError
from core.mappings import Partner
from core.model import ErasureStatus, PersonAt
from privasync.emulators.http import Fault
from privasync.emulators.opendsr import OpenDsrEmulator
from tests.emulators.conftest import Delivery, Sink, serve, started
from tests.timing import scaled

CALLBACKS = "/webhooks/partners/analytics/opendsr"


@pytest.fixture(scope="module")
def running() -> Iterator[OpenDsrEmulator]:
    yield from serve(OpenDsrEmulator(controller_id="3622"))


@pytest.fixture
def processor(running: OpenDsrEmulator) -> OpenDsrEmulator:
    running.clear_faults()
    return running


def policy(identifiers: tuple[str, ...] = ("email",)) -> Partner:
    return Partner(protocol="opendsr", url="http://127.0.0.1:1/unused",
                   certificate_setting="ANALYTICS_CERTIFICATE", controller_id="3622",
                   purposes=("offers",), agreement="DPA-2", identifiers=identifiers)


def connector(processor: OpenDsrEmulator, sink: Sink, *,
              identifiers: tuple[str, ...] = ("email",), pinned: str | None = None,
              api_secret: str | None = None) -> OpenDsrConnector:
    return OpenDsrConnector(name="analytics", partner=policy(identifiers), url=processor.url,
                            callback_url=f"{sink.url}{CALLBACKS}",
                            certificate_pem=pinned or processor.certificate_pem,
                            api_secret=api_secret, timeout=scaled(5))


def person(sid: str, *emails: str) -> PersonAt:
    return PersonAt(subject_id=sid, request_id=str(uuid.uuid4()),
                    emails=emails or (f"{sid}@example.com",))


def callback_for(sink: Sink, request_id: str, status: str) -> Delivery:
    [delivery] = [d for d in sink.received(CALLBACKS)
                  if json.loads(d.body)["subject_request_id"] == request_id
                  and json.loads(d.body)["request_status"] == status]
    return delivery


def test_an_erasure_request_reaches_the_processor_and_awaits_its_callback(
        processor: OpenDsrEmulator, sink: Sink) -> None:
    who = person("o1", "o1@example.com", "old@example.com")
    [receipt] = connector(processor, sink).erase([who])
    assert (receipt.subject_id, receipt.status, receipt.vendor_status, receipt.vendor_request_id,
            receipt.error) == ("o1", ErasureStatus.AWAITING_ACK, 201, who.request_id, None)
    assert receipt.verified.startswith("asked; signed receipt verified; completion expected by")
    held = processor.subject_request(who.request_id)
    assert held is not None and held["status"] == "pending"
    sent = held["document"]
    assert (sent["regulation"], sent["subject_request_type"], sent["api_version"]) == (
        "gdpr", "erasure", "2.0")
    assert sent["subject_identities"] == [
        {"identity_type": "email", "identity_format": "raw", "identity_value": e}
        for e in ("o1@example.com", "old@example.com")]
    assert sent["status_callback_urls"] == [f"{sink.url}{CALLBACKS}"]
    assert datetime.fromisoformat(sent["submitted_time"]).tzinfo is not None


def test_without_the_email_identifier_the_processor_gets_our_subject_id_only(
        processor: OpenDsrEmulator, sink: Sink) -> None:
    who = person("o2")
    connector(processor, sink, identifiers=()).erase([who])
    held = processor.subject_request(who.request_id)
    assert held is not None and held["document"]["subject_identities"] == [
        {"identity_type": "controller_customer_id", "identity_format": "raw",
         "identity_value": "o2"}]
    assert "o2@example.com" not in json.dumps(held["document"])


def test_a_completed_callback_verifies_against_the_pinned_certificate_and_settles(
        processor: OpenDsrEmulator, sink: Sink) -> None:
    who = person("o3")
    c = connector(processor, sink)
    c.erase([who])
    assert processor.complete(who.request_id) == [200]
    delivery = callback_for(sink, who.request_id, "completed")
    verify_callback(delivery.headers, delivery.body, processor.certificate_pem)
    received_at = datetime.now(UTC)
    [ack] = c.parse_callback(delivery.body, received_at)
    assert (ack.destination, ack.request_id, ack.completed) == (
        "partner:analytics", who.request_id, True)
    assert (ack.meta.source_event_id, ack.meta.occurred_at) == (
        f"{who.request_id}:completed", received_at)
    assert ack.proof == hashlib.sha256(delivery.body).hexdigest()


def test_a_cancelled_request_is_settled_but_not_completed(
        processor: OpenDsrEmulator, sink: Sink) -> None:
    who = person("o4")
    c = connector(processor, sink)
    c.erase([who])
    processor.set_status(who.request_id, "cancelled")
    delivery = callback_for(sink, who.request_id, "cancelled")
    verify_callback(delivery.headers, delivery.body, processor.certificate_pem)
    [ack] = c.parse_callback(delivery.body, datetime.now(UTC))
    assert ack.completed is False


@pytest.mark.parametrize("status", ["pending", "in_progress"])
def test_an_open_request_produces_no_event(
        processor: OpenDsrEmulator, sink: Sink, status: str) -> None:
    who = person(f"o5-{status}")
    c = connector(processor, sink)
    c.erase([who])
    processor.set_status(who.request_id, status)
    delivery = callback_for(sink, who.request_id, status)
    verify_callback(delivery.headers, delivery.body, processor.certificate_pem)
    assert c.parse_callback(delivery.body, datetime.now(UTC)) == []


def test_asking_again_for_a_known_request_reads_its_status_instead(
        processor: OpenDsrEmulator, sink: Sink) -> None:
    who = person("o6")
    c = connector(processor, sink)
    c.erase([who])
    processor.set_status(who.request_id, "in_progress")
    [again] = c.erase([who])
    assert (again.status, again.error, again.vendor_status) == (
        ErasureStatus.AWAITING_ACK, None, 200)
    assert again.verified.startswith("asked before (in_progress); signed receipt verified")


def test_a_request_id_opendsr_cannot_carry_fails_that_person_only(
        processor: OpenDsrEmulator, sink: Sink) -> None:
    odd = PersonAt(subject_id="o7", request_id="REQ-42", emails=("o7@example.com",))
    upper = PersonAt(subject_id="o8", request_id=str(uuid.uuid4()).upper(), emails=())
    fine = person("o9")
    receipts = connector(processor, sink).erase([odd, upper, fine])
    assert [type(r.error) for r in receipts] == [PermanentError, PermanentError, type(None)]
    assert receipts[2].status == ErasureStatus.AWAITING_ACK
    assert processor.subject_request("REQ-42") is None
    assert "o7@example.com" not in str(receipts[0].error)


@pytest.mark.parametrize(("fault", "error"), [
    (Fault(500), TransientError), (Fault(429, headers={"Retry-After": "30"}), TransientError),
    (Fault(401), AuthError), (Fault(403), AuthError)])
def test_a_failing_processor_fails_the_whole_call_through_the_error_table(
        processor: OpenDsrEmulator, sink: Sink, fault: Fault, error: type[Exception]) -> None:
    processor.inject(fault)
    who = person("o10")
    with pytest.raises(error):
        connector(processor, sink).erase([who])
    assert processor.subject_request(who.request_id) is None


def test_a_processor_behind_basic_auth_takes_our_credentials_and_refuses_wrong_ones(
        sink: Sink) -> None:
    guarded = OpenDsrEmulator(controller_id="3622", credentials=("key", "s3cret"))
    with started(guarded) as processor:
        ok, refused = person("o11"), person("o12")
        [receipt] = connector(processor, sink, api_secret="key:s3cret").erase([ok])
        assert receipt.status == ErasureStatus.AWAITING_ACK
        with pytest.raises(AuthError):
            connector(processor, sink, api_secret="key:guess").erase([refused])
        assert processor.subject_request(refused.request_id) is None
        with pytest.raises(ConfigError):
            connector(processor, sink, api_secret="no-colon")


def test_a_receipt_signed_with_an_expired_certificate_is_not_trusted(sink: Sink) -> None:
    now = datetime.now(UTC)
    expired = OpenDsrEmulator(controller_id="3622", valid_from=now - timedelta(days=30),
                              valid_until=now - timedelta(days=1))
    with started(expired) as processor:
        with pytest.raises(AuthError):
            connector(processor, sink).erase([person("o13")])


def test_a_pinned_certificate_that_is_not_pem_is_a_config_error(
        processor: OpenDsrEmulator, sink: Sink) -> None:
    with pytest.raises(ConfigError):
        connector(processor, sink, pinned="-----BEGIN CERTIFICATE-----\nnope\n")


def test_a_callback_for_another_controller_or_endpoint_is_refused(
        processor: OpenDsrEmulator, sink: Sink) -> None:
    c = connector(processor, sink)
    rid = str(uuid.uuid4())
    good = {"controller_id": "3622", "status_callback_url": f"{sink.url}{CALLBACKS}",
            "subject_request_id": rid, "request_status": "completed",
            "expected_completion_time": "2026-04-01T00:00:00Z"}
    for field, value, rule in [
            ("controller_id", "9999", "controller_id"),
            ("status_callback_url", "https://elsewhere.example/cb", "status_callback_url"),
            ("subject_request_id", rid.upper(), "subject_request_id"),
            ("request_status", "done", "request_status"),
            ("expected_completion_time", "tomorrow", "expected_completion_time"),
            ("results_count", -1, "results_count")]:
        with pytest.raises(BadInput, match=rule) as refused:
            c.parse_callback(json.dumps(good | {field: value}).encode(), datetime.now(UTC))
        assert str(value) not in str(refused.value)
    assert len(c.parse_callback(json.dumps(good).encode(), datetime.now(UTC))) == 1


def test_check_reads_discovery_and_notices_a_rotated_certificate(
        processor: OpenDsrEmulator, sink: Sink, other: OpenDsrEmulator) -> None:
    connector(processor, sink).check()
    with pytest.raises(PermanentError, match="not the pinned one"):
        connector(processor, sink, pinned=other.certificate_pem).check()


@pytest.fixture(scope="module")
def other() -> Iterator[OpenDsrEmulator]:
    """Another processor claiming the same domain, with its own CA and key."""
    yield from serve(OpenDsrEmulator(controller_id="3622"))


@pytest.mark.parametrize("status", [400, 422])
def test_a_request_the_processor_refuses_fails_that_person_only(
        processor: OpenDsrEmulator, sink: Sink, status: int) -> None:
    processor.inject(Fault(status, path_pattern="^/v2/requests/?$"))
    refused, fine = person("o14"), person("o15")
    receipts = connector(processor, sink).erase([refused, fine])
    assert isinstance(receipts[0].error, PermanentError)
    assert not isinstance(receipts[0].error, AuthError)
    assert (receipts[1].status, receipts[1].error) == (ErasureStatus.AWAITING_ACK, None)
    assert processor.subject_request(refused.request_id) is None
    assert processor.subject_request(fine.request_id) is not None


@pytest.mark.parametrize(("url", "callback"), [
    ("ftp://processor.example", "https://privasync.example/cb"),
    ("https://processor.example", "/webhooks/partners/analytics/opendsr")])
def test_urls_that_are_not_absolute_http_are_config_errors(
        processor: OpenDsrEmulator, url: str, callback: str) -> None:
    with pytest.raises(ConfigError, match="url must be an absolute http"):
        OpenDsrConnector(name="analytics", partner=policy(), url=url, callback_url=callback,
                         certificate_pem=processor.certificate_pem)
