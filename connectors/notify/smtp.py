"""Send a notice as plain-text e-mail through the organisation's SMTP relay.

One connection per notice, with a timeout on the connect and on every command;
STARTTLS verifies the relay's certificate (the system's trust store, or the CA
bundle of a private relay); credentials are only ever sent inside TLS. The
dialogue is driven step by step so the reply to DATA, the relay's word that it
took the message, becomes the receipt. Failures are translated once, here,
into the product's error tree; no message repeats the address or the relay's
reply text, which often quotes it.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid

from connectors.notify.notice import Notice, NotifyReceipt, plain_address
from connectors.transport import error_for_network
from core.errors import AuthError, ConfigError, DeliveryError, PermanentError, TransientError

log = logging.getLogger(__name__)


def _reply_error(code: int, what: str, *, refused_class: str | None = None) -> DeliveryError:
    """A negative SMTP reply: 4xx is worth another try later, 5xx is not."""
    if 400 <= code < 500:
        return TransientError(f"{what}: SMTP {code}", error_class="smtp_4xx")
    return PermanentError(f"{what}: SMTP {code}", error_class=refused_class or "smtp_5xx")


def _translate(exc: Exception, what: str) -> DeliveryError:
    """The error table for everything smtplib and the socket layer raise."""
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return AuthError(f"{what}: login refused (SMTP {exc.smtp_code})", error_class="smtp_auth")
    if isinstance(exc, smtplib.SMTPResponseException):
        return _reply_error(exc.smtp_code, what)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return TransientError(f"{what}: relay closed the connection", error_class="network")
    if isinstance(exc, ssl.SSLError):
        return PermanentError(f"{what}: TLS failed ({type(exc).__name__})", error_class="smtp_tls")
    if isinstance(exc, OSError):
        return error_for_network(exc, what)
    return PermanentError(f"{what}: {type(exc).__name__}", error_class="smtp_error")


class SmtpNotifier:
    """Mails each notice from ``sender`` in the person's language; one call, one message."""

    def __init__(self, *, host: str, port: int = 587, sender: str, username: str | None = None,
                 password: str | None = None, starttls: bool = True, timeout: float = 10.0,
                 ca_file: str | None = None) -> None:
        if not host:
            raise ConfigError("smtp: host is empty")
        if not plain_address(sender):
            raise ConfigError("smtp: the sender must be one plain e-mail address")
        if username and not starttls:
            raise ConfigError("smtp: a login needs STARTTLS; the password would travel in clear")
        if bool(username) != bool(password):
            raise ConfigError("smtp: set both username and password, or neither")
        self._host, self._port, self._timeout = host, port, timeout
        self._sender, self._username, self._password = sender, username, password
        self._tls = self._context(ca_file) if starttls else None

    @staticmethod
    def _context(ca_file: str | None) -> ssl.SSLContext:
        """Verify the relay: the default trust store, or only the given CA bundle."""
        try:
            return ssl.create_default_context(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"smtp: CA bundle cannot be loaded ({type(exc).__name__})") from exc

    def message(self, notice: Notice, message_id: str) -> EmailMessage:
        """The e-mail for a notice: the address is in To and nowhere else."""
        rendered = notice.render()
        message = EmailMessage()
        message["From"] = formataddr((notice.organisation, self._sender))
        message["To"] = notice.to
        message["Subject"] = rendered.subject
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Message-ID"] = message_id
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
        message.set_content(rendered.body, charset="utf-8", cte="quoted-printable")
        message["Content-Language"] = notice.language  # after set_content, which clears it
        return message

    def send(self, notice: Notice) -> NotifyReceipt:
        """Hand one notice to the relay; the receipt holds its reply code and the Message-ID.

        Raises TransientError (unreachable, timeout, 4xx), PermanentError (5xx,
        ``smtp_recipient_refused`` when the relay refuses this address; TLS
        failures) or AuthError (login refused).
        """
        what = f"smtp notice {notice.request_id}"
        message_id = make_msgid(domain=self._sender.rpartition("@")[2])
        international = not (self._sender + notice.to).isascii()
        payload = self.message(notice, message_id).as_bytes(
            policy=policy.SMTPUTF8 if international else policy.SMTP)
        try:
            code = self._deliver(notice.to, payload, international, what)
        except (smtplib.SMTPException, OSError) as exc:
            raise _translate(exc, what) from exc
        log.info("notice accepted by the relay", extra={
            "request_id": notice.request_id, "kind": notice.kind, "smtp_code": code,
            "message_id": message_id})
        return NotifyReceipt(code=code, message_id=message_id, sent_at=datetime.now(UTC))

    def _deliver(self, to: str, payload: bytes, international: bool, what: str) -> int:
        """EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA; return DATA's reply code."""
        smtp = smtplib.SMTP(self._host, self._port, timeout=self._timeout)
        try:
            self._open(smtp, what)
            options = ["SMTPUTF8"] if international else []
            if international and not smtp.has_extn("smtputf8"):
                raise PermanentError(f"{what}: relay cannot take an international address",
                                     error_class="smtp_utf8")
            code, _ = smtp.mail(self._sender, options)
            if code != 250:
                raise _reply_error(code, f"{what} MAIL")
            code, _ = smtp.rcpt(to)
            if code not in (250, 251):
                raise _reply_error(code, f"{what} RCPT", refused_class="smtp_recipient_refused")
            code, _ = smtp.data(payload)  # raises only when DATA itself is refused
            if code != 250:
                raise _reply_error(code, f"{what} DATA")
        except BaseException:
            smtp.close()
            raise
        self._quit(smtp, what)
        return code

    def _open(self, smtp: smtplib.SMTP, what: str) -> None:
        smtp.ehlo()
        if self._tls is not None:
            if not smtp.has_extn("starttls"):
                raise PermanentError(f"{what}: relay does not offer STARTTLS",
                                     error_class="smtp_tls")
            smtp.starttls(context=self._tls)
            smtp.ehlo()
        if self._username and self._password:
            try:
                smtp.login(self._username, self._password)
            except smtplib.SMTPAuthenticationError:
                raise
            except smtplib.SMTPException as exc:  # no AUTH offered, or no mechanism in common
                raise AuthError(f"{what}: relay offers no usable login",
                                error_class="smtp_auth") from exc

    @staticmethod
    def _quit(smtp: smtplib.SMTP, what: str) -> None:
        """Say goodbye after the relay took the message; a failed QUIT cannot undo that."""
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError) as exc:
            log.warning("relay failed at QUIT after accepting the message",
                        extra={"call": what, "error": type(exc).__name__})
            smtp.close()
