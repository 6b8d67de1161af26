"""Signed consent updates to a partner (a processor or recipient, Art. 28).

Each batch is one JSON POST carrying, per subject, only the purposes the
partner serves and only the identifiers its agreement declares. A 2xx is the
partner's acknowledgement; its event id is kept as the receipt.
"""

from __future__ import annotations

import json
import logging
import socket
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from connectors.partner.signing import EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from connectors.transport import (
    TimeoutSession,
    blip_retry,
    error_for_network,
    error_for_status,
    parse_retry_after,
)
from core.errors import ConfigError, TransientError
from core.mappings import Partner
from core.model import DestinationSubject, Outcome

log = logging.getLogger(__name__)


def _endpoint(url: str) -> tuple[str, int]:
    """Host and port of an http(s) URL; ConfigError when it is not one."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("partner url must be an absolute http(s) URL")
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigError("partner url has an invalid port") from exc
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


class PartnerConnector:
    """A ``ConsentDestination`` that POSTs HMAC-signed consent updates to a partner."""

    def __init__(self, *, name: str, partner: Partner, url: str, secret: str,
                 timeout: float = 10.0) -> None:
        if not secret:
            raise ConfigError(f"partner {name}: signing secret is empty")
        self._name = name
        self._partner = partner
        self._url = url
        self._endpoint = _endpoint(url)
        self._secret = secret
        self._timeout = timeout
        self._session = TimeoutSession(timeout)

    @property
    def name(self) -> str:
        return f"partner:{self._name}"

    @property
    def batch_size(self) -> int:
        return 100

    def _subject(self, subject: DestinationSubject) -> dict[str, Any]:
        """Minimise: only the partner's purposes, only its declared identifiers."""
        entry: dict[str, Any] = {"subject_id": subject.subject_id}
        if "email" in self._partner.identifiers and subject.email:
            entry["email"] = subject.email
        entry["consents"] = [
            {"purpose": c.purpose, "channel": c.channel.value, "status": c.status.value,
             "occurred_at": c.occurred_at.isoformat()}
            for c in subject.consents if c.purpose in self._partner.purposes
        ]
        return entry

    def payload(self, subjects: Sequence[DestinationSubject], event_id: str,
                sent_at: datetime) -> bytes:
        """The exact bytes that are signed and sent for one batch."""
        document = {"event_id": event_id, "sent_at": sent_at.isoformat(),
                    "subjects": [self._subject(s) for s in subjects]}
        return json.dumps(document, separators=(",", ":"), sort_keys=True).encode("utf-8")

    def apply_consent(self, subjects: Sequence[DestinationSubject]) -> list[Outcome]:
        """Send one signed batch; every subject succeeds when the partner answers 2xx.

        Raises TransientError (429, 5xx, network) or PermanentError/AuthError
        (other 4xx) for the whole batch; the worker retries until a 2xx.
        """
        if not subjects:
            return []
        event_id = str(uuid.uuid4())
        body = self.payload(subjects, event_id, datetime.now(UTC))
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp,
                   EVENT_ID_HEADER: event_id,
                   SIGNATURE_HEADER: sign(self._secret, timestamp, body)}
        self._post(body, headers)
        log.info("partner acknowledged consent batch", extra={
            "destination": self.name, "partner_event_id": event_id, "subjects": len(subjects)})
        return [Outcome(subject_id=s.subject_id, note="acknowledged by partner",
                        detail={"partner_event_id": event_id}) for s in subjects]

    def _post(self, body: bytes, headers: dict[str, str]) -> None:
        what = f"{self.name} consent update"
        try:
            self._post_once(body, headers, what)
        except requests.RequestException as exc:
            raise error_for_network(exc, what) from exc

    @blip_retry
    def _post_once(self, body: bytes, headers: dict[str, str], what: str) -> None:
        response = self._session.post(self._url, data=body, headers=headers)
        if response.status_code // 100 != 2:
            raise error_for_status(response.status_code, what,
                                   retry_after=parse_retry_after(
                                       response.headers.get("Retry-After")))

    def check(self) -> None:
        """Open and close a TCP connection to the partner's host and port.

        A signed POST would deliver data and a GET is not part of the partner
        contract, so the check sends no bytes at all: it proves the URL parses,
        the host resolves and something listens there.
        """
        host, port = self._endpoint
        try:
            connection = socket.create_connection((host, port), timeout=self._timeout)
        except OSError as exc:
            raise TransientError(f"{self.name} check: {type(exc).__name__}",
                                 error_class="network") from exc
        connection.close()
