"""Salesforce REST API shapes privasync relies on, as pydantic models.

Sources (developer.salesforce.com), read for API v59.0 (the version privasync pins) in
the current (v65.0-era, Winter '26) pages, whose text for these resources is unchanged
since v42.0 unless noted:

* REST API Developer Guide: "Status Codes and Error Responses" (error body: a JSON array
  of {message, errorCode, fields}; 400, 401, 403, 404, 405, 415, 500); "Versions"
  (GET /services/data/); "Limits"; "Query" and "QueryAll" (up to 2,000 rows a page,
  ``nextRecordsUrl``, "QueryAll returns records that are soft deleted due to a merge or
  delete", v29.0+); "sObject Describe"; "Get Updated Records" / "Get Deleted Records";
  "Update Records Using sObject Collections" and "Delete Records Using sObject
  Collections" (up to 200 records; "The DeleteResult objects are returned in the order in
  which the IDs of the deleted objects were specified"; a failed item's example carries
  ``success: false`` and ``errors`` and no ``id``).
* SOAP API Developer Guide: "DescribeSObjectResult" (createable, updateable, deletable,
  queryable, undeletable), "emptyRecycleBin()" (at most 200 ids; purged records "can be
  queried using queryAll() for some time. Typically this time is 24 hours") and
  "EmptyRecycleBinResult" (id, success, errors per id, in the order of the ids).
* Object Reference: "UserPermissionAccess" (v41.0+, ``Permissions<PermissionName>``
  booleans of the current user, e.g. PermissionsBulkApiHardDelete, "Bulk API Hard Delete"
  in Setup).

* Object Reference: "Task", "Event", "Case", "EmailMessage", "EmailMessageRelation" (the
  contact moments an access answer reads, ``MOMENT_OBJECTS``); "Contact" and "Lead"
  (``MasterRecordId``: "If this record was deleted as the result of a merge, this field
  contains the ID of the record that remains"; deleted records are found by queryAll).

Where a page is silent the model says so in a comment ("assumption").
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, model_validator

API_VERSION = "59.0"
COLLECTION_LIMIT = 200  # sObject Collections: "up to 200 records"
EMPTY_RECYCLE_BIN_LIMIT = 200  # emptyRecycleBin(): "The maximum number of records is 200"
QUERY_PAGE_LIMIT = 2000  # Query/QueryAll: "up to 2,000 records can be returned at a time"
RECYCLE_BIN_DAYS = 15  # emptyRecycleBin(): restorable "for 15 days" before the purge
PURGED_STILL_QUERYABLE_HOURS = 24  # emptyRecycleBin(): "Typically this time is 24 hours"


class _Open(BaseModel):
    """An answer privasync reads a few fields of; Salesforce sends many more."""

    model_config = ConfigDict(extra="allow")


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- errors ("Status Codes and Error Responses") ---------------------------------------------
class ErrorItem(_Closed):
    message: str
    errorCode: str  # noqa: N815 - Salesforce's own name
    # "The field or object where the error occurred (if the response returns information
    # about an error)": optional.
    fields: list[str] | None = None


class ErrorBody(RootModel[list[ErrorItem]]):
    """Every REST refusal: a JSON array, simple-salesforce reads ``[0]['errorCode']``."""

    @model_validator(mode="after")
    def _not_empty(self) -> ErrorBody:
        if not self.root:
            raise ValueError("an error body lists at least one error")
        return self


# Status, errorCode pairs the emulator answers, from "Status Codes and Error Responses"
# (statuses) and the REST guide's examples (codes). The 415 code and the >200 code are not
# printed in the guide: assumption, as named in the emulator.
REFUSALS: dict[str, int] = {
    "MALFORMED_QUERY": 400, "INVALID_FIELD": 400, "INVALID_TYPE": 400,
    "JSON_PARSER_ERROR": 400, "INVALID_QUERY_PARAMETER_VALUE": 400,
    "INVALID_QUERY_LOCATOR": 400, "EXCEEDED_ID_LIMIT": 400,
    "INVALID_SESSION_ID": 401, "REQUEST_LIMIT_EXCEEDED": 403,
    "NOT_FOUND": 404, "ENTITY_IS_DELETED": 404,
    "METHOD_NOT_ALLOWED": 405, "UNSUPPORTED_MEDIA_TYPE": 415,
}


# -- versions, limits --------------------------------------------------------------------------
class Version(_Closed):
    label: str
    url: str
    version: str


class VersionList(RootModel[list[Version]]):
    pass


class Allocation(_Open):
    Max: int
    Remaining: int


class Limits(_Open):
    DailyApiRequests: Allocation


# -- query / queryAll ---------------------------------------------------------------------------
class RecordAttributes(_Closed):
    type: str
    url: str


class QueryResult(_Closed):
    totalSize: int = Field(ge=0)  # noqa: N815
    done: bool
    records: list[dict[str, Any]]
    nextRecordsUrl: str | None = None  # noqa: N815 - present exactly when done is false

    @model_validator(mode="after")
    def _paged(self) -> QueryResult:
        if self.done == (self.nextRecordsUrl is not None):
            raise ValueError("nextRecordsUrl comes exactly with done false")
        if len(self.records) > QUERY_PAGE_LIMIT:
            raise ValueError("a page holds at most 2,000 records")
        for record in self.records:
            RecordAttributes.model_validate(record.get("attributes"))
        return self


# -- getUpdated / getDeleted -------------------------------------------------------------------
class UpdatedResult(_Closed):
    ids: list[str]
    latestDateCovered: str  # noqa: N815


class DeletedRecord(_Closed):
    id: str
    deletedDate: str  # noqa: N815


class DeletedResult(_Closed):
    deletedRecords: list[DeletedRecord]  # noqa: N815
    earliestDateAvailable: str  # noqa: N815
    latestDateCovered: str  # noqa: N815


# -- describe ----------------------------------------------------------------------------------
class DescribedField(_Open):
    name: str
    type: str
    label: str
    nillable: bool
    createable: bool
    updateable: bool
    referenceTo: list[str]  # noqa: N815
    custom: bool


class Describe(_Open):
    """What privasync reads: the object's rights for the current user and its fields.
    Fields the user may not read are left out of ``fields`` (field-level security)."""

    name: str
    label: str
    keyPrefix: str | None  # noqa: N815
    queryable: bool
    createable: bool
    updateable: bool
    deletable: bool
    undeletable: bool
    fields: list[DescribedField]


# -- sObject Collections ------------------------------------------------------------------------
class CollectionAttributes(_Open):
    type: str


class CollectionRecord(_Open):
    """One record of a collections PATCH: its type, its id and the fields to write."""

    attributes: CollectionAttributes
    id: str = Field(min_length=15, max_length=18)


class CollectionUpdate(_Closed):
    allOrNone: bool = False  # noqa: N815
    records: list[CollectionRecord] = Field(max_length=COLLECTION_LIMIT)


class CollectionDelete(_Closed):
    """The query string of a collections DELETE."""

    ids: list[str] = Field(min_length=1, max_length=COLLECTION_LIMIT)
    allOrNone: bool = False  # noqa: N815


class ItemError(_Closed):
    statusCode: str  # noqa: N815
    message: str
    fields: list[str]


class SaveResult(_Closed):
    """One item of a collections answer (SaveResult or DeleteResult)."""

    id: str | None = None
    success: bool
    errors: list[ItemError]

    @model_validator(mode="after")
    def _consistent(self) -> SaveResult:
        if self.success and (self.id is None or self.errors):
            raise ValueError("a success names its id and no errors")
        if not self.success and (self.id is not None or not self.errors):
            raise ValueError("a failure carries errors and no id (the guide's example)")
        return self


class CollectionResults(RootModel[list[SaveResult]]):
    pass


# -- emptyRecycleBin (SOAP) and the current user's permissions ---------------------------------
class EmptyRecycleBinResult(_Closed):
    id: str
    success: bool
    errors: list[ItemError]


class UserPermissionRow(_Open):
    attributes: dict[str, Any]
    PermissionsBulkApiHardDelete: bool = False


# -- contact moments (Object Reference) -------------------------------------------------------
# Each object's key prefix and the fields privasync reads of it (a subset of each object's
# field list): the link to a person's record, and what was said, asked or done, and when.
# Task/Event ``WhoId`` is polymorphic (Contact or Lead); a Case names its Contact by
# ``ContactId``; an EmailMessage hangs off a Case (``ParentId``) or a Task (``ActivityId``)
# and names its senders and recipients in EmailMessageRelation rows (``RelationId``,
# API 37.0+). EmailMessage and its relations exist only where Email-to-Case or Enhanced
# Email is on ("Special Access Rules"): elsewhere SOQL answers INVALID_TYPE.
MOMENT_OBJECTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "Task": ("00T", ("WhoId", "WhatId", "Subject", "Description", "ActivityDate", "Status",
                     "Priority", "TaskSubtype", "CallType", "CallDurationInSeconds",
                     "CreatedDate")),
    "Event": ("00U", ("WhoId", "WhatId", "Subject", "Description", "Location",
                      "StartDateTime", "EndDateTime", "IsAllDayEvent", "CreatedDate")),
    "Case": ("500", ("ContactId", "CaseNumber", "Subject", "Description", "Status", "Origin",
                     "Priority", "SuppliedName", "SuppliedEmail", "SuppliedPhone",
                     "CreatedDate", "ClosedDate")),
    "EmailMessage": ("02s", ("ParentId", "ActivityId", "Subject", "TextBody", "FromName",
                             "FromAddress", "ToAddress", "MessageDate", "Incoming",
                             "Status")),
    "EmailMessageRelation": ("0EM", ("EmailMessageId", "RelationId", "RelationType")),
}


class MergedRecord(_Open):
    """A Contact or Lead merged away, as queryAll returns it: deleted, naming the record
    that remains."""

    attributes: RecordAttributes
    Id: str
    IsDeleted: Literal[True]
    MasterRecordId: str


Method = Literal["GET", "POST", "PATCH", "DELETE"]
