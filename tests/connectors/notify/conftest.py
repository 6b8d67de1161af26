"""A real SMTP relay on loopback (aiosmtpd), with STARTTLS and AUTH when asked, and a
certificate authority made at test time that the notifier trusts through ``ca_file``."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.smtp import Relay, run_relay

USERNAME, PASSWORD = "notifier", "relay-password"


@dataclass(frozen=True)
class Pki:
    ca_file: Path
    server_context: ssl.SSLContext


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_pki(folder: Path) -> Pki:
    """A CA and a certificate for 127.0.0.1 that it signed; the relay serves the latter."""
    now = datetime.now(UTC)
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(
        ec.SECP256R1())
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (x509.CertificateBuilder().subject_name(_name("privasync test CA"))
          .issuer_name(_name("privasync test CA")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(
              digital_signature=False, content_commitment=False, key_encipherment=False,
              data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
              encipher_only=False, decipher_only=False), critical=True)
          .add_extension(ca_ski, critical=False)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(_name("127.0.0.1"))
            .issuer_name(ca.subject).public_key(leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                ca_ski), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (folder / "relay.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (folder / "relay.key").write_bytes(_pem(leaf_key))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "relay.pem", folder / "relay.key")
    return Pki(folder / "ca.pem", context)


def _authenticate(server: Any, session: Session, envelope: Envelope, mechanism: str,
                  auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == USERNAME.encode() \
        and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def plain_relay() -> Iterator[Relay]:
    """No TLS, no login: a relay on a trusted internal network; takes UTF-8 addresses."""
    yield from run_relay(enable_SMTPUTF8=True)


@pytest.fixture(scope="module")
def tls_relay(pki: Pki) -> Iterator[Relay]:
    """STARTTLS required, then AUTH required: a submission relay as providers run them.

    It takes ASCII addresses only (aiosmtpd's controller would offer SMTPUTF8).
    """
    yield from run_relay(tls_context=pki.server_context, require_starttls=True,
                         auth_required=True, authenticator=_authenticate,
                         enable_SMTPUTF8=False)


@pytest.fixture(autouse=True)
def _fresh_mailboxes(request: pytest.FixtureRequest) -> None:
    """Each test starts with empty mailboxes that accept everything."""
    for name in ("plain_relay", "tls_relay"):
        if name in request.fixturenames:
            relay: Relay = request.getfixturevalue(name)
            relay.mailbox.received.clear()
            relay.mailbox.refuse_rcpt = relay.mailbox.refuse_data = None

