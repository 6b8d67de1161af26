"""A real SMTP relay on loopback (aiosmtpd), with STARTTLS and AUTH when asked, and a
certificate authority made at test time that the notifier trusts through ``ca_file``."""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

USERNAME, PASSWORD = "notifier", "relay-password"


@dataclass
class Received:
    """One message the relay accepted, with how it arrived."""

    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    tls: bool
    authenticated: bool


@dataclass
class Mailbox:
    """An aiosmtpd handler: keeps what it accepts, or refuses at RCPT or DATA with a set reply.

    ``refuse_rcpt`` may name ``{address}``: relays often quote the address they refuse.
    """

    received: list[Received] = field(default_factory=list)
    refuse_rcpt: str | None = None
    refuse_data: str | None = None

    async def handle_RCPT(self, server: Any, session: Session, envelope: Envelope,  # noqa: N802
                          address: str, rcpt_options: list[str]) -> str:
        if self.refuse_rcpt:
            return self.refuse_rcpt.format(address=address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session,  # noqa: N802
                          envelope: Envelope) -> str:
        if self.refuse_data:
            return self.refuse_data
        assert isinstance(envelope.original_content, bytes)
        self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos),
                                      envelope.original_content, session.ssl is not None,
                                      bool(session.authenticated)))
        return "250 2.0.0 Message accepted for delivery"


class LoopbackController(Controller):
    """aiosmtpd's controller on a socket bound before it starts: a free port, no race."""

    def __init__(self, handler: Mailbox, **smtp_parameters: Any) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        super().__init__(handler, hostname="127.0.0.1", port=self._sock.getsockname()[1],
                         **smtp_parameters)

    def _create_server(self) -> Any:
        return self.loop.create_server(self._factory_invoker, sock=self._sock)


@dataclass
class Relay:
    mailbox: Mailbox
    port: int


def run_relay(**smtp_parameters: Any) -> Iterator[Relay]:
    mailbox = Mailbox()
    controller = LoopbackController(mailbox, **smtp_parameters)
    controller.start()
    try:
        yield Relay(mailbox, controller.port)
    finally:
        controller.stop()


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

