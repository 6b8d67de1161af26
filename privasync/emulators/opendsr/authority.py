"""A certificate authority made for one test run, and the processor certificate it issues.

OpenDSR forbids self-signed certificates for callbacks (§4.1), so the emulator signs with
a leaf certificate that this CA issues for the processor's domain; tests pin the
leaf (as privasync pins a real processor's), and can ask for one outside its
validity period to see it refused. §4.2 allows any FIPS 186-4 signature: the leaf's key
is RSA or ECDSA on P-256 or P-384, always over the body's SHA-256 (§7.3, §9.2 name it).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

_KEY_BITS = 2048
KEY_TYPES = ("rsa", "p256", "p384")
SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def _usage(*, signing: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=signing, content_commitment=False,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=not signing, crl_sign=not signing, encipher_only=False,
                         decipher_only=False)


def _key(kind: str = "rsa") -> SigningKey:
    if kind == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "p384":
        return ec.generate_private_key(ec.SECP384R1())
    if kind != "rsa":
        raise ValueError(f"key type must be one of {KEY_TYPES}")
    return rsa.generate_private_key(public_exponent=65537, key_size=_KEY_BITS)


class TestAuthority:
    """A root CA (its own issuer, as roots are) that issues processor certificates."""

    __test__ = False  # a helper, not a pytest class

    def __init__(self, name: str = "privasync emulator test CA") -> None:
        self._key = _key()
        now = datetime.now(UTC)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.certificate = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(self._key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_usage(signing=False), critical=True)
            .sign(self._key, hashes.SHA256()))

    def issue(self, domain: str, valid_from: datetime, valid_until: datetime,
              key_type: str = "rsa") -> tuple[SigningKey, x509.Certificate]:
        """A key (``key_type``: rsa, p256, p384) and a certificate naming ``domain``
        (common name and DNS SAN)."""
        key = _key(key_type)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)]))
            .issuer_name(self.certificate.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(valid_from).not_valid_after(valid_until)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(signing=True), critical=True)
            .sign(self._key, hashes.SHA256()))
        return key, certificate


def pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def sign(key: SigningKey, body: bytes) -> str:
    """Base64 of the signature over the body's SHA-256: RSA PKCS#1 v1.5, or ECDSA (DER)."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return base64.b64encode(key.sign(body, ec.ECDSA(hashes.SHA256()))).decode("ascii")
    return base64.b64encode(key.sign(body, padding.PKCS1v15(), hashes.SHA256())).decode("ascii")
