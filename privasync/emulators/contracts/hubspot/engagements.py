"""Engagements (contact moments) and associations v4: what privasync reads of a contact's
logged e-mails, calls, meetings, notes and tasks.

Sources (HubSpot/HubSpot-public-api-spec-collection, commit in common.SPEC_COMMIT):
- ``PublicApiSpecs/CRM/{Emails,Calls,Meetings,Notes}/Rollouts/424/v3/*.json`` and
  ``PublicApiSpecs/CRM/Tasks/Rollouts/424/2025-09/tasks.json`` (the v3 paths are the same):
  ``POST /crm/v3/objects/{type}/batch/read``, body ``BatchReadInputSimplePublicObjectId``,
  answers 200/207 as for contacts (contracts.hubspot.contacts). Scopes per the files'
  ``security``: e-mails ``crm.objects.contacts.read`` or ``sales-email-read``; calls,
  meetings, notes and tasks ``crm.objects.contacts.read``.
- ``PublicApiSpecs/CRM/Associations/Rollouts/130902/v4/associations.json``:
  ``POST /crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read``, body
  ``BatchInputPublicFetchAssociationsBatchRequest`` (``inputs[].id``, ``inputs[].after``),
  answers 200 ``BatchResponsePublicAssociationMultiWithLabel`` or 207 ``...WithErrors``;
  "the 'paging' field will only be present if there are more pages". Its ``security``
  lists 80 alternatives of one scope each (``crm.objects.contacts.read`` among them).

Not in the spec: the properties of each engagement type are HubSpot's activity guides'
(developers.hubspot.com, "Activities | Email", "Calls", "Meetings", "Notes", "Tasks");
how a contact without associations is answered (207, a ``StandardError`` with
``subCategory`` "crm.associations.NO_ASSOCIATIONS_FOUND" and ``context.fromObjectId``; the
spec types ``subCategory`` as an object, HubSpot's answers as quoted in its community carry
this string) and the page size of 500 associations per object are assumptions.
"""

from __future__ import annotations

from pydantic import Field

from privasync.emulators.contracts.hubspot.common import (
    BATCH_LIMIT,
    BatchAnswer,
    ErrorDetail,
    Request,
    Strict,
)

# Engagement object types and the properties each holds (activity guides).
ENGAGEMENT_PROPERTIES: dict[str, tuple[str, ...]] = {
    "emails": ("hs_timestamp", "hubspot_owner_id", "hs_email_direction", "hs_email_html",
               "hs_email_status", "hs_email_subject", "hs_email_text", "hs_attachment_ids",
               "hs_email_headers"),
    "calls": ("hs_timestamp", "hubspot_owner_id", "hs_call_body", "hs_call_callee_object_id",
              "hs_call_direction", "hs_call_disposition", "hs_call_duration",
              "hs_call_from_number", "hs_call_recording_url", "hs_call_status",
              "hs_call_title", "hs_call_to_number"),
    "meetings": ("hs_timestamp", "hubspot_owner_id", "hs_meeting_title", "hs_meeting_body",
                 "hs_internal_meeting_notes", "hs_meeting_external_url",
                 "hs_meeting_location", "hs_meeting_start_time", "hs_meeting_end_time",
                 "hs_meeting_outcome"),
    "notes": ("hs_timestamp", "hubspot_owner_id", "hs_note_body", "hs_attachment_ids"),
    "tasks": ("hs_timestamp", "hubspot_owner_id", "hs_task_body", "hs_task_subject",
              "hs_task_status", "hs_task_priority", "hs_task_type", "hs_task_completion_date"),
}
# HubSpot-defined association type ids, contact to engagement (Associations v4 guide,
# "Association type IDs": contact to email 197, call 193, meeting 199, note 201, task 203).
CONTACT_TO: dict[str, int] = {"emails": 197, "calls": 193, "meetings": 199, "notes": 201,
                              "tasks": 203}
ASSOCIATION_PAGE = 500  # assumption: associations per object and page
NO_ASSOCIATIONS = "crm.associations.NO_ASSOCIATIONS_FOUND"
MERGED_IDS = "hs_merged_object_ids"  # a contact's property: ids merged into it, ";"-joined


class PublicFetchAssociationsBatchRequest(Request):
    id: str
    after: str | None = None


class BatchInputPublicFetchAssociationsBatchRequest(Request):
    inputs: list[PublicFetchAssociationsBatchRequest] = Field(max_length=BATCH_LIMIT)


class AssociationSpecWithLabel(Strict):
    category: str = Field(pattern="^(HUBSPOT_DEFINED|INTEGRATOR_DEFINED|USER_DEFINED|WORK)$")
    typeId: int
    label: str | None = None
    fromObjectTypeId: str | None = None
    toObjectTypeId: str | None = None


class MultiAssociatedObjectWithLabel(Strict):
    toObjectId: str
    associationTypes: list[AssociationSpecWithLabel]


class PublicObjectId(Strict):
    id: str


class NextPage(Strict):
    after: str
    link: str | None = None


class Paging(Strict):
    next: NextPage | None = None
    prev: dict[str, str] | None = None


class PublicAssociationMultiWithLabel(Strict):
    from_: PublicObjectId = Field(alias="from")
    to: list[MultiAssociatedObjectWithLabel]
    paging: Paging | None = None


class AssociationError(Strict):
    """A ``StandardError`` of an association batch read; ``subCategory`` a string as
    HubSpot answers it (see the module's note)."""

    category: str
    context: dict[str, list[str]]
    errors: list[ErrorDetail]
    links: dict[str, str]
    message: str
    status: str
    id: str | None = None
    subCategory: str | dict[str, object] | None = None


class BatchResponsePublicAssociationMultiWithLabel(BatchAnswer):
    results: list[PublicAssociationMultiWithLabel]
    errors: list[AssociationError] | None = None
    numErrors: int | None = None
