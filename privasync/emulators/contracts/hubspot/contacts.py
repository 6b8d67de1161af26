"""Contacts v3 and contact properties v3: the requests privasync sends and their answers.

Sources (HubSpot/HubSpot-public-api-spec-collection, commit in common.SPEC_COMMIT):
- ``PublicApiSpecs/CRM/Contacts/Rollouts/424/v3/contacts.json`` (info.version v3):
  ``POST /crm/v3/objects/contacts/batch/read`` (200/207), ``.../batch/update`` (200/207;
  "Read-only and non-existent properties will result in an error"), ``.../gdpr-delete``
  (204), ``.../merge`` (200).
- ``PublicApiSpecs/CRM/Properties/Rollouts/145899/v3/properties.json``:
  ``GET /crm/v3/properties/{objectType}`` (200 ``CollectionResponsePropertyNoPaging``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from privasync.emulators.contracts.hubspot.common import (
    BATCH_LIMIT,
    BatchAnswer,
    BatchAnswerWithErrors,
    Request,
    Strict,
)


class SimplePublicObjectId(Request):
    id: str


class BatchReadInputSimplePublicObjectId(Request):
    """``propertiesWithHistory`` is required by the spec, even when empty."""

    inputs: list[SimplePublicObjectId] = Field(max_length=BATCH_LIMIT)
    properties: list[str]
    propertiesWithHistory: list[str]
    idProperty: str | None = None


class SimplePublicObjectBatchInput(Request):
    id: str
    properties: dict[str, str]
    idProperty: str | None = None
    objectWriteTraceId: str | None = None


class BatchInputSimplePublicObjectBatchInput(Request):
    inputs: list[SimplePublicObjectBatchInput] = Field(max_length=BATCH_LIMIT)


class PublicGdprDeleteInput(Request):
    """``idProperty: email`` names the contact by address; an address HubSpot does not
    hold is blocklisted (the operation's description)."""

    objectId: str
    idProperty: str | None = None


class PublicMergeInput(Request):
    objectIdToMerge: str
    primaryObjectId: str


class SimplePublicObject(Strict):
    """Properties are strings or null (a requested property the contact does not hold is
    answered as null: HubSpot's behaviour, the spec types only ``string``)."""

    id: str
    properties: dict[str, str | None]
    createdAt: AwareDatetime
    updatedAt: AwareDatetime
    archived: bool
    archivedAt: AwareDatetime | None = None
    propertiesWithHistory: dict[str, list[dict[str, object]]] | None = None
    objectWriteTraceId: str | None = None
    url: str | None = None


class BatchResponseSimplePublicObject(BatchAnswer):
    results: list[SimplePublicObject]


class BatchResponseSimplePublicObjectWithErrors(BatchAnswerWithErrors):
    results: list[SimplePublicObject]


class PropertyModificationMetadata(Strict):
    archivable: bool
    readOnlyDefinition: bool
    readOnlyValue: bool
    readOnlyOptions: bool | None = None


class Option(Strict):
    hidden: bool
    label: str
    value: str
    description: str | None = None
    displayOrder: int | None = None


class Property(Strict):
    """Spec ``Property``; only the fields the emulator answers are listed beyond the
    required ones. ``modificationMetadata.readOnlyValue`` says whether a value can be set
    through the API."""

    name: str
    label: str
    type: str
    fieldType: str
    groupName: str
    description: str
    options: list[Option]
    displayOrder: int | None = None
    calculated: bool | None = None
    externalOptions: bool | None = None
    hasUniqueValue: bool | None = None
    hidden: bool | None = None
    hubspotDefined: bool | None = None
    formField: bool | None = None
    archived: bool | None = None
    createdAt: AwareDatetime | None = None
    updatedAt: AwareDatetime | None = None
    modificationMetadata: PropertyModificationMetadata | None = None
    dataSensitivity: Literal["highly_sensitive", "non_sensitive", "sensitive"] | None = None


class CollectionResponsePropertyNoPaging(Strict):
    results: list[Property]
