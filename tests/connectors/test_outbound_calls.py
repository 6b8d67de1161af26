"""Every outbound call has a timeout and verifies TLS: checked on the real client objects
each connector is built with (from settings, as the composition root builds them), and
on a peer that accepts a connection and never answers."""

from __future__ import annotations

import re
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from pydantic import SecretStr

from connectors.mailchimp.client import MailchimpApi
from connectors.notify import SmtpNotifier
from connectors.transport import TimeoutSession
from core.crypto import Keyring
from core.errors import ConfigError, TransientError
from core.mappings import load_mappings
from privasync.app.bootstrap import build_connectors
from privasync.app.notices import person_notifier
from privasync.app.settings import Settings
from privasync.app.taxonomy import data_categories

ROOT = Path(__file__).parents[2]
TIMEOUT = 7.0


def settings(**extra: object) -> Settings:
    return Settings(
        secret_key=SecretStr("s" * 32), mappings_dir=ROOT / "mappings",
        hubspot={"access_token": SecretStr("t"), "client_secret": SecretStr("c"),
                 "timeout_seconds": TIMEOUT},
        salesforce={"instance_url": "https://acme.my.salesforce.com",
                    "session_id": SecretStr("00D!x"), "timeout_seconds": TIMEOUT},
        mailchimp={"api_key": SecretStr("k-us6"), "list_id": "l1", "timeout_seconds": TIMEOUT},
        **extra)  # type: ignore[arg-type]


def sessions_of(connector: object) -> list[requests.Session]:
    """Every requests session a connector holds, however deep (one level of helpers)."""
    found: list[requests.Session] = []
    for value in [connector, *vars(connector).values()]:
        for inner in [value, *getattr(value, "__dict__", {}).values()]:
            if isinstance(inner, requests.Session) and inner not in found:
                found.append(inner)
    return found


def assert_guarded(session: requests.Session, timeout: float) -> None:
    assert isinstance(session, TimeoutSession), type(session)
    assert session.timeout == timeout and session.verify is True


def test_each_vendor_session_has_a_timeout_and_verifies_tls() -> None:
    config = settings()
    mappings = load_mappings(config.mappings_dir, data_categories())
    env = {"PRIVASYNC_PARTNER_CONTACT_CENTRE_SECRET": "partner-secret"}
    built = build_connectors(config, mappings, env, keyring=Keyring(b"s" * 32, [b"k" * 32]))
    assert {"hubspot", "salesforce", "mailchimp"} <= set(built)

    hubspot = built["hubspot"]
    [session] = sessions_of(hubspot)
    assert_guarded(session, TIMEOUT)
    sdk = hubspot._reader._sdk
    assert sdk._timeout == TIMEOUT  # passed as _request_timeout on every SDK call
    crm = sdk.client.crm
    for api in (crm.contacts.basic_api, crm.contacts.batch_api, crm.properties.core_api):
        configuration = api.api_client.configuration
        assert configuration.verify_ssl is True and configuration.host.startswith("https://")

    salesforce = built["salesforce"]._client._credentials.connect()  # a session id: no I/O
    assert_guarded(salesforce.session, TIMEOUT)
    assert salesforce.base_url.startswith("https://")

    [mailchimp] = sessions_of(built["mailchimp"]._api)
    assert_guarded(mailchimp, TIMEOUT)

    partners = [c for name, c in built.items() if name.startswith("partner:")]
    assert partners
    for partner in partners:
        for session in sessions_of(partner):
            assert_guarded(session, 10.0)


def test_the_notifiers_have_a_timeout_and_smtp_verifies_the_relay() -> None:
    webhook = person_notifier(settings(notify_webhook={"url": "https://mail.example/hook",
                                                       "secret": SecretStr("x"),
                                                       "timeout_seconds": 3}))
    [session] = sessions_of(webhook)
    assert_guarded(session, 3.0)
    smtp = person_notifier(settings(smtp={"host": "relay.example", "from": "dpo@example.org",
                                          "timeout_seconds": 4}))
    assert smtp is not None and isinstance(smtp.sender, SmtpNotifier)
    assert smtp.sender._timeout == 4.0  # on the connect and on every SMTP command
    context = smtp.sender._tls
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname is True


def test_a_session_refuses_to_send_without_verification_or_a_timeout() -> None:
    session = TimeoutSession(5)
    with pytest.raises(ConfigError):
        session.get("https://example.invalid/", verify=False)
    with pytest.raises(ConfigError):
        session.get("https://example.invalid/", timeout=None)
    with pytest.raises(ConfigError):
        TimeoutSession(0)


@pytest.fixture
def silent_peer() -> Iterator[str]:
    """A loopback server that accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_a_peer_that_never_answers_is_given_up_on(silent_peer: str) -> None:
    api = MailchimpApi(base_url=silent_peer, api_key="k-us6", timeout=0.3)
    with pytest.raises(TransientError) as gave_up:
        api.call("GET", "/ping", "mailchimp ping")
    assert gave_up.value.error_class == "network"


def test_no_code_turns_tls_verification_off() -> None:
    pattern = re.compile(r"verify\s*=\s*False|verify_ssl\s*=\s*False|CERT_NONE|"
                         r"check_hostname\s*=\s*False|_create_unverified_context")
    offenders = [f"{path.relative_to(ROOT)}:{n}"
                 for package in ("core", "connectors", "workers", "api")
                 for path in (ROOT / package).rglob("*.py")
                 for n, line in enumerate(path.read_text().splitlines(), 1)
                 if pattern.search(line)]
    assert offenders == []
