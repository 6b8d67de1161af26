"""A person's contact moments in HubSpot: the e-mails, calls, meetings, notes and tasks
associated with their contacts (Art. 15: "all contact moments").

Per engagement type, one associations v4 batch read from the contacts (100 ids a call,
``crm.associations.v4.batch_api.get_page``; an object with more associations than a page
is asked again with its ``after``), then one batch read of the engagements found (100 a
call, ``crm.objects.<type>.batch_api.read``) with the properties a person's contact
moment consists of (``MOMENT_PROPERTIES``): what was said or done, and when; not owners,
attachments' ids or raw headers. A contact HubSpot answers "no associations" for has none;
any other refused id leaves its people's answer incomplete (``unanswered``).

API calls per batch: 5 association reads and up to 5 engagement reads while the batch
has at most 100 contacts and each type's engagements fit in 100.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hubspot.crm.associations.v4 import BatchInputPublicFetchAssociationsBatchRequest
from hubspot.crm.objects.calls import BatchReadInputSimplePublicObjectId as CallsRead
from hubspot.crm.objects.emails import BatchReadInputSimplePublicObjectId as EmailsRead
from hubspot.crm.objects.meetings import BatchReadInputSimplePublicObjectId as MeetingsRead
from hubspot.crm.objects.notes import BatchReadInputSimplePublicObjectId as NotesRead
from hubspot.crm.objects.tasks import BatchReadInputSimplePublicObjectId as TasksRead

from connectors.hubspot.contacts import READ_LIMIT
from connectors.hubspot.sdk import HubSpotSdk
from core.model import ExportedField

# Type -> (record prefix, the words the person reads, the properties read; activity guides).
MOMENT_PROPERTIES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "emails": ("email", "logged e-mail", ("hs_timestamp", "hs_email_direction",
                                          "hs_email_status", "hs_email_subject",
                                          "hs_email_text")),
    "calls": ("call", "call", ("hs_timestamp", "hs_call_title", "hs_call_body",
                               "hs_call_direction", "hs_call_duration", "hs_call_status",
                               "hs_call_from_number", "hs_call_to_number",
                               "hs_call_recording_url")),
    "meetings": ("meeting", "meeting", ("hs_timestamp", "hs_meeting_title", "hs_meeting_body",
                                        "hs_internal_meeting_notes", "hs_meeting_location",
                                        "hs_meeting_start_time", "hs_meeting_end_time",
                                        "hs_meeting_outcome")),
    "notes": ("note", "note", ("hs_timestamp", "hs_note_body")),
    "tasks": ("task", "task", ("hs_timestamp", "hs_task_subject", "hs_task_body",
                               "hs_task_status", "hs_task_priority", "hs_task_type")),
}
_READS: dict[str, Any] = {"emails": EmailsRead, "calls": CallsRead, "meetings": MeetingsRead,
                          "notes": NotesRead, "tasks": TasksRead}
NO_ASSOCIATIONS = "crm.associations.NO_ASSOCIATIONS_FOUND"


@dataclass
class Moments:
    """Per contact id, the fields of its engagements; contacts whose reads failed."""

    by_contact: dict[str, list[ExportedField]] = field(default_factory=dict)
    unanswered: set[str] = field(default_factory=set)


class MomentReader:
    """Reads the engagements associated with contacts."""

    def __init__(self, sdk: HubSpotSdk) -> None:
        self._sdk = sdk
        self._associations = sdk.client.crm.associations.v4.batch_api
        self._objects = sdk.client.crm.objects

    def read(self, contact_ids: Sequence[str]) -> Moments:
        """Every engagement of every type associated with these contacts. Raises
        DeliveryError when a call failed as a whole."""
        moments = Moments()
        for object_type in MOMENT_PROPERTIES:
            linked = self._linked(object_type, list(dict.fromkeys(contact_ids)), moments)
            fields = self._engagements(object_type, sorted({e for es in linked.values()
                                                            for e in es}))
            for contact_id, engagement_ids in linked.items():
                moments.by_contact.setdefault(contact_id, []).extend(
                    f for e in engagement_ids for f in fields.get(e, []))
        return moments

    def _linked(self, object_type: str, contact_ids: list[str],
                moments: Moments) -> dict[str, list[str]]:
        """Contact id -> ids of its engagements of ``object_type``, every page."""
        linked: dict[str, list[str]] = {}
        asks: list[dict[str, str]] = [{"id": i} for i in contact_ids]
        while asks:
            chunk, asks = asks[:READ_LIMIT], asks[READ_LIMIT:]
            request = BatchInputPublicFetchAssociationsBatchRequest(inputs=chunk)
            answer = self._sdk.send(f"hubspot contact {object_type} associations",
                                    self._associations.get_page_with_http_info, "contacts",
                                    object_type, request)
            for result in getattr(answer.data, "results", None) or []:
                source = str(result._from.id)
                linked.setdefault(source, []).extend(str(t.to_object_id)
                                                     for t in result.to or [])
                after = getattr(getattr(result.paging, "next", None), "after", None)
                if after:
                    asks.append({"id": source, "after": str(after)})
            for error in getattr(answer.data, "errors", None) or []:
                if getattr(error, "sub_category", None) == NO_ASSOCIATIONS:
                    continue
                named = (getattr(error, "context", None) or {}).get("fromObjectId") or []
                moments.unanswered |= ({str(i) for i in named} & set(contact_ids)) or {
                    c["id"] for c in chunk}
        return linked

    def _engagements(self, object_type: str, ids: list[str]) -> dict[str, list[ExportedField]]:
        """Engagement id -> its set properties, as fields of its record; one gone between
        the two reads is simply not held any more."""
        prefix, kind, names = MOMENT_PROPERTIES[object_type]
        api = getattr(self._objects, object_type).batch_api
        out: dict[str, list[ExportedField]] = {}
        for start in range(0, len(ids), READ_LIMIT):
            chunk = ids[start:start + READ_LIMIT]
            request = _READS[object_type](inputs=[{"id": i} for i in chunk],
                                          properties=list(names), properties_with_history=[])
            answer = self._sdk.send(f"hubspot {object_type} batch read",
                                    api.read_with_http_info, request)
            for result in getattr(answer.data, "results", None) or []:
                props = dict(result.properties or {})
                out[str(result.id)] = [ExportedField(f"{prefix}:{result.id}", name,
                                                     props[name], kind)
                                       for name in names if props.get(name)]
        return out
