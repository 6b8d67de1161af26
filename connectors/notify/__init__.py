"""Tell the person when their request is done (Art. 12(3)) or why it was refused (12(4)).

Two ways out, one method each: ``SmtpNotifier`` mails the message privasync
writes; ``WebhookNotifier`` hands a signed notice to an organisation that sends
its own mail. ``build_notifier`` picks the one the settings configure.
"""

from __future__ import annotations

from connectors.notify.notice import Notice, NotifyReceipt, Rendered
from connectors.notify.smtp import SmtpNotifier
from connectors.notify.webhook import WebhookNotifier
from core.errors import ConfigError

__all__ = ["Notice", "NotifyReceipt", "Rendered", "SmtpNotifier", "WebhookNotifier",
           "build_notifier"]


def build_notifier(*, smtp_host: str = "", smtp_port: int = 587, smtp_from: str = "",
                   smtp_username: str | None = None, smtp_password: str | None = None,
                   smtp_starttls: bool = True, smtp_timeout: float = 10.0,
                   smtp_ca_file: str | None = None, webhook_url: str = "",
                   webhook_secret: str | None = None,
                   webhook_timeout: float = 10.0) -> SmtpNotifier | WebhookNotifier | None:
    """The notifier the settings ask for: SMTP when a host is set, the webhook when a URL is.

    None when neither is set (nobody is told: the caller decides whether that
    may start). Raises ConfigError when both are set, since the person would
    get two messages, or when the chosen one is incomplete.
    """
    if smtp_host and webhook_url:
        raise ConfigError("configure SMTP or the notify webhook, not both")
    if smtp_host:
        return SmtpNotifier(host=smtp_host, port=smtp_port, sender=smtp_from,
                            username=smtp_username or None, password=smtp_password or None,
                            starttls=smtp_starttls, timeout=smtp_timeout,
                            ca_file=smtp_ca_file or None)
    if webhook_url:
        return WebhookNotifier(url=webhook_url, secret=webhook_secret or "",
                               timeout=webhook_timeout)
    return None
