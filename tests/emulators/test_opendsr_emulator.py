"""The OpenDSR emulator behaves as the specification's processor, checked without our code."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from privasync.emulators.http import Fault
from privasync.emulators.opendsr import OpenDsrEmulator
from tests.emulators.conftest import Sink, serve, started
from tests.timing import scaled

CALLBACKS = "/callbacks"


@pytest.fixture(scope="module")
def processor() -> Iterator[OpenDsrEmulator]:
    yield from serve(OpenDsrEmulator(controller_id="3622"))


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    yield from serve(Sink())


def document(sink: Sink, **overrides: Any) -> dict[str, Any]:
    return {"subject_request_id": str(uuid.uuid4()), "subject_request_type": "erasure",
            "regulation": "gdpr", "submitted_time": "2026-03-01T09:30:00Z", "api_version": "2.0",
            "subject_identities": [{"identity_type": "email", "identity_format": "raw",
                                    "identity_value": "ada@example.com"}],
            "status_callback_urls": [f"{sink.url}{CALLBACKS}"]} | overrides


def submit(processor: OpenDsrEmulator, body: dict[str, Any]) -> requests.Response:
    return requests.post(f"{processor.url}/v2/requests", json=body, timeout=scaled(5))


def signed_by(processor: OpenDsrEmulator, headers: Any, body: bytes) -> bool:
    """Checked here with cryptography directly: the emulator must not grade its own work."""
    key = x509.load_pem_x509_certificate(processor.certificate_pem.encode()).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    lowered = {k.lower(): v for k, v in headers.items()}
    assert lowered["x-opendsr-processor-domain"] == processor.domain
    key.verify(base64.b64decode(lowered["x-opendsr-signature"]), body, padding.PKCS1v15(),
               hashes.SHA256())
    return True


def test_discovery_publishes_a_ca_issued_certificate_for_the_processors_domain(
        processor: OpenDsrEmulator) -> None:
    discovery = requests.get(f"{processor.url}/v2/discovery", timeout=scaled(5)).json()
    assert discovery["supported_subject_request_types"] == ["erasure"]
    published = requests.get(discovery["processor_certificate"], timeout=scaled(5)).text
    assert published == processor.certificate_pem
    leaf = x509.load_pem_x509_certificate(published.encode())
    ca = x509.load_pem_x509_certificate(processor.ca_certificate_pem.encode())
    assert leaf.issuer != leaf.subject
    leaf.verify_directly_issued_by(ca)
    assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value \
        .get_values_for_type(x509.DNSName) == [processor.domain]


def test_a_valid_request_is_answered_201_signed_with_the_request_encoded(
        processor: OpenDsrEmulator, sink: Sink) -> None:
    body = document(sink)
    response = submit(processor, body)
    assert response.status_code == 201
    assert signed_by(processor, response.headers, response.content)
    answer = response.json()
    assert (answer["controller_id"], answer["subject_request_id"]) == (
        "3622", body["subject_request_id"])
    assert json.loads(base64.b64decode(answer["encoded_request"])) == body
    assert datetime.fromisoformat(answer["expected_completion_time"]) > datetime.now(UTC)


@pytest.mark.parametrize(("change", "message"), [
    ({"subject_request_id": str(uuid.uuid4()).upper()}, "lowercase UUID v4"),
    ({"subject_request_id": str(uuid.uuid1())}, "lowercase UUID v4"),
    ({"regulation": "pipeda"}, "regulation"),
    ({"subject_request_type": "access"}, "not supported"),
    ({"submitted_time": "2026-03-01T09:30:00"}, "submitted_time"),
    ({"api_version": "1.0"}, "api_version"),
    ({"subject_identities": []}, "subject_identities"),
    ({"subject_identities": [{"identity_type": "email", "identity_format": "sha256",
                              "identity_value": "x"}]}, "subject_identities"),
    ({"status_callback_urls": ["ftp://x"]}, "status_callback_urls"),
])
def test_a_request_outside_the_spec_is_a_400_with_an_error_object(
        processor: OpenDsrEmulator, sink: Sink, change: dict[str, Any], message: str) -> None:
    response = submit(processor, document(sink, **change))
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]


def test_a_known_request_id_is_refused_and_its_status_can_be_read(
        processor: OpenDsrEmulator, sink: Sink) -> None:
    body = document(sink)
    submit(processor, body)
    again = submit(processor, body)
    assert again.status_code == 400
    rid = body["subject_request_id"]
    for path in (f"/v2/requests/{rid}", f"/v2/status/{rid}"):
        status = requests.get(f"{processor.url}{path}", timeout=scaled(5))
        assert signed_by(processor, status.headers, status.content)
        assert status.json()["request_status"] == "pending"
    assert requests.get(f"{processor.url}/v2/requests/{uuid.uuid4()}",
                        timeout=scaled(5)).status_code == 404


def test_each_status_change_calls_back_signed_and_a_failed_callback_is_retried(
        processor: OpenDsrEmulator, sink: Sink) -> None:
    body = document(sink)
    rid = body["subject_request_id"]
    submit(processor, body)
    sink.inject(Fault(500, path_pattern=CALLBACKS))
    assert processor.complete(rid) == [200]
    held = processor.subject_request(rid)
    assert held is not None and [c[2] for c in held["callbacks"]] == [500, 200]
    [delivery] = [d for d in sink.received(CALLBACKS) if json.loads(d.body)[
        "subject_request_id"] == rid]
    assert signed_by(processor, delivery.headers, delivery.body)
    sent = json.loads(delivery.body)
    assert (sent["request_status"], sent["controller_id"], sent["status_callback_url"]) == (
        "completed", "3622", f"{sink.url}{CALLBACKS}")


def test_a_processor_can_complete_by_itself_after_a_delay(sink: Sink) -> None:
    with started(OpenDsrEmulator(complete_after=0.05)) as processor:
        body = document(sink)
        submit(processor, body)
        deadline = time.monotonic() + scaled(5)
        while (processor.subject_request(body["subject_request_id"]) or {}).get(
                "status") != "completed":
            assert time.monotonic() < deadline
            time.sleep(0.01)


def test_credentials_guard_the_request_endpoints_but_not_discovery(sink: Sink) -> None:
    with started(OpenDsrEmulator(credentials=("key", "s3cret"))) as processor:
        assert submit(processor, document(sink)).status_code == 401
        authorised = requests.post(f"{processor.url}/v2/requests", json=document(sink),
                                   auth=("key", "s3cret"), timeout=scaled(5))
        assert authorised.status_code == 201
        assert requests.get(f"{processor.url}/v2/discovery", timeout=scaled(5)).status_code == 200


def test_a_pending_request_is_cancelled_with_a_signed_202_and_a_cancelled_callback(
        processor: OpenDsrEmulator, sink: Sink) -> None:
    """§9: DELETE while pending is 202 signed; §8.5: the change is called back."""
    body = document(sink)
    rid = body["subject_request_id"]
    submit(processor, body)
    cancelled = requests.delete(f"{processor.url}/v2/requests/{rid}", timeout=scaled(5))
    assert cancelled.status_code == 202
    assert signed_by(processor, cancelled.headers, cancelled.content)
    assert cancelled.json()["subject_request_id"] == rid
    again = requests.delete(f"{processor.url}/v2/requests/{rid}", timeout=scaled(5))
    assert again.status_code == 202
    deadline = time.monotonic() + scaled(5)
    while not [d for d in sink.received(CALLBACKS)
               if json.loads(d.body)["subject_request_id"] == rid]:
        assert time.monotonic() < deadline, "no cancelled callback"
        time.sleep(0.01)
    [delivery] = [d for d in sink.received(CALLBACKS)
                  if json.loads(d.body)["subject_request_id"] == rid]
    assert json.loads(delivery.body)["request_status"] == "cancelled"


def test_only_a_pending_request_can_be_cancelled_and_an_unknown_one_is_404(
        processor: OpenDsrEmulator, sink: Sink) -> None:
    body = document(sink, status_callback_urls=[])
    rid = body["subject_request_id"]
    submit(processor, body)
    processor.set_status(rid, "in_progress")
    refused = requests.delete(f"{processor.url}/v2/requests/{rid}", timeout=scaled(5))
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, 400)
    assert requests.delete(f"{processor.url}/v2/requests/{uuid.uuid4()}",
                           timeout=scaled(5)).status_code == 404


def test_the_opengdpr_routes_answer_under_the_opengdpr_headers(sink: Sink) -> None:
    """§10.1: OpenGDPR 1.0's /v1/opengdpr_requests and X-OpenGDPR-* stay honoured."""
    with started(OpenDsrEmulator(legacy_only=True)) as legacy:
        body = document(sink, api_version="1.0")
        body.pop("regulation")
        answer = requests.post(f"{legacy.url}/v1/opengdpr_requests", json=body, timeout=scaled(5))
        assert answer.status_code == 201
        key = x509.load_pem_x509_certificate(legacy.certificate_pem.encode()).public_key()
        assert isinstance(key, rsa.RSAPublicKey)
        assert answer.headers["X-OpenGDPR-Processor-Domain"] == legacy.domain
        key.verify(base64.b64decode(answer.headers["X-OpenGDPR-Signature"]), answer.content,
                   padding.PKCS1v15(), hashes.SHA256())
        assert requests.post(f"{legacy.url}/v2/requests", json=document(sink),
                             timeout=scaled(5)).status_code == 404


@pytest.mark.parametrize(("key_type", "curve"), [("p256", ec.SECP256R1), ("p384", ec.SECP384R1)])
def test_an_ecdsa_processor_signs_the_bodys_sha256(
        sink: Sink, key_type: str, curve: type[ec.EllipticCurve]) -> None:
    with started(OpenDsrEmulator(key_type=key_type)) as processor:
        answer = submit(processor, document(sink, status_callback_urls=[]))
        key = x509.load_pem_x509_certificate(processor.certificate_pem.encode()).public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, curve)
        key.verify(base64.b64decode(answer.headers["X-OpenDSR-Signature"]), answer.content,
                   ec.ECDSA(hashes.SHA256()))
