"""A request still pending can be withdrawn (§9); an OpenGDPR-only processor is spoken to in
its own names (§10.1); an ECDSA-signing processor is trusted like an RSA one (§4.2)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from connectors.partner import verify_callback
from core.errors import PermanentError
from core.model import ErasureStatus
from privasync.emulators.opendsr import OpenDsrEmulator
from tests.connectors.partner.test_opendsr import CALLBACKS, callback_for, connector, person
from tests.emulators.conftest import Delivery, Sink, serve, started
from tests.timing import scaled


def callback_once_sent(sink: Sink, request_id: str, status: str) -> Delivery:
    """The processor calls back after answering the DELETE: wait for it, 5 s at most."""
    deadline = time.monotonic() + scaled(5)
    while True:
        sent = [d for d in sink.received(CALLBACKS)
                if json.loads(d.body)["subject_request_id"] == request_id
                and json.loads(d.body)["request_status"] == status]
        if sent:
            return sent[0]
        assert time.monotonic() < deadline, f"no {status} callback within 5 s"
        time.sleep(0.01)


@pytest.fixture(scope="module")
def processor() -> Iterator[OpenDsrEmulator]:
    yield from serve(OpenDsrEmulator(controller_id="3622"))


def test_a_pending_request_is_cancelled_and_its_cancelled_callback_settles_it(
        processor: OpenDsrEmulator, sink: Sink) -> None:
    who = person("c1")
    c = connector(processor, sink)
    c.erase([who])
    assert c.cancel(who.request_id) is True
    held = processor.subject_request(who.request_id)
    assert held is not None and held["status"] == "cancelled"
    delivery = callback_once_sent(sink, who.request_id, "cancelled")
    verify_callback(delivery.headers, delivery.body, processor.certificate_pem)
    [ack] = c.parse_callback(delivery.body, datetime.now(UTC))
    assert (ack.request_id, ack.completed) == (who.request_id, False)


def test_cancelling_twice_is_harmless_and_an_unknown_request_is_nothing_to_cancel(
        processor: OpenDsrEmulator, sink: Sink) -> None:
    who = person("c2")
    c = connector(processor, sink)
    c.erase([who])
    assert c.cancel(who.request_id) is True
    assert c.cancel(who.request_id) is True
    assert c.cancel(person("c3").request_id) is False


@pytest.mark.parametrize("status", ["in_progress", "completed"])
def test_a_request_no_longer_pending_cannot_be_cancelled_and_says_why(
        processor: OpenDsrEmulator, sink: Sink, status: str) -> None:
    who = person(f"c4-{status}")
    c = connector(processor, sink)
    c.erase([who])
    processor.set_status(who.request_id, status)
    with pytest.raises(PermanentError, match=f"the request is {status}") as refused:
        c.cancel(who.request_id)
    assert refused.value.error_class == "not_cancellable"
    held = processor.subject_request(who.request_id)
    assert held is not None and held["status"] == status


def test_an_opengdpr_only_processor_gets_its_own_routes_and_signs_with_its_own_headers(
        sink: Sink) -> None:
    with started(OpenDsrEmulator(controller_id="3622", legacy_only=True)) as legacy:
        who = person("l1")
        c = connector(legacy, sink)
        [receipt] = c.erase([who])
        assert (receipt.status, receipt.error, receipt.vendor_status) == (
            ErasureStatus.AWAITING_ACK, None, 201)
        assert ("POST", "/v1/opengdpr_requests", 201) in list(legacy.log)
        held = legacy.subject_request(who.request_id)
        assert held is not None
        assert held["document"]["api_version"] == "1.0"
        assert "regulation" not in held["document"]
        legacy.complete(who.request_id)
        delivery = callback_for(sink, who.request_id, "completed")
        assert "x-opengdpr-signature" in {k.lower() for k in delivery.headers}
        verify_callback(delivery.headers, delivery.body, legacy.certificate_pem)
        [ack] = c.parse_callback(delivery.body, datetime.now(UTC))
        assert ack.completed is True
        other = person("l2")
        c.erase([other])
        assert c.cancel(other.request_id) is True
        c.check()


@pytest.mark.parametrize("key_type", ["p256", "p384"])
def test_a_processor_signing_with_ecdsa_is_trusted_end_to_end(sink: Sink, key_type: str) -> None:
    with started(OpenDsrEmulator(controller_id="3622", key_type=key_type)) as ecdsa:
        who = person(f"e-{key_type}")
        c = connector(ecdsa, sink)
        [receipt] = c.erase([who])
        assert (receipt.status, receipt.error) == (ErasureStatus.AWAITING_ACK, None)
        assert c.cancel(who.request_id) is True
        c.check()
