"""Hand a notice to the organisation's own mail system as a signed JSON POST.

For organisations that send every message to customers themselves (their own
templates, their own sending domain). The POST is signed exactly as partner
updates are (``connectors.signing``), so one verifier serves both. The body
carries the address, because the receiver must write to it, and nothing else
about the person; ``language`` and, for a refusal, the admin's ``reason`` let
it write the same message privasync would. The event id is derived from the
request and the kind, so a retry after a lost answer is the same event and a
receiver that dedupes by event id never mails the person twice.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import urlsplit

import requests

from connectors.notify.notice import WITH_REASON, Notice, NotifyReceipt
from connectors.signing import EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from connectors.transport import (
    TimeoutSession,
    blip_retry,
    error_for_network,
    error_for_status,
    parse_retry_after,
)
from core.errors import ConfigError

log = logging.getLogger(__name__)

# Fixed forever: changing it would give a retried notice a new event id.
_EVENT_NAMESPACE = uuid.UUID("5b0d1f38-8a47-4d7e-9a53-3c1e0c6f2a91")


def event_id(notice: Notice) -> str:
    """The same id for every attempt at the same notice (request and kind)."""
    return str(uuid.uuid5(_EVENT_NAMESPACE, f"{notice.kind}/{notice.request_id}"))


class WebhookNotifier:
    """POSTs each notice, signed, to the organisation's endpoint; a 2xx is the receipt."""

    def __init__(self, *, url: str, secret: str, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError("notify webhook url must be an absolute http(s) URL")
        if not secret:
            raise ConfigError("notify webhook: signing secret is empty")
        self._url = url
        self._secret = secret
        self._session = TimeoutSession(timeout)

    @staticmethod
    def payload(notice: Notice, event: str) -> bytes:
        """The exact bytes that are signed and sent for one notice."""
        document: dict[str, str] = {
            "event_id": event, "request_id": notice.request_id, "kind": notice.kind,
            "completed_at": notice.completed_at.isoformat(), "to": notice.to,
            "language": notice.language,
        }
        if notice.kind in WITH_REASON:
            document["reason"] = notice.reason
        return json.dumps(document, separators=(",", ":"), sort_keys=True).encode("utf-8")

    def send(self, notice: Notice) -> NotifyReceipt:
        """POST one signed notice; the receipt holds the HTTP status and the event id.

        Raises TransientError (429, 5xx, network), AuthError (401/403) or
        PermanentError (any other non-2xx).
        """
        event = event_id(notice)
        body = self.payload(notice, event)
        what = f"notify webhook {notice.request_id}"
        try:
            status = self._post(body, event, what)
        except requests.RequestException as exc:
            raise error_for_network(exc, what) from exc
        log.info("notice accepted by the webhook", extra={
            "request_id": notice.request_id, "kind": notice.kind, "http_status": status,
            "event_id": event})
        return NotifyReceipt(code=status, message_id=event, sent_at=datetime.now(UTC))

    @blip_retry
    def _post(self, body: bytes, event: str, what: str) -> int:
        """Sign afresh on each try, so a retried POST carries a current timestamp."""
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp,
                   EVENT_ID_HEADER: event, SIGNATURE_HEADER: sign(self._secret, timestamp, body)}
        response = self._session.post(self._url, data=body, headers=headers)
        if response.status_code // 100 != 2:
            raise error_for_status(response.status_code, what, retry_after=parse_retry_after(
                response.headers.get("Retry-After")))
        return response.status_code
