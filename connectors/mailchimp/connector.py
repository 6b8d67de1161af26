"""The Mailchimp connector: webhook intake and consent destination for one list."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from connectors.mailchimp.client import MailchimpApi
from connectors.mailchimp.destination import MailchimpDestination
from connectors.mailchimp.webhooks import parse_webhook
from core.errors import ConfigError
from core.mappings import SystemMapping
from core.model import CanonicalEvent, DestinationSubject, Outcome


class MailchimpConnector:
    """Reads Mailchimp webhooks and writes withdrawals to one audience (list).

    ``base_url`` may be empty: it is then derived from the key's ``-dc`` suffix.
    """

    def __init__(self, *, base_url: str, api_key: str, list_id: str,
                 mapping: SystemMapping, timeout: float = 10.0) -> None:
        if not list_id:
            raise ConfigError("mailchimp list id is empty")
        self._list_id = list_id
        self._purposes = tuple(mapping.consent.all_email)
        self._api = MailchimpApi(base_url=base_url, api_key=api_key, timeout=timeout)
        self._destination = MailchimpDestination(self._api, list_id, self._purposes)

    @property
    def name(self) -> str:
        return "mailchimp"

    @property
    def batch_size(self) -> int:
        return 500

    @property
    def base_url(self) -> str:
        return self._api.base_url

    def parse_webhook(self, body: bytes, received_at: datetime) -> list[CanonicalEvent]:
        """Translate one form-encoded delivery; raises BadInput naming the bad field."""
        return parse_webhook(body, received_at, list_id=self._list_id, purposes=self._purposes)

    def apply_consent(self, subjects: Sequence[DestinationSubject]) -> list[Outcome]:
        """Unsubscribe members whose list purposes are withdrawn; see destination.py."""
        return self._destination.apply(subjects)

    def check(self) -> None:
        """``GET /ping``: raises AuthError for a bad key, TransientError when unreachable."""
        self._api.call("GET", "/ping", "mailchimp ping")
