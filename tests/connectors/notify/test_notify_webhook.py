"""An organisation's own mail system gets each notice once, signed, and can prove who sent it."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.notify import Notice, WebhookNotifier
from core.errors import AuthError, ConfigError, DeliveryError, PermanentError, TransientError
from privasync.emulators.http import Emulator, Fault, Request, Response
from tests.emulators.conftest import serve
from tests.timing import scaled

SECRET = "notice-secret"
TO = "jan.jansen@example.nl"
DONE = datetime(2026, 3, 1, 12, 5, tzinfo=UTC)


class MailSystem(Emulator):
    """The receiving side, checking the signature with its own HMAC code, not privasync's."""

    name = "mail-system"

    def __init__(self) -> None:
        super().__init__()
        self.notices: list[dict[str, Any]] = []
        self.route("POST", "/notices", self._receive)

    def _signed(self, request: Request) -> bool:
        timestamp = request.headers.get("x-privasync-timestamp", "")
        signature = request.headers.get("x-privasync-signature", "")
        mac = hmac.new(SECRET.encode(), timestamp.encode() + b"." + request.body,
                       hashlib.sha256).hexdigest()
        fresh = timestamp.isdigit() and abs(time.time() - int(timestamp)) < 300
        return fresh and hmac.compare_digest(signature, f"v1={mac}")

    def _receive(self, request: Request, _match: re.Match[str]) -> Response:
        if not self._signed(request):
            return Response(401, {"error": "bad signature"})
        notice = json.loads(request.body)
        if notice["event_id"] != request.headers.get("x-privasync-event-id"):
            return Response(401, {"error": "event id differs from the signed body"})
        with self.lock:
            if all(n["event_id"] != notice["event_id"] for n in self.notices):
                self.notices.append(notice)
        return Response(202, {"queued": notice["event_id"]})


@pytest.fixture(scope="module")
def running() -> Iterator[MailSystem]:
    yield from serve(MailSystem())


@pytest.fixture
def mail_system(running: MailSystem) -> MailSystem:
    running.clear_faults()
    with running.lock:
        running.notices.clear()
        running.log.clear()
    return running


def notifier(mail_system: MailSystem, secret: str = SECRET) -> WebhookNotifier:
    return WebhookNotifier(url=f"{mail_system.url}/notices", secret=secret, timeout=scaled(5))


def notice(kind: str = "erasure", reason: str = "", request_id: str = "dsr-0042") -> Notice:
    return Notice(to=TO, request_id=request_id, kind=kind, completed_at=DONE,  # type: ignore[arg-type]
                  organisation="Acme", language="nl", reason=reason)


def test_a_notice_arrives_signed_with_the_address_to_write_to(mail_system: MailSystem) -> None:
    receipt = notifier(mail_system).send(notice())

    (received,) = mail_system.notices
    assert received == {"event_id": receipt.message_id, "request_id": "dsr-0042",
                        "kind": "erasure", "completed_at": "2026-03-01T12:05:00+00:00",
                        "to": TO, "language": "nl"}
    assert receipt.code == 202
    assert receipt.sent_at.tzinfo is not None


def test_a_rejection_carries_the_admins_reason(mail_system: MailSystem) -> None:
    notifier(mail_system).send(notice(kind="rejection", reason="Identity not confirmed."))

    (received,) = mail_system.notices
    assert (received["kind"], received["reason"]) == ("rejection", "Identity not confirmed.")


def test_a_notice_sent_again_is_the_same_event_so_the_person_is_mailed_once(
        mail_system: MailSystem) -> None:
    first = notifier(mail_system).send(notice())
    again = notifier(mail_system).send(notice())
    other = notifier(mail_system).send(notice(request_id="dsr-0043"))

    assert first.message_id == again.message_id != other.message_id
    assert [n["request_id"] for n in mail_system.notices] == ["dsr-0042", "dsr-0043"]


def test_a_bare_503_is_retried_within_the_call(mail_system: MailSystem) -> None:
    mail_system.inject(Fault(503))

    notifier(mail_system).send(notice())

    assert len(mail_system.notices) == 1
    assert [status for _, _, status in mail_system.log] == [503, 202]


@pytest.mark.parametrize(("fault", "error", "error_class"), [
    (Fault(500), TransientError, "http_500"),
    (Fault(400), PermanentError, "http_400"),
    (Fault(403), AuthError, "http_403"),
])
def test_a_refusal_maps_to_the_error_tree(mail_system: MailSystem, fault: Fault,
                                          error: type[DeliveryError], error_class: str) -> None:
    mail_system.inject(fault)

    with pytest.raises(error) as caught:
        notifier(mail_system).send(notice())

    assert caught.value.error_class == error_class
    assert TO not in str(caught.value)
    assert mail_system.notices == []


def test_a_429_passes_on_its_retry_after(mail_system: MailSystem) -> None:
    mail_system.inject(Fault(429, headers={"Retry-After": "30"}))
    with pytest.raises(TransientError) as caught:
        notifier(mail_system).send(notice())
    assert (caught.value.error_class, caught.value.retry_after) == ("http_429", 30)


def test_a_wrong_secret_is_refused_as_an_auth_error(mail_system: MailSystem) -> None:
    with pytest.raises(AuthError):
        notifier(mail_system, secret="not-the-secret").send(notice())
    assert mail_system.notices == []


def test_a_receiver_that_is_not_listening_is_transient() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    webhook = WebhookNotifier(url=f"http://127.0.0.1:{closed_port}/notices", secret=SECRET,
                              timeout=1)
    with pytest.raises(TransientError) as caught:
        webhook.send(notice())
    assert caught.value.error_class == "network"
    assert TO not in str(caught.value)


@pytest.mark.parametrize(("url", "secret", "complaint"), [
    ("ftp://mail.example/notices", SECRET, "absolute http"),
    ("/notices", SECRET, "absolute http"),
    ("https://mail.example/notices", "", "secret is empty"),
])
def test_an_unusable_webhook_setting_refuses_to_start(url: str, secret: str,
                                                      complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        WebhookNotifier(url=url, secret=secret)


def test_an_extension_carries_its_reason(mail_system: MailSystem) -> None:
    notifier(mail_system).send(notice(kind="extension", reason="Many systems to search."))

    (received,) = mail_system.notices
    assert (received["kind"], received["reason"]) == ("extension", "Many systems to search.")
