"""The core's Notifier port on top of the notify connectors: settings in, notices out."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Literal

from connectors.notify import Notice, SmtpNotifier, WebhookNotifier, build_notifier
from connectors.notify.notice import Kind
from privasync.app.settings import Settings

_KINDS: dict[str, Kind] = {"rejection": "rejection", "extension": "extension"}


class PersonNotifier:
    """Tells a person their request was carried out or refused, in the configured language,
    signed with the organisation's name; the receipt names the server's answer only."""

    def __init__(self, sender: SmtpNotifier | WebhookNotifier, *, organisation: str,
                 language: Literal["en", "nl"]) -> None:
        self.sender, self.organisation, self.language = sender, organisation, language

    def notify(self, to: str, *, kind: str, request_id: str, at: datetime,
               reason: str = "") -> Mapping[str, str]:
        told = self.sender.send(Notice(
            to=to, request_id=request_id, kind=_KINDS.get(kind, "erasure"),
            completed_at=at, organisation=self.organisation, language=self.language,
            reason=reason))
        return {"code": str(told.code), "message_id": told.message_id,
                "sent_at": told.sent_at.isoformat()}


def person_notifier(settings: Settings) -> PersonNotifier | None:
    """The notifier the settings configure, or None (then nobody is told, and it says so)."""
    smtp, hook = settings.smtp, settings.notify_webhook
    sender = build_notifier(
        smtp_host=smtp.host, smtp_port=smtp.port, smtp_from=smtp.from_,
        smtp_username=smtp.username,
        smtp_password=smtp.password.get_secret_value() if smtp.password else None,
        smtp_starttls=smtp.starttls, smtp_timeout=smtp.timeout_seconds,
        smtp_ca_file=str(smtp.ca_file) if smtp.ca_file else None, webhook_url=hook.url,
        webhook_secret=hook.secret.get_secret_value() if hook.secret else None,
        webhook_timeout=hook.timeout_seconds)
    if sender is None:
        return None
    return PersonNotifier(sender, organisation=settings.organisation,
                          language=settings.notify_language)
