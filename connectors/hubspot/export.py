"""What HubSpot holds about people (Art. 15, 20): every property of every contact found,
and the contact moments associated with those contacts (engagements.MomentReader).

HubSpot's reads return only the properties asked for, so each call lists the contact
property definitions first (one GET), then reads with all of them: one batch read by
e-mail and one by contact id for the whole call (100 keys a call). Unset properties are
left out: HubSpot answers every requested name, and a null or empty value is nothing it
holds about the person. A contact another was merged into says so in its record type and
in ``hs_merged_object_ids`` (the merged contact's properties and engagements live on in
it, as HubSpot's merge keeps them).
"""

from __future__ import annotations

from collections.abc import Sequence

from connectors.hubspot.contacts import (
    MERGED_PROPERTY,
    Contact,
    ContactReader,
    Read,
    addresses,
    contact_ids,
)
from connectors.hubspot.engagements import MomentReader, Moments
from connectors.hubspot.records import NOTE_ABSENT
from connectors.hubspot.sdk import HubSpotSdk
from core.errors import PermanentError, TransientError
from core.model import ExportedField, ExportResult, PersonAt

EXPORT_BATCH = 50
OBJECT_TYPE = "contacts"


class Exporter:
    """Reads every property of people's contacts (three calls for a whole batch) and their
    contact moments (five association reads, and one read per engagement type found)."""

    def __init__(self, sdk: HubSpotSdk, reader: ContactReader) -> None:
        self._sdk = sdk
        self._core_api = sdk.client.crm.properties.core_api
        self._reader = reader
        self._moments = MomentReader(sdk)

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
        found = sorted({c.id for read in (by_email, by_id) for c in read.found.values()})
        moments = self._moments.read(found) if found else Moments()
        return [self._result(p, by_email, by_id, moments) for p in people]

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
    def _result(person: PersonAt, by_email: Read, by_id: Read,
                moments: Moments) -> ExportResult:
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
        if set(contacts) & moments.unanswered:
            return ExportResult(sid, error=TransientError(
                f"hubspot: contact moments of subject {sid} unanswered",
                error_class="hubspot_incomplete_read"))
        fields = [field for c in contacts.values() for field in _fields(c)]
        seen: set[tuple[str, str]] = set()
        for contact_id in contacts:
            for f in moments.by_contact.get(contact_id, []):
                if (f.record, f.field) not in seen:  # an engagement on two of their contacts
                    seen.add((f.record, f.field))
                    fields.append(f)
        engagements = len({f.record for f in fields}) - len(contacts)
        note = f"{len(contacts)} contact(s)" if contacts else NOTE_ABSENT
        if engagements:
            note += f", {engagements} contact moment(s)"
        return ExportResult(sid, fields=tuple(fields), note=note)


def _fields(contact: Contact) -> list[ExportedField]:
    """The contact's set properties, by name; a contact others were merged into says so."""
    merged = [i for i in (contact.properties.get(MERGED_PROPERTY) or "").split(";") if i]
    kind = "contact" + (f" (merged with contact {', '.join(merged)})" if merged else "")
    return [ExportedField(record=f"contact:{contact.id}", field=name, value=value, kind=kind)
            for name, value in sorted(contact.properties.items()) if value]
