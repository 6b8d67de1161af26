"""Minimised record fields into Mailchimp merge fields, for existing members only.

Same rule as withdrawals (destination.py): Mailchimp's bulk write creates any
member it does not have, so only members known to exist are sent (others are
looked up, or known absent: membership.py), in one ``POST /lists/{id}`` with
``update_existing``. Entries carry no ``status``:
a field update never changes a subscription, and Mailchimp refuses to create
a member without one, which keeps the batch from adding anybody even if a
member vanished after it was checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from connectors.mailchimp.client import MailchimpApi, subscriber_hash
from connectors.mailchimp.destination import (
    MemberKeys,
    created,
    is_known_member,
    member_ref,
    no_address,
    refusals,
)
from connectors.mailchimp.membership import Membership, Question
from core.mappings import SystemMapping
from core.model import DestinationRecord, Outcome

RECORD_LIMIT = 500
NOTE_ABSENT = "not a member"
NOTE_NOTHING = "no field of this record is held in mailchimp"


@dataclass(frozen=True)
class _Pending:
    index: int
    subject_id: str
    email: str
    hash: str
    merges: dict[str, str]


class MailchimpRecords:
    """Writes canonical fields to one list's merge fields (``FNAME`` and the like)."""

    def __init__(self, api: MailchimpApi, list_id: str, mapping: SystemMapping,
                 keys: MemberKeys, membership: Membership) -> None:
        self._api = api
        self._list = list_id
        self._mapping = mapping
        self._keys = keys
        self._membership = membership

    def merges(self, record: DestinationRecord) -> dict[str, str]:
        """Merge tags for the fields this list holds; None clears (Mailchimp wants "")."""
        merges: dict[str, str] = {}
        for canonical, value in record.fields.items():
            tag = self._mapping.vendor_field(canonical)
            if tag is not None:
                merges[tag] = "" if value is None else value
        return merges

    def push(self, records: Sequence[DestinationRecord]) -> list[Outcome]:
        """One Outcome per record, in order; whole-call failures raise DeliveryError."""
        outcomes: dict[int, Outcome] = {}
        pending: list[_Pending] = []
        unknown: list[tuple[_Pending, DestinationRecord]] = []
        for index, record in enumerate(records):
            merges = self.merges(record)
            if not merges:
                outcomes[index] = Outcome(record.subject_id, note=NOTE_NOTHING)
            elif not record.email:
                outcomes[index] = Outcome(record.subject_id, error=no_address(record.subject_id))
            else:
                member = _Pending(index, record.subject_id, record.email,
                                  subscriber_hash(record.email), merges)
                if record.listed or is_known_member(self._keys, record.email, record.refs):
                    pending.append(member)
                else:
                    unknown.append((member, record))
        # An archived member is not written to: the record is for the list's members.
        statuses = self._membership.statuses(
            [Question(p.hash, r.unlisted_at) for p, r in unknown], archived_counts=False)
        for member, _ in unknown:
            if statuses[member.hash] in (None, "archived"):
                outcomes[member.index] = Outcome(member.subject_id, note=NOTE_ABSENT)
            else:
                pending.append(member)
        for start in range(0, len(pending), RECORD_LIMIT):
            outcomes |= self._update(pending[start:start + RECORD_LIMIT])
        return [outcomes[i] for i in range(len(records))]

    def _update(self, pending: Sequence[_Pending]) -> dict[int, Outcome]:
        """One batch call for every member; per-member refusals per record."""
        if not pending:
            return {}
        by_address: dict[str, dict[str, str]] = {}
        for p in pending:
            by_address.setdefault(p.email.lower(), {}).update(p.merges)
        answer = self._api.call("POST", f"/lists/{self._list}", "mailchimp batch merge fields",
                                body={"members": [{"email_address": a, "merge_fields": m}
                                                  for a, m in by_address.items()],
                                      "update_existing": True})
        created(answer, self._membership)
        refused = refusals(answer)
        outcomes: dict[int, Outcome] = {}
        for p in pending:
            refusal = refused.get(p.email.lower())
            if refusal is None:
                outcomes[p.index] = Outcome(p.subject_id,
                                            learned_refs=(member_ref(self._keys, p.email),),
                                            note=f"wrote {len(p.merges)} field(s)")
            else:
                outcomes[p.index] = Outcome(p.subject_id, error=refusal.error(p.subject_id))
        return outcomes
