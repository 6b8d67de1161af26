"""Tell the person when their request is done (Art. 12(3)) or why it was refused (12(4))."""

from __future__ import annotations

from connectors.notify.notice import Notice, NotifyReceipt, Rendered
from connectors.notify.smtp import SmtpNotifier
from connectors.notify.webhook import WebhookNotifier

__all__ = ["Notice", "NotifyReceipt", "Rendered", "SmtpNotifier", "WebhookNotifier"]
