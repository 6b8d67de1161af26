"""How an OpenDSR processor's signed answers and callbacks are checked (OpenDSR v2).

The processor signs the raw body: ``X-OpenDSR-Signature`` is the Base64 RSA
PKCS#1 v1.5 signature over its SHA-256, made with the key of its x.509
certificate, whose name ``X-OpenDSR-Processor-Domain`` states. We pin that
certificate per partner instead of fetching it from ``/discovery`` at each
callback: a fetched certificate would authenticate whoever answers that URL.
The spec forbids self-signed certificates, so a pinned one must name a CA
other than itself; one outside its validity period authenticates nothing.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from core.errors import ConfigError, Unauthenticated
from core.model import require_aware

SIGNATURE_HEADER = "X-OpenDSR-Signature"
DOMAIN_HEADER = "X-OpenDSR-Processor-Domain"


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


def _header(headers: Mapping[str, str], name: str) -> str:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted and value.strip():
            return value
    raise Unauthenticated(f"missing {name} header")


def _usable_key(certificate: x509.Certificate, now: datetime) -> rsa.RSAPublicKey:
    """The certificate's RSA key, if the certificate may authenticate anything at ``now``."""
    if certificate.issuer == certificate.subject:
        raise Unauthenticated("the pinned certificate is self-signed; OpenDSR requires a "
                              "CA-issued one")
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise Unauthenticated("the pinned certificate is expired or not yet valid")
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise Unauthenticated("the pinned certificate's key is not RSA")
    return key


def _signature(value: str) -> bytes:
    """The header's Base64, which processors may wrap over several lines."""
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Unauthenticated(f"{SIGNATURE_HEADER} is not Base64") from exc


def verify_signed(headers: Mapping[str, str], body: bytes, certificate: x509.Certificate,
                  now: datetime) -> None:
    """Check a processor's signed body against ``certificate``. Raises Unauthenticated."""
    key = _usable_key(certificate, require_aware(now, "now"))
    domain = _header(headers, DOMAIN_HEADER).strip().lower()
    if domain not in certificate_names(certificate):
        raise Unauthenticated(f"{DOMAIN_HEADER} is not a name of the pinned certificate")
    signature = _signature(_header(headers, SIGNATURE_HEADER))
    try:
        key.verify(signature, body, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature as exc:
        raise Unauthenticated(f"{SIGNATURE_HEADER} does not verify against the pinned "
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
