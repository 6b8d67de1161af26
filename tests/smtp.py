"""A real SMTP relay on loopback (aiosmtpd) that keeps what it accepts: the notifier's
tests and the end-to-end tests read the mail a person would get from it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session


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
