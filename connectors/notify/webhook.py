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
from requests.auth import AuthBase

from connectors.notify.notice import WITH_REASON, Notice, NotifyReceipt
from connectors.signing import EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from connectors.transport import PLAIN, TimeoutSession, send
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
        response = send(self._session, "POST", self._url, what=what, errors=PLAIN, data=body,
                        headers={"Content-Type": "application/json"},
                        auth=_Signed(self._secret, event))
        status = response.status_code
        log.info("notice accepted by the webhook", extra={
            "request_id": notice.request_id, "kind": notice.kind, "http_status": status,
            "event_id": event})
        return NotifyReceipt(code=status, message_id=event, sent_at=datetime.now(UTC))


class _Signed(AuthBase):
    """Signs each try afresh as it is prepared, so a retried POST carries a current
    timestamp."""

    def __init__(self, secret: str, event: str) -> None:
        self._secret = secret
        self._event = event

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        timestamp = str(int(time.time()))
        body = request.body if isinstance(request.body, bytes) else b""
        request.headers.update({TIMESTAMP_HEADER: timestamp, EVENT_ID_HEADER: self._event,
                                SIGNATURE_HEADER: sign(self._secret, timestamp, body)})
        return request
