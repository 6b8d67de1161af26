"""Minimised record fields into HubSpot contacts: one ``batch/update`` per call.

Raw HTTP through the connector's session, like the consent writer, so both
share the error table and the blip retry. hubspot-api-client 12 has both calls
(``batch_api.read`` and ``batch_api.update``); they stay raw here because this
look-up matches the primary ``email`` only, where ContactReader (the client's
batch read) also matches ``hs_additional_emails``. The bodies follow the Contacts
v3 spec all the same (``propertiesWithHistory`` included). A record names its contact by its
``contact:<id>`` ref; records without one are looked up by e-mail in one
``batch/read`` (``idProperty=email``). A contact HubSpot does not hold is never
created, and the ``email`` property is never written: it is the identity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from connectors.hubspot.batch import post_batch
from connectors.hubspot.contacts import contact_id_of
from connectors.transport import TimeoutSession
from core.errors import PermanentError
from core.mappings import SystemMapping
from core.model import DestinationRecord, Outcome

RECORD_LIMIT = 100  # documentation (CRM objects guide: batches of 100); no maxItems in the spec
READ_PATH = "/crm/v3/objects/contacts/batch/read"
UPDATE_PATH = "/crm/v3/objects/contacts/batch/update"
IDENTITY_PROPERTY = "email"
NOTE_ABSENT = "not in hubspot"
NOTE_NOTHING = "no field of this record is held in hubspot"


@dataclass
class _Write:
    """One record on its way: its translated properties and the contact they go to."""

    index: int
    record: DestinationRecord
    properties: dict[str, str]
    contact_id: str | None = None
    learned: bool = False


class RecordWriter:
    """Translates canonical fields to contact properties and writes them in batches."""

    def __init__(self, *, base_url: str, session: TimeoutSession, mapping: SystemMapping) -> None:
        self._base_url = base_url.rstrip("/")
        self._session = session
        self._mapping = mapping

    def written_properties(self) -> list[str]:
        """The contact properties this mapping has privasync write (all but the identity)."""
        return sorted(n for n in self._mapping.fields if n != IDENTITY_PROPERTY)

    def properties(self, record: DestinationRecord) -> dict[str, str]:
        """Vendor properties for the fields HubSpot holds; None clears (HubSpot wants "")."""
        props: dict[str, str] = {}
        for canonical, value in record.fields.items():
            vendor = self._mapping.vendor_field(canonical)
            if vendor is not None and vendor != IDENTITY_PROPERTY:
                props[vendor] = "" if value is None else value
        return props

    def push(self, records: Sequence[DestinationRecord]) -> list[Outcome]:
        """One Outcome per record, in order; whole-call failures raise DeliveryError."""
        outcomes: dict[int, Outcome] = {}
        writes: list[_Write] = []
        for index, record in enumerate(records):
            props = self.properties(record)
            contact_id = contact_id_of(record.refs)
            if not props:
                outcomes[index] = Outcome(record.subject_id, note=NOTE_NOTHING)
            elif contact_id is None and not record.email:
                outcomes[index] = Outcome(record.subject_id, error=PermanentError(
                    f"subject {record.subject_id} has no HubSpot contact or e-mail address",
                    error_class="no_identifier"))
            else:
                writes.append(_Write(index, record, props, contact_id))
        for start in range(0, len(writes), RECORD_LIMIT):
            outcomes |= self._push_chunk(writes[start:start + RECORD_LIMIT])
        return [outcomes[i] for i in range(len(records))]

    def _push_chunk(self, chunk: list[_Write]) -> dict[int, Outcome]:
        self._find_by_email([w for w in chunk if w.contact_id is None])
        outcomes: dict[int, Outcome] = {}
        targets: dict[str, _Write] = {}
        for w in chunk:
            sid = w.record.subject_id
            if w.contact_id is None:
                outcomes[w.index] = Outcome(sid, note=NOTE_ABSENT)
            elif w.contact_id in targets:
                # HubSpot refuses a whole batch that names one id twice.
                outcomes[w.index] = Outcome(sid, error=PermanentError(
                    f"subject {sid} shares HubSpot contact {w.contact_id} with subject "
                    f"{targets[w.contact_id].record.subject_id}",
                    error_class="hubspot_shared_contact"))
            else:
                targets[w.contact_id] = w
        if targets:
            refused = self._update(targets)
            outcomes |= {w.index: self._outcome(w, refused.get(cid)) for cid, w in targets.items()}
        return outcomes

    def _find_by_email(self, pending: list[_Write]) -> None:
        """Fill in contact ids found by e-mail, in one batch read; the rest stay None."""
        emails = list(dict.fromkeys(w.record.email.lower() for w in pending if w.record.email))
        if not emails:
            return
        body = self._send(READ_PATH, {"idProperty": IDENTITY_PROPERTY,
                                      "properties": [IDENTITY_PROPERTY],
                                      "propertiesWithHistory": [],  # required by the spec
                                      "inputs": [{"id": e} for e in emails]},
                          "hubspot contacts batch read by email")
        found: dict[str, str] = {}
        for result in body.get("results") or []:
            props = result.get("properties") if isinstance(result, dict) else None
            email = props.get(IDENTITY_PROPERTY) if isinstance(props, dict) else None
            if isinstance(email, str) and result.get("id") is not None:
                found[email.lower()] = str(result["id"])
        for w in pending:
            w.contact_id = found.get((w.record.email or "").lower())
            w.learned = w.contact_id is not None

    def _update(self, targets: dict[str, _Write]) -> dict[str, str]:
        """Write every target in one call; return contact id -> error class of refusals."""
        body = self._send(UPDATE_PATH, {"inputs": [{"id": cid, "properties": w.properties}
                                                   for cid, w in targets.items()]},
                          "hubspot contacts batch update")
        refused: dict[str, str] = {}
        for error in body.get("errors") or []:
            error = error if isinstance(error, dict) else {}
            context = error.get("context")
            named = context.get("ids") if isinstance(context, dict) else None
            ids = [str(i) for i in named or []] or list(targets)
            category = str(error.get("category") or "batch_error").lower()
            refused |= {i: f"hubspot_{category}" for i in ids if i in targets}
        return refused

    @staticmethod
    def _outcome(w: _Write, refused: str | None) -> Outcome:
        sid = w.record.subject_id
        if refused is not None:
            return Outcome(sid, error=PermanentError(
                f"HubSpot refused the update of contact {w.contact_id} for subject {sid}",
                error_class=refused))
        learned = (f"contact:{w.contact_id}",) if w.learned else ()
        return Outcome(sid, learned_refs=learned, note=f"wrote {len(w.properties)} field(s)")

    def _send(self, path: str, payload: dict[str, Any], what: str) -> dict[str, Any]:
        return post_batch(self._session, self._base_url + path, payload, what)
