"""The Mailchimp connector for one list: webhook intake, consent and record destination,
erasure destination and export source."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from connectors.mailchimp.client import MailchimpApi
from connectors.mailchimp.destination import MailchimpDestination, MemberKeys
from connectors.mailchimp.erasure import ERASE_BATCH, MailchimpErasure
from connectors.mailchimp.export import EXPORT_BATCH, MailchimpExport
from connectors.mailchimp.records import RECORD_LIMIT, MailchimpRecords
from connectors.mailchimp.webhooks import parse_webhook
from connectors.ratelimits import Connections
from core.errors import ConfigError, PermanentError
from core.mappings import SystemMapping
from core.model import (
    CanonicalEvent,
    DestinationRecord,
    DestinationSubject,
    ErasureReceipt,
    ExportResult,
    Outcome,
    PersonAt,
)

MEMBERS_PAGE = 1000  # the API's largest page


class MailchimpConnector:
    """Reads Mailchimp webhooks; writes withdrawals and merge fields to one audience (list);
    erases its members and exports what it holds about them.

    Implements core.ports.ConsentDestination, RecordDestination, ErasureDestination and
    ExportSource.

    ``base_url`` may be empty: it is then derived from the key's ``-dc`` suffix. Every
    request holds one of ``connections`` (the key's simultaneous connections) while it runs.
    ``keys`` (the installation's keyring) keys what is stored about members and deliveries.
    """

    def __init__(self, *, base_url: str, api_key: str, list_id: str,
                 mapping: SystemMapping, keys: MemberKeys, timeout: float = 10.0,
                 connections: Connections | None = None) -> None:
        if not list_id:
            raise ConfigError("mailchimp list id is empty")
        self._list_id = list_id
        self._purposes = tuple(mapping.consent.all_email)
        self._api = MailchimpApi(base_url=base_url, api_key=api_key, timeout=timeout,
                                 connections=connections)
        self._keys = keys
        self._destination = MailchimpDestination(self._api, list_id, self._purposes, keys)
        self._records = MailchimpRecords(self._api, list_id, mapping, keys)
        self._erasure = MailchimpErasure(self._api, list_id)
        self._export = MailchimpExport(self._api, list_id)
        self._merge_fields = {tag: f.canonical for tag, f in mapping.fields.items()}

    @property
    def name(self) -> str:
        return "mailchimp"

    @property
    def batch_size(self) -> int:
        return 500

    @property
    def record_batch_size(self) -> int:
        return RECORD_LIMIT

    @property
    def erase_batch_size(self) -> int:
        return ERASE_BATCH

    @property
    def export_batch_size(self) -> int:
        return EXPORT_BATCH

    @property
    def base_url(self) -> str:
        return self._api.base_url

    def parse_webhook(self, body: bytes, received_at: datetime) -> list[CanonicalEvent]:
        """Translate one form-encoded delivery; raises BadInput naming the bad field."""
        return parse_webhook(body, received_at, list_id=self._list_id, purposes=self._purposes,
                             event_id=self._keys.delivery_key, fields=self._merge_fields)

    def apply_consent(self, subjects: Sequence[DestinationSubject]) -> list[Outcome]:
        """Unsubscribe members whose list purposes are withdrawn; see destination.py."""
        return self._destination.apply(subjects)

    def push_fields(self, records: Sequence[DestinationRecord]) -> list[Outcome]:
        """Update merge fields of existing members in one batch call; see records.py."""
        return self._records.push(records)

    def erase(self, people: Sequence[PersonAt]) -> list[ErasureReceipt]:
        """Permanently delete each person's members and verify they read 404; see erasure.py.
        Raises DeliveryError when the list cannot be read."""
        return self._erasure.erase(people)

    def export(self, people: Sequence[PersonAt]) -> list[ExportResult]:
        """Every field each person's members hold; see export.py. Raises DeliveryError."""
        return self._export.export(people)

    def addresses(self) -> Iterator[str]:
        """The address of every member of the list (archived ones left out), 1,000 per call,
        so privasync learns who is a member without a call per person. Raises
        DeliveryError."""
        offset = 0
        while True:
            page = self._api.call(
                "GET", f"/lists/{self._list_id}/members?count={MEMBERS_PAGE}&offset={offset}"
                "&fields=members.email_address,total_items", "mailchimp list members")
            members = page.get("members") if isinstance(page, dict) else None
            if not members:
                return
            for member in members:
                if isinstance(member, dict) and member.get("email_address"):
                    yield str(member["email_address"])
            offset += len(members)
            if offset >= int(page.get("total_items") or 0):
                return

    def check(self) -> None:
        """``GET /ping`` and the audience: raises AuthError for a bad key, TransientError when
        unreachable, PermanentError when the list id names no audience."""
        self._api.call("GET", "/ping", "mailchimp ping")
        if self._api.call("GET", f"/lists/{self._list_id}?fields=id", "mailchimp audience",
                          missing_ok=True) is None:
            raise PermanentError("mailchimp audience: no audience has this list id",
                                 error_class="mailchimp_list")
