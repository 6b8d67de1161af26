"""Reading HubSpot contacts through hubspot-api-client's batch read, 100 keys per call.

One reader serves the lookups (e-mail behind a ref), the erasure's read-back and the
export: by contact id or by e-mail (``idProperty=email``), with the properties asked
for. A key HubSpot answers with an error other than "not found" is reported as
unanswered, so that absence is never claimed from a read that did not say so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hubspot.crm.contacts import BatchReadInputSimplePublicObjectId

from connectors.hubspot.events import SYSTEM
from connectors.hubspot.sdk import HubSpotSdk
from core.model import SystemRef

READ_LIMIT = 100  # documentation (CRM objects guide: batches of 100); no maxItems in the spec
IDENTITY_PROPERTY = "email"
_ALIASES_PROPERTY = "hs_additional_emails"
# The ids of contacts merged into this one, ";"-joined: a read by a merged-away id is
# answered with the contact kept (assumption: HubSpot's object reads follow a merge).
MERGED_PROPERTY = "hs_merged_object_ids"
_PREFIX = "contact:"
_CONTACT_REF = re.compile(r"^contact:(\d+)$")
_NOT_FOUND = "OBJECT_NOT_FOUND"


def contact_ids(refs: Iterable[str]) -> list[str]:
    """Every ``contact:<id>`` among a subject's HubSpot refs, in order, once each."""
    return list(dict.fromkeys(m.group(1) for m in map(_CONTACT_REF.match, refs) if m))


def contact_id_of(refs: Iterable[str]) -> str | None:
    """The first ``contact:<id>`` among a subject's HubSpot refs."""
    return next(iter(contact_ids(refs)), None)


def addresses(emails: Iterable[str]) -> list[str]:
    """A person's addresses as HubSpot matches them: trimmed, lower case, once each."""
    return list(dict.fromkeys(e.strip().lower() for e in emails if e.strip()))


@dataclass(frozen=True)
class Contact:
    """One contact as read: its id and the requested properties (None = unset)."""

    id: str
    properties: Mapping[str, str | None]


@dataclass
class Read:
    """A batch read's answer by the key asked for (lower-case e-mail or contact id)."""

    found: dict[str, Contact] = field(default_factory=dict)
    unanswered: set[str] = field(default_factory=set)


class ContactReader:
    """Batch reads of contacts through the connector's client."""

    def __init__(self, sdk: HubSpotSdk) -> None:
        self._sdk = sdk
        self._batch_api = sdk.client.crm.contacts.batch_api

    def read(self, keys: Sequence[str], *, by_email: bool, properties: Sequence[str],
             patience: float = 0.0) -> Read:
        """Contacts for ``keys``, one call per 100; a missing key is simply absent.

        By e-mail, the identity properties are read as well, to map answers back to keys.
        Raises DeliveryError when a call failed (Throttled when the rate window stayed
        full for ``patience`` seconds).
        """
        names = list(dict.fromkeys([*properties, IDENTITY_PROPERTY, _ALIASES_PROPERTY]
                                   if by_email else [*properties, MERGED_PROPERTY]))
        wanted = addresses(keys) if by_email else list(dict.fromkeys(keys))
        read = Read()
        for start in range(0, len(wanted), READ_LIMIT):
            chunk = wanted[start:start + READ_LIMIT]
            # propertiesWithHistory is required (Contacts v3 spec), even when empty.
            request = BatchReadInputSimplePublicObjectId(
                inputs=[{"id": k} for k in chunk], properties=names, properties_with_history=[],
                id_property=IDENTITY_PROPERTY if by_email else None)
            what = f"hubspot contacts batch read by {'email' if by_email else 'id'}"
            answer = self._sdk.send(what, self._batch_api.read_with_http_info, request,
                                    patience=patience)
            self._collect(read, answer.data, chunk, by_email)
        return read

    def emails(self, refs: Sequence[SystemRef]) -> dict[SystemRef, str]:
        """Addresses of the contacts found; unknown contacts and other systems are absent.
        The applier asks, not a worker: it waits up to a window for a slot rather than set
        the events aside (a deferred look-up costs their inbox row an attempt)."""
        by_id: dict[str, list[SystemRef]] = {}
        for ref in refs:
            if ref.system == SYSTEM and ref.ref.startswith(_PREFIX):
                by_id.setdefault(ref.ref.removeprefix(_PREFIX), []).append(ref)
        found = self.read(list(by_id), by_email=False, properties=[IDENTITY_PROPERTY],
                          patience=self._sdk.window.seconds).found
        return {ref: email for contact_id, contact in found.items()
                if (email := contact.properties.get(IDENTITY_PROPERTY))
                for ref in by_id[contact_id]}

    @staticmethod
    def _collect(read: Read, data: Any, chunk: list[str], by_email: bool) -> None:
        asked = set(chunk)
        for result in getattr(data, "results", None) or []:
            contact = Contact(str(result.id), dict(result.properties or {}))
            keys = _addresses_of(contact) & asked if by_email else _ids_of(contact) & asked
            read.found |= dict.fromkeys(keys, contact)
        for error in getattr(data, "errors", None) or []:
            if getattr(error, "category", None) == _NOT_FOUND:
                continue
            named = (getattr(error, "context", None) or {}).get("ids") or []
            keys = {str(k).lower() if by_email else str(k) for k in named} & asked
            read.unanswered |= (keys or asked) - set(read.found)


def _ids_of(contact: Contact) -> set[str]:
    """The contact's id and the ids of contacts merged into it."""
    merged = (contact.properties.get(MERGED_PROPERTY) or "").split(";")
    return {contact.id, *(i for i in merged if i)}


def _addresses_of(contact: Contact) -> set[str]:
    """The contact's primary and additional addresses, lower case."""
    aliases = (contact.properties.get(_ALIASES_PROPERTY) or "").split(";")
    return set(addresses([contact.properties.get(IDENTITY_PROPERTY) or "", *aliases]))
