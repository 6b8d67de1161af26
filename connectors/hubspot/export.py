"""What HubSpot holds about people (Art. 15, 20): every property of every contact found.

HubSpot's reads return only the properties asked for, so each call lists the contact
property definitions first (one GET), then reads with all of them: one batch read by
e-mail and one by contact id for the whole call (100 keys a call). Unset properties are
left out: HubSpot answers every requested name, and a null or empty value is nothing it
holds about the person.
"""

from __future__ import annotations

from collections.abc import Sequence

from connectors.hubspot.contacts import Contact, ContactReader, Read, addresses, contact_ids
from connectors.hubspot.records import NOTE_ABSENT
from connectors.hubspot.sdk import HubSpotSdk
from core.errors import PermanentError, TransientError
from core.model import ExportedField, ExportResult, PersonAt

EXPORT_BATCH = 50
OBJECT_TYPE = "contacts"


class Exporter:
    """Reads every property of people's contacts, three calls for a whole batch."""

    def __init__(self, sdk: HubSpotSdk, reader: ContactReader) -> None:
        self._sdk = sdk
        self._core_api = sdk.client.crm.properties.core_api
        self._reader = reader

    def export(self, people: Sequence[PersonAt]) -> list[ExportResult]:
        """One result per person, in order. Raises DeliveryError when a call failed."""
        emails = [e for p in people for e in addresses(p.emails)]
        ids = [i for p in people for i in contact_ids(p.refs)]
        by_email, by_id = Read(), Read()
        if emails or ids:
            names = self.property_names()
            if emails:
                by_email = self._reader.read(emails, by_email=True, properties=names)
            if ids:
                by_id = self._reader.read(ids, by_email=False, properties=names)
        return [self._result(p, by_email, by_id) for p in people]

    def property_names(self) -> list[str]:
        """Every contact property the portal defines, custom ones included."""
        return list(self.property_definitions())

    def property_definitions(self) -> dict[str, bool]:
        """Every contact property the portal defines -> whether its value is read-only
        (``modificationMetadata.readOnlyValue``, Properties v3). Raises DeliveryError."""
        answer = self._sdk.send("hubspot contact properties", self._core_api.get_all_with_http_info,
                                OBJECT_TYPE)
        return {str(p.name): bool(getattr(p.modification_metadata, "read_only_value", False))
                for p in getattr(answer.data, "results", None) or [] if p.name}

    @staticmethod
    def _result(person: PersonAt, by_email: Read, by_id: Read) -> ExportResult:
        sid, emails, ids = person.subject_id, addresses(person.emails), contact_ids(person.refs)
        if not emails and not ids:
            return ExportResult(sid, error=PermanentError(
                f"subject {sid} has no e-mail address or contact ref for HubSpot",
                error_class="no_identifier"))
        unanswered = sum(e in by_email.unanswered for e in emails) + \
            sum(i in by_id.unanswered for i in ids)
        if unanswered:
            return ExportResult(sid, error=TransientError(
                f"hubspot: {unanswered} read(s) of subject {sid} unanswered",
                error_class="hubspot_incomplete_read"))
        found = [by_email.found[e] for e in emails if e in by_email.found] + \
            [by_id.found[i] for i in ids if i in by_id.found]
        contacts = {c.id: c for c in found}
        fields = tuple(field for c in contacts.values() for field in _fields(c))
        note = f"{len(contacts)} contact(s)" if contacts else NOTE_ABSENT
        return ExportResult(sid, fields=fields, note=note)


def _fields(contact: Contact) -> list[ExportedField]:
    """The contact's set properties, by name."""
    return [ExportedField(record=f"contact:{contact.id}", field=name, value=value)
            for name, value in sorted(contact.properties.items()) if value]
