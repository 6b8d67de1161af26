"""The Mailchimp connector for one list: webhook intake, consent and record destination,
erasure destination and export source."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from connectors.mailchimp import audience
from connectors.mailchimp.client import MailchimpApi, subscriber_hash
from connectors.mailchimp.destination import MailchimpDestination, MemberKeys
from connectors.mailchimp.erasure import ERASE_BATCH, MailchimpErasure
from connectors.mailchimp.export import EXPORT_BATCH, MailchimpExport
from connectors.mailchimp.membership import Absent, Membership
from connectors.mailchimp.records import RECORD_LIMIT, MailchimpRecords
from connectors.mailchimp.webhooks import (
    CONSENT_EVENTS,
    FIELD_EVENTS,
    IDENTITY_EVENTS,
    named,
    parse_webhook,
)
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

# Whose actions privasync must hear of: the person's (footer link, profile centre, SMS STOP)
# and the list's admins' (an unsubscribe or a cleaning in Mailchimp's UI). ``api`` is our own
# writes' echo, not needed.
NEEDED_SOURCES = ("user", "admin")


class MailchimpConnector:
    """Reads Mailchimp webhooks; writes withdrawals and merge fields to one audience (list);
    erases its members and exports what it holds about them.

    Implements core.ports.ConsentDestination, RecordDestination, ErasureDestination and
    ExportSource.

    ``base_url`` may be empty: it is then derived from the key's ``-dc`` suffix. Every
    request holds one of ``connections`` (the key's simultaneous connections) while it runs.
    ``keys`` (the installation's keyring) keys what is stored about members and deliveries.
    ``intake_path`` is the path of privasync's Mailchimp intake (``/webhooks/mailchimp/<token>``)
    when webhooks are configured: ``check`` then looks for the list's webhook to it.
    ``directory_max_age``: seconds a complete read of the list is relied on to say who is
    not on it (0: never); ``absent`` remembers recent 404s (membership.py).
    """

    def __init__(self, *, base_url: str, api_key: str, list_id: str,
                 mapping: SystemMapping, keys: MemberKeys, timeout: float = 10.0,
                 connections: Connections | None = None, intake_path: str = "",
                 directory_max_age: float = 0.0,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 absent: Absent | None = None) -> None:
        if not list_id:
            raise ConfigError("mailchimp list id is empty")
        self._list_id = list_id
        self._intake_path = intake_path.rstrip("/")
        self._purposes = tuple(mapping.consent.all_email)
        self._api = MailchimpApi(base_url=base_url, api_key=api_key, timeout=timeout,
                                 connections=connections)
        self._keys = keys
        self._membership = Membership(self._api, list_id, clock=clock,
                                      directory_max_age=timedelta(seconds=directory_max_age),
                                      absent=absent or Absent())
        self._destination = MailchimpDestination(self._api, list_id, self._purposes, keys,
                                                 self._membership)
        self._records = MailchimpRecords(self._api, list_id, mapping, keys, self._membership)
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
        """Translate one form-encoded delivery; raises BadInput naming the bad field.
        Whoever it names is on the list: no longer known absent here."""
        events = parse_webhook(body, received_at, list_id=self._list_id,
                               purposes=self._purposes, event_id=self._keys.delivery_key,
                               fields=self._merge_fields)
        self._membership.absent.forget(subscriber_hash(e) for e in named(events))
        return events

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
        """The address of every member of the list (archived ones left out), about 1,000
        per call, so privasync learns who is a member without a call per person. Raises
        ListMoved (then what was read is not the whole list), DeliveryError."""
        return self._read(None)

    def kept(self) -> Iterator[str]:
        """The address of every archived contact, read as ``addresses``: a withdrawal still
        reaches them (unsubscribed, they stay out if ever restored)."""
        return self._read("archived")

    def _read(self, status: str | None) -> Iterator[str]:
        for member in audience.members(self._api, self._list_id, "mailchimp list members",
                                       fields=("email_address",), status=status):
            if member.get("email_address"):
                yield str(member["email_address"])

    def check(self) -> None:
        """``GET /ping``, the audience and, with webhooks configured, the audience's webhook
        to privasync: raises AuthError for a bad key, TransientError when unreachable,
        PermanentError when the list id names no audience (``mailchimp_list``) or no webhook
        to the intake delivers what a configured feature needs (``mailchimp_webhook``, naming
        the events and sources missing; never the URL, which holds the token)."""
        self._api.call("GET", "/ping", "mailchimp ping")
        if self._api.call("GET", f"/lists/{self._list_id}?fields=id", "mailchimp audience",
                          missing_ok=True) is None:
            raise PermanentError("mailchimp audience: no audience has this list id",
                                 error_class="mailchimp_list")
        if self._intake_path:
            self._check_webhook()

    def needed_events(self) -> list[str]:
        """The webhook events the configured features need: address changes always,
        consent events when the list serves purposes, profile updates when merge fields are
        mapped."""
        needed = [*IDENTITY_EVENTS, *(CONSENT_EVENTS if self._purposes else ()),
                  *(FIELD_EVENTS if self._merge_fields else ())]
        return sorted(needed)

    def _check_webhook(self) -> None:
        answer = self._api.call("GET", f"/lists/{self._list_id}/webhooks",
                                "mailchimp webhooks")
        hooks = answer.get("webhooks") if isinstance(answer, dict) else None
        ours = [h for h in hooks or [] if isinstance(h, dict)
                and urlsplit(str(h.get("url") or "")).path.rstrip("/").endswith(
                    self._intake_path)]
        if not ours:
            raise PermanentError("mailchimp audience: no webhook to privasync's intake "
                                 "(/webhooks/mailchimp/<token>) is registered",
                                 error_class="mailchimp_webhook")
        missing = min((self._missing(h) for h in ours), key=len)
        if missing:
            raise PermanentError("mailchimp webhook to privasync's intake lacks "
                                 + ", ".join(missing), error_class="mailchimp_webhook")

    def _missing(self, hook: Mapping[str, Any]) -> list[str]:
        """What ``hook`` does not deliver: ``event <name>`` and ``source <name>`` entries."""
        events, sources = hook.get("events"), hook.get("sources")
        on = {f"event {k}" for k, v in (events.items() if isinstance(events, dict) else ())
              if v is True}
        on |= {f"source {k}" for k, v in (sources.items() if isinstance(sources, dict) else ())
               if v is True}
        wanted = [f"event {e}" for e in self.needed_events()]
        wanted += [f"source {s}" for s in NEEDED_SOURCES]
        return [w for w in wanted if w not in on]
