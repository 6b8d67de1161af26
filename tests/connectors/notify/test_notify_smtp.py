"""The person is mailed through a real relay; the address is in To and nowhere else."""

from __future__ import annotations

import email
import socket
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default

import pytest

from connectors.notify import Notice, SmtpNotifier
from core.errors import AuthError, ConfigError, DeliveryError, PermanentError, TransientError
from tests.connectors.notify.conftest import PASSWORD, USERNAME, Pki, Relay
from tests.timing import scaled

TO = "jan.jansen@example.nl"
SENDER = "privacy@acme.example"
DONE = datetime(2026, 3, 1, 12, 5, tzinfo=UTC)


def notice(language: str = "en", kind: str = "erasure", reason: str = "",
           to: str = TO) -> Notice:
    return Notice(to=to, request_id="dsr-0042", kind=kind, completed_at=DONE,  # type: ignore[arg-type]
                  organisation="Acme Klantenservice", language=language, reason=reason)  # type: ignore[arg-type]


def plain(relay: Relay, **kwargs: object) -> SmtpNotifier:
    return SmtpNotifier(host="127.0.0.1", port=relay.port, sender=SENDER, starttls=False,
                        timeout=scaled(5), **kwargs)  # type: ignore[arg-type]


def parsed(relay: Relay) -> tuple[bytes, EmailMessage]:
    (received,) = relay.mailbox.received
    message = email.message_from_bytes(received.content, policy=default)
    assert isinstance(message, EmailMessage)
    return received.content, message


def text_of(message: EmailMessage) -> str:
    """The body's words, one space apart: wrapping and no-break spaces set aside."""
    body = message.get_body(("plain",))
    assert body is not None
    return " ".join(str(body.get_content()).split())


def test_an_erasure_notice_reaches_the_relay_with_the_address_only_in_to(
        plain_relay: Relay) -> None:
    receipt = plain(plain_relay).send(notice())

    raw, message = parsed(plain_relay)
    assert receipt.code == 250
    assert receipt.message_id == message["Message-ID"]
    assert receipt.message_id.endswith("@acme.example>")
    assert TO not in receipt.message_id
    assert plain_relay.mailbox.received[0].rcpt_tos == [TO]
    assert plain_relay.mailbox.received[0].mail_from == SENDER
    assert message["To"] == TO
    assert raw.count(TO.encode()) == 1
    assert message["From"] == f"Acme Klantenservice <{SENDER}>"
    assert message["Subject"] == "Your erasure request dsr-0042 has been carried out"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Content-Language"] == "en"
    text = text_of(message)
    assert "completed on 1 March 2026, 12:05 (UTC)" in text
    assert "from every system, and at every processor" in text
    assert "Our backups hold nothing readable about you" in text
    assert "lodge a complaint with a supervisory authority (Article 77 GDPR)" in text
    assert TO not in text


def test_a_dutch_notice_is_sent_in_dutch(plain_relay: Relay) -> None:
    plain(plain_relay).send(notice(language="nl"))

    raw, message = parsed(plain_relay)
    assert message["Subject"] == "Uw verzoek dsr-0042 om gegevens te wissen is uitgevoerd"
    assert message["Content-Language"] == "nl"
    text = text_of(message)
    assert "Het wissen was voltooid op 1 maart 2026, 12:05 (UTC)" in text
    assert "Onze back-ups bevatten niets leesbaars meer over u" in text
    assert "een klacht in te dienen bij een toezichthoudende autoriteit" in text
    assert "(artikel 77 AVG)" in text
    assert "Gegevensbeschermingsautoriteit in België" in text
    assert raw.count(TO.encode()) == 1


def test_a_rejection_gives_the_reason_and_the_ways_to_object(plain_relay: Relay) -> None:
    plain(plain_relay).send(notice(kind="rejection", reason="We could not verify who asked."))

    _, message = parsed(plain_relay)
    text = text_of(message)
    assert message["Subject"] == "Your request dsr-0042: we have not carried it out"
    assert "The reason: We could not verify who asked." in text
    assert "supervisory authority (Article 77 GDPR)" in text
    assert "go to court (Article 79 GDPR)" in text


def test_an_international_address_travels_with_smtputf8(plain_relay: Relay) -> None:
    plain(plain_relay).send(notice(to="jörg@example.de"))

    raw, message = parsed(plain_relay)
    assert plain_relay.mailbox.received[0].rcpt_tos == ["jörg@example.de"]
    assert message["To"] == "jörg@example.de"


def test_over_starttls_the_relay_is_verified_and_the_login_accepted(
        tls_relay: Relay, pki: Pki) -> None:
    notifier = SmtpNotifier(host="127.0.0.1", port=tls_relay.port, sender=SENDER,
                            username=USERNAME, password=PASSWORD, timeout=scaled(5),
                            ca_file=str(pki.ca_file))
    receipt = notifier.send(notice())

    (received,) = tls_relay.mailbox.received
    assert (received.tls, received.authenticated) == (True, True)
    assert receipt.code == 250


def test_a_relay_whose_certificate_is_not_trusted_gets_nothing(tls_relay: Relay) -> None:
    notifier = SmtpNotifier(host="127.0.0.1", port=tls_relay.port, sender=SENDER,
                            username=USERNAME, password=PASSWORD, timeout=scaled(5))
    with pytest.raises(PermanentError) as caught:
        notifier.send(notice())
    assert caught.value.error_class == "smtp_tls"
    assert tls_relay.mailbox.received == []


def test_a_wrong_password_is_an_auth_error(tls_relay: Relay, pki: Pki) -> None:
    notifier = SmtpNotifier(host="127.0.0.1", port=tls_relay.port, sender=SENDER,
                            username=USERNAME, password="wrong", timeout=scaled(5),
                            ca_file=str(pki.ca_file))
    with pytest.raises(AuthError) as caught:
        notifier.send(notice())
    assert caught.value.error_class == "smtp_auth"
    assert tls_relay.mailbox.received == []


def test_a_relay_that_cannot_take_an_international_address_refuses_it_for_good(
        tls_relay: Relay, pki: Pki) -> None:
    notifier = SmtpNotifier(host="127.0.0.1", port=tls_relay.port, sender=SENDER,
                            username=USERNAME, password=PASSWORD, timeout=scaled(5),
                            ca_file=str(pki.ca_file))
    with pytest.raises(PermanentError) as caught:
        notifier.send(notice(to="jörg@example.de"))
    assert caught.value.error_class == "smtp_utf8"
    assert "jörg" not in str(caught.value)


@pytest.mark.parametrize(("where", "reply", "error", "error_class"), [
    ("rcpt", "450 4.2.1 <{address}>: mailbox busy", TransientError, "smtp_4xx"),
    ("rcpt", "550 5.1.1 <{address}>: no such user", PermanentError, "smtp_recipient_refused"),
    ("data", "451 4.3.0 try again later", TransientError, "smtp_4xx"),
    ("data", "554 5.7.1 message refused", PermanentError, "smtp_5xx"),
])
def test_a_refusal_is_transient_for_4xx_and_permanent_for_5xx(
        plain_relay: Relay, where: str, reply: str, error: type[DeliveryError],
        error_class: str) -> None:
    setattr(plain_relay.mailbox, f"refuse_{where}", reply)

    with pytest.raises(error) as caught:
        plain(plain_relay).send(notice())

    assert caught.value.error_class == error_class
    assert TO not in str(caught.value)
    assert TO not in repr(caught.value.args)
    assert plain_relay.mailbox.received == []


def test_a_relay_that_is_not_listening_is_transient() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    notifier = SmtpNotifier(host="127.0.0.1", port=closed_port, sender=SENDER, timeout=scaled(2))
    with pytest.raises(TransientError) as caught:
        notifier.send(notice())
    assert caught.value.error_class == "network"


def test_a_relay_that_never_greets_times_out_as_transient() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts in the kernel, says nothing
        notifier = SmtpNotifier(host="127.0.0.1", port=silent.getsockname()[1], sender=SENDER,
                                starttls=False, timeout=0.3)
        with pytest.raises(TransientError) as caught:
            notifier.send(notice())
    assert caught.value.error_class == "network"


@pytest.mark.parametrize(("settings", "complaint"), [
    ({"host": ""}, "host is empty"),
    ({"sender": "Acme <privacy@acme.example>"}, "one plain e-mail address"),
    ({"username": USERNAME, "password": PASSWORD, "starttls": False}, "in clear"),
    ({"username": USERNAME}, "both username and password"),
    ({"ca_file": "/nonexistent/ca.pem"}, "CA bundle"),
])
def test_an_unusable_relay_setting_refuses_to_start(settings: dict[str, object],
                                                   complaint: str) -> None:
    given: dict[str, object] = {"host": "127.0.0.1", "sender": SENDER, **settings}
    with pytest.raises(ConfigError, match=complaint):
        SmtpNotifier(**given)  # type: ignore[arg-type]
