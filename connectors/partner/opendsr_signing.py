"""How an OpenDSR processor's signed answers and callbacks are checked (OpenDSR v2.0).

The processor signs the raw body: ``X-OpenDSR-Signature`` is the Base64 signature
over its SHA-256 (§7.3, §9.2 name the digest), made with the key of its x.509
certificate, whose name ``X-OpenDSR-Processor-Domain`` states (§8.3, §8.6). §4.2 allows
any FIPS 186-4 signature: RSA (PKCS#1 v1.5 or PSS) and ECDSA on the NIST curves P-256,
P-384 and P-521 are verified; DSA, which FIPS 186-5 withdrew and the cryptography package
deprecates, is not. §10.1: the OpenGDPR names of both headers (``X-OpenGDPR-*``) are
honoured as well. We pin the certificate per partner instead of fetching it from
``/discovery`` at each callback (§8.8 step 3 allows a cache): a fetched certificate would
authenticate whoever answers that URL. §4.1 forbids self-signed certificates, so a pinned
one must name a CA other than itself; one outside its validity period authenticates nothing.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID

from core.errors import ConfigError, Unauthenticated
from core.model import require_aware

SIGNATURE_HEADER = "X-OpenDSR-Signature"
DOMAIN_HEADER = "X-OpenDSR-Processor-Domain"
# §10.1 "Migration from OpenGDPR": the names of OpenGDPR 1.0 (its §8.3, §8.6).
LEGACY_SIGNATURE_HEADER = "X-OpenGDPR-Signature"
LEGACY_DOMAIN_HEADER = "X-OpenGDPR-Processor-Domain"
# FIPS 186-4 Appendix D.1.2 lists the prime curves P-192 to P-521; P-192 and P-224 (below
# 128-bit security) are refused here: a choice, not the spec's.
_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)
VerifyingKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


@dataclass(frozen=True)
class Dialect:
    """The names one version of the protocol uses on the wire (§3.4: the major version
    starts every URL; §10.1: OpenGDPR's names stay valid)."""

    version_path: str
    requests_path: str
    api_version: str
    domain_header: str
    signature_header: str


OPENDSR = Dialect("/v2", "/requests", "2.0", DOMAIN_HEADER, SIGNATURE_HEADER)
OPENGDPR = Dialect("/v1", "/opengdpr_requests", "1.0", LEGACY_DOMAIN_HEADER,
                   LEGACY_SIGNATURE_HEADER)


@lru_cache(maxsize=32)
def load_certificate(pem: str) -> x509.Certificate:
    """The pinned certificate; ConfigError if the setting holds no PEM certificate."""
    try:
        return x509.load_pem_x509_certificate(pem.encode("ascii"))
    except (UnicodeEncodeError, ValueError) as exc:
        raise ConfigError("pinned OpenDSR certificate is not a PEM x.509 certificate") from exc


def certificate_names(certificate: x509.Certificate) -> frozenset[str]:
    """The DNS names a certificate is issued to (SANs, else its common name), lowercase."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        names = [str(a.value) for a in
                 certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    else:
        names = san.get_values_for_type(x509.DNSName)
    return frozenset(n.lower() for n in names)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted and value.strip():
            return value
    return None


def _signed_by(headers: Mapping[str, str]) -> tuple[str, str, Dialect]:
    """(domain, signature, whose names they came under): OpenDSR's names first, then
    OpenGDPR's; the domain is read from the same family as the signature."""
    for dialect in (OPENDSR, OPENGDPR):
        signature = _header(headers, dialect.signature_header)
        if signature is not None:
            domain = _header(headers, dialect.domain_header)
            if domain is None:
                raise Unauthenticated(f"missing {dialect.domain_header} header")
            return domain, signature, dialect
    raise Unauthenticated(f"missing {SIGNATURE_HEADER} header (or {LEGACY_SIGNATURE_HEADER})")


def certificate_problems(certificate: x509.Certificate, now: datetime) -> list[str]:
    """What keeps ``certificate`` from authenticating anything at ``now``: [] if nothing."""
    problems = []
    if certificate.issuer == certificate.subject:
        problems.append("the pinned certificate is self-signed; OpenDSR requires a CA-issued "
                        "one")
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        problems.append("the pinned certificate is expired or not yet valid")
    key = certificate.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey) and not isinstance(key.curve, _CURVES):
        problems.append(f"the pinned certificate's curve {key.curve.name} is not P-256, "
                        "P-384 or P-521")
    elif not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        problems.append("the pinned certificate's key is neither RSA nor ECDSA (FIPS 186-4)")
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        pass
    else:
        if not usage.digital_signature:
            problems.append("the pinned certificate's key usage does not allow signatures")
    return problems


def _usable_key(certificate: x509.Certificate, now: datetime) -> VerifyingKey:
    """The certificate's key, if the certificate may authenticate anything at ``now``."""
    problems = certificate_problems(certificate, now)
    if problems:
        raise Unauthenticated(problems[0])
    key = certificate.public_key()
    assert isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)
    return key


def _signature(value: str, header: str) -> bytes:
    """The header's Base64, which processors may wrap over several lines (§7.4's example)."""
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Unauthenticated(f"{header} is not Base64") from exc


def _verify(key: VerifyingKey, signature: bytes, body: bytes) -> None:
    """FIPS 186-4 verification over SHA-256; InvalidSignature if it does not hold.

    ASSUMPTION (the spec names neither): RSA signatures may be PKCS#1 v1.5 or PSS, both
    FIPS 186-4 §5; ECDSA ones DER-encoded (what X.509 tooling makes) or the fixed-width
    r||s pair (what JOSE-style signers make)."""
    if isinstance(key, rsa.RSAPublicKey):
        try:
            key.verify(signature, body, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            key.verify(signature, body, padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                                    salt_length=padding.PSS.AUTO),
                       hashes.SHA256())
    else:
        width = (key.curve.key_size + 7) // 8
        if len(signature) == 2 * width and signature[0] != 0x30:
            signature = encode_dss_signature(int.from_bytes(signature[:width], "big"),
                                             int.from_bytes(signature[width:], "big"))
        key.verify(signature, body, ec.ECDSA(hashes.SHA256()))


def verify_signed(headers: Mapping[str, str], body: bytes, certificate: x509.Certificate,
                  now: datetime) -> None:
    """Check a processor's signed body against ``certificate``. Raises Unauthenticated."""
    key = _usable_key(certificate, require_aware(now, "now"))
    domain, value, names = _signed_by(headers)
    if domain.strip().lower() not in certificate_names(certificate):
        raise Unauthenticated(f"{names.domain_header} is not a name of the pinned certificate")
    try:
        _verify(key, _signature(value, names.signature_header), body)
    except InvalidSignature as exc:
        raise Unauthenticated(f"{names.signature_header} does not verify against the pinned "
                              "certificate") from exc


def verify_callback(headers: Mapping[str, str], body: bytes, certificate_pem: str,
                    now: datetime | None = None) -> None:
    """Authenticate a status callback before its body is parsed (spec: verify, then parse).

    Raises Unauthenticated for a missing, malformed or non-matching signature, a
    domain header that is not the certificate's, or a certificate that is
    self-signed, expired or not yet valid; ConfigError if ``certificate_pem`` is
    not a certificate. ``now`` defaults to the current time.
    """
    verify_signed(headers, body, load_certificate(certificate_pem), now or datetime.now(UTC))
