"""A processor's callback is believed only if its pinned, valid, CA-issued certificate signed it."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from connectors.partner import OPENDSR_DOMAIN_HEADER, OPENDSR_SIGNATURE_HEADER, verify_callback
from core.errors import BadInput, ConfigError, Unauthenticated
from privasync.emulators.http import Response
from privasync.emulators.opendsr import OpenDsrEmulator, TestAuthority, pem, sign

NOW = datetime.now(UTC)
DOCUMENT = {"controller_id": "3622", "subject_request_id": "a7551968-d5d6-44b2-9831-815ac9017798",
            "request_status": "completed", "status_callback_url": "https://privasync.example/cb",
            "expected_completion_time": "2026-04-01T00:00:00Z"}


@pytest.fixture(scope="module")
def processor() -> OpenDsrEmulator:
    """Only its certificates and key are used: it need not listen."""
    return OpenDsrEmulator()


@pytest.fixture(scope="module")
def impostor() -> OpenDsrEmulator:
    """Claims the same domain, with a certificate from its own CA."""
    return OpenDsrEmulator()


def callback(emulator: OpenDsrEmulator) -> Response:
    return emulator.signed(200, DOCUMENT)


def test_a_callback_signed_by_the_pinned_certificate_verifies(
        processor: OpenDsrEmulator) -> None:
    signed = callback(processor)
    verify_callback(signed.headers, signed.body, processor.certificate_pem)
    verify_callback({k.lower(): v for k, v in signed.headers.items()}, signed.body,
                    processor.certificate_pem, NOW + timedelta(days=89))


def test_a_signature_wrapped_over_lines_as_in_the_spec_verifies(
        processor: OpenDsrEmulator) -> None:
    signed = callback(processor)
    value = signed.headers[OPENDSR_SIGNATURE_HEADER]
    wrapped = "\n".join(value[i:i + 76] for i in range(0, len(value), 76))
    verify_callback({**signed.headers, OPENDSR_SIGNATURE_HEADER: wrapped}, signed.body,
                    processor.certificate_pem)


def test_a_callback_signed_by_another_key_is_refused(
        processor: OpenDsrEmulator, impostor: OpenDsrEmulator) -> None:
    forged = callback(impostor)
    with pytest.raises(Unauthenticated, match="does not verify"):
        verify_callback(forged.headers, forged.body, processor.certificate_pem)


Change = Callable[[dict[str, str], bytes], tuple[dict[str, str], bytes]]


@pytest.mark.parametrize(("case", "change", "rule"), [
    ("body altered", lambda h, b: (h, b.replace(b"completed", b"cancelled")), "does not verify"),
    ("no signature", lambda h, b: ({OPENDSR_DOMAIN_HEADER: h[OPENDSR_DOMAIN_HEADER]}, b),
     "missing"),
    ("no domain", lambda h, b: ({OPENDSR_SIGNATURE_HEADER: h[OPENDSR_SIGNATURE_HEADER]}, b),
     "missing"),
    ("another domain", lambda h, b: ({**h, OPENDSR_DOMAIN_HEADER: "evil.example"}, b),
     "not a name of the pinned certificate"),
    ("not base64", lambda h, b: ({**h, OPENDSR_SIGNATURE_HEADER: "%%%"}, b), "not Base64"),
])
def test_an_altered_or_incomplete_callback_is_refused(
        processor: OpenDsrEmulator, case: str, change: Change, rule: str) -> None:
    signed = callback(processor)
    headers, body = change(dict(signed.headers), signed.body)
    with pytest.raises(Unauthenticated, match=rule):
        verify_callback(headers, body, processor.certificate_pem)


@pytest.mark.parametrize(("valid_from", "valid_until"), [
    (NOW - timedelta(days=30), NOW - timedelta(days=1)),   # expired
    (NOW + timedelta(days=1), NOW + timedelta(days=30)),   # not yet valid
])
def test_a_certificate_outside_its_validity_authenticates_nothing(
        valid_from: datetime, valid_until: datetime) -> None:
    processor = OpenDsrEmulator(valid_from=valid_from, valid_until=valid_until)
    signed = callback(processor)
    with pytest.raises(Unauthenticated, match="expired or not yet valid"):
        verify_callback(signed.headers, signed.body, processor.certificate_pem)


def test_a_self_signed_certificate_is_refused_as_the_spec_requires() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "opendsr.processor.test")])
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(NOW - timedelta(days=1))
                   .not_valid_after(NOW + timedelta(days=1)).sign(key, hashes.SHA256()))
    body = json.dumps(DOCUMENT).encode()
    headers = {OPENDSR_DOMAIN_HEADER: "opendsr.processor.test",
               OPENDSR_SIGNATURE_HEADER: sign(key, body)}
    with pytest.raises(Unauthenticated, match="self-signed"):
        verify_callback(headers, body, pem(certificate))


def test_a_pinned_setting_that_is_no_certificate_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        verify_callback({}, b"{}", "not a certificate")


def test_a_naive_now_is_refused(processor: OpenDsrEmulator) -> None:
    signed = callback(processor)
    with pytest.raises(BadInput):
        verify_callback(signed.headers, signed.body, processor.certificate_pem,
                        datetime(2026, 3, 1))  # noqa: DTZ001


@pytest.mark.parametrize("key_type", ["p256", "p384"])
def test_an_ecdsa_signed_callback_verifies_as_fips_186_4_allows(key_type: str) -> None:
    """§4.2: any FIPS 186-4 signature, so ECDSA over the body's SHA-256 too."""
    processor = OpenDsrEmulator(key_type=key_type)
    signed = callback(processor)
    verify_callback(signed.headers, signed.body, processor.certificate_pem)
    forged = callback(OpenDsrEmulator(key_type=key_type))
    with pytest.raises(Unauthenticated, match="does not verify"):
        verify_callback(forged.headers, forged.body, processor.certificate_pem)


def test_an_ecdsa_signature_as_the_bare_r_and_s_pair_verifies_too() -> None:
    key, certificate = TestAuthority().issue("opendsr.processor.test", NOW - timedelta(days=1),
                                             NOW + timedelta(days=1), "p256")
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    body = json.dumps(DOCUMENT).encode()
    r, s = decode_dss_signature(key.sign(body, ec.ECDSA(hashes.SHA256())))
    pair = base64.b64encode(r.to_bytes(32, "big") + s.to_bytes(32, "big")).decode()
    verify_callback({OPENDSR_DOMAIN_HEADER: "opendsr.processor.test",
                     OPENDSR_SIGNATURE_HEADER: pair}, body, pem(certificate))


def test_an_rsa_pss_signature_verifies_too() -> None:
    key, certificate = TestAuthority().issue("opendsr.processor.test", NOW - timedelta(days=1),
                                             NOW + timedelta(days=1))
    assert isinstance(key, rsa.RSAPrivateKey)
    body = json.dumps(DOCUMENT).encode()
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)
    signature = base64.b64encode(key.sign(body, pss, hashes.SHA256())).decode()
    verify_callback({OPENDSR_DOMAIN_HEADER: "opendsr.processor.test",
                     OPENDSR_SIGNATURE_HEADER: signature}, body, pem(certificate))


def test_a_curve_outside_the_nist_ones_authenticates_nothing() -> None:
    authority = TestAuthority()
    key = ec.generate_private_key(ec.SECP256K1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "opendsr.processor.test")])
    certificate = (x509.CertificateBuilder().subject_name(name)
                   .issuer_name(authority.certificate.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(NOW - timedelta(days=1))
                   .not_valid_after(NOW + timedelta(days=1))
                   .sign(authority._key, hashes.SHA256()))
    body = json.dumps(DOCUMENT).encode()
    headers = {OPENDSR_DOMAIN_HEADER: "opendsr.processor.test",
               OPENDSR_SIGNATURE_HEADER: sign(key, body)}
    with pytest.raises(Unauthenticated, match="secp256k1"):
        verify_callback(headers, body, pem(certificate))


def test_a_callback_with_the_opengdpr_headers_verifies_as_section_10_1_requires(
        processor: OpenDsrEmulator) -> None:
    """§10.1: the prior names stay valid: X-OpenGDPR-Processor-Domain, X-OpenGDPR-Signature."""
    signed = callback(processor)
    legacy = {"X-OpenGDPR-Processor-Domain": signed.headers[OPENDSR_DOMAIN_HEADER],
              "X-OpenGDPR-Signature": signed.headers[OPENDSR_SIGNATURE_HEADER]}
    verify_callback(legacy, signed.body, processor.certificate_pem)
    with pytest.raises(Unauthenticated, match="X-OpenGDPR-Processor-Domain"):
        verify_callback({**legacy, "X-OpenGDPR-Processor-Domain": "evil.example"}, signed.body,
                        processor.certificate_pem)
    with pytest.raises(Unauthenticated, match="X-OpenGDPR-Signature does not verify"):
        verify_callback(legacy, signed.body + b" ", processor.certificate_pem)
