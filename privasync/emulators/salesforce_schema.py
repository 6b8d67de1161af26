"""What the Salesforce emulator's org holds: its sObject types, their fields, how values
are stored and rendered, what a write may hold, and describe.

Kept apart from the HTTP handlers so the schema reads in one place. Contact,
Lead and Individual carry the standard and custom person fields privasync
maps; ContactPointTypeConsent (API 45+, "Data Protection and Privacy") the
fields of Salesforce's object reference that a consent row needs. Each type's
ids start with its Salesforce key prefix. ``describe`` answers like
``GET /sobjects/{type}/describe/``, reduced to what a client reads from it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from privasync.emulators.salesforce_soql import Refused

CONSENT = "ContactPointTypeConsent"
PREFIX = {"Contact": "003", "Lead": "00Q", "Individual": "0PK", CONSENT: "0ZY",
          "Task": "00T", "Event": "00U", "Case": "500", "EmailMessage": "02s",
          "EmailMessageRelation": "0EM"}
# Both person types carry the org's custom fields Health_Note__c (text) and
# Customer_Since__c (date); only a Contact has MailingCity and Birthdate.
_PERSON = ("Id", "Email", "FirstName", "LastName", "Phone", "HasOptedOutOfEmail",
           "IndividualId", "SystemModstamp", "IsDeleted", "MasterRecordId",
           "Health_Note__c", "Customer_Since__c")
_INDIVIDUAL = ("Id", "FirstName", "LastName", "HasOptedOutSolicit", "ShouldForget",
               "SystemModstamp", "IsDeleted")
_CONSENT = ("Id", "Name", "PartyId", "ContactPointType", "PrivacyConsentStatus",
            "CaptureContactPointType", "CaptureDate", "CaptureSource", "EffectiveFrom",
            "EffectiveTo", "DataUsePurposeId", "SystemModstamp", "IsDeleted")
# Contact moments (Object Reference: Task, Event, Case, EmailMessage, EmailMessageRelation),
# a subset of each object's fields: the links (WhoId, ContactId, ParentId, ActivityId,
# RelationId), what a person said or was told, and when. An activity's ``WhoId`` names a
# Contact or Lead; an e-mail hangs off a Case (ParentId) or a Task (ActivityId) and names
# its senders and recipients through EmailMessageRelation rows.
_ACTIVITY = ("Id", "WhoId", "WhatId", "OwnerId", "Subject", "Description", "CreatedDate",
             "SystemModstamp", "IsDeleted")
_TASK = (*_ACTIVITY, "ActivityDate", "Status", "Priority", "TaskSubtype", "CallType",
         "CallDurationInSeconds", "CallDisposition")
_EVENT = (*_ACTIVITY, "Location", "StartDateTime", "EndDateTime", "IsAllDayEvent")
_CASE = ("Id", "CaseNumber", "ContactId", "AccountId", "OwnerId", "Subject", "Description",
         "Status", "Origin", "Priority", "SuppliedName", "SuppliedEmail", "SuppliedPhone",
         "CreatedDate", "ClosedDate", "SystemModstamp", "IsDeleted")
_EMAIL = ("Id", "ParentId", "ActivityId", "RelatedToId", "Subject", "TextBody", "HtmlBody",
          "FromName", "FromAddress", "ToAddress", "CcAddress", "BccAddress", "MessageDate",
          "Incoming", "Status", "Headers", "CreatedDate", "SystemModstamp", "IsDeleted")
_RELATION = ("Id", "EmailMessageId", "RelationId", "RelationType", "RelationAddress",
             "RelationObjectType", "SystemModstamp", "IsDeleted")
ACTIVITIES = ("Task", "Event", "Case", "EmailMessage", "EmailMessageRelation")
FIELDS = {"Contact": (*_PERSON, "MailingCity", "Birthdate"), "Lead": (*_PERSON, "City"),
          "Individual": _INDIVIDUAL, CONSENT: _CONSENT, "Task": _TASK, "Event": _EVENT,
          "Case": _CASE, "EmailMessage": _EMAIL, "EmailMessageRelation": _RELATION}
READ_ONLY = frozenset({"Id", "SystemModstamp", "IsDeleted", "MasterRecordId", "CaseNumber",
                       "CreatedDate", "RelationObjectType"})
BOOLEANS = frozenset({"HasOptedOutOfEmail", "HasOptedOutSolicit", "ShouldForget", "IsDeleted",
                      "IsAllDayEvent", "Incoming"})
DATES = frozenset({"Birthdate", "Customer_Since__c", "ActivityDate"})  # ``YYYY-MM-DD``
DATETIMES = frozenset({"SystemModstamp", "CaptureDate", "EffectiveFrom", "EffectiveTo",
                       "CreatedDate", "StartDateTime", "EndDateTime", "ClosedDate",
                       "MessageDate"})
# Lookups and the type each points at ("": the record's own type). The emulator
# checks that a written IndividualId or PartyId names a live Individual.
REFERENCES = {"IndividualId": "Individual", "PartyId": "Individual", "MasterRecordId": "",
              "DataUsePurposeId": "DataUsePurpose", "WhoId": "Contact", "WhatId": "Account",
              "OwnerId": "User", "ContactId": "Contact", "AccountId": "Account",
              "ParentId": "Case", "ActivityId": "Task", "RelatedToId": "Case",
              "EmailMessageId": "EmailMessage", "RelationId": "Contact"}
# Polymorphic lookups: every type they may name (describe's referenceTo).
POLYMORPHIC = {"WhoId": ("Contact", "Lead"), "RelationId": ("Contact", "Lead", "User")}
PICKLISTS = {"ContactPointType": ("Email", "Phone", "MailingAddress", "Social", "Web"),
             "CaptureContactPointType": ("Email", "Phone", "MailingAddress", "Social", "Web"),
             "PrivacyConsentStatus": ("OptIn", "OptOut", "Seen", "NotSeen"),
             "TaskSubtype": ("Task", "Email", "ListEmail", "Cadence", "Call", "LinkedIn"),
             "RelationType": ("FromAddress", "ToAddress", "CcAddress", "BccAddress")}
_NAMED_TYPES = {"Id": "id", "Email": "email", "Phone": "phone", "SuppliedEmail": "email",
                "SuppliedPhone": "phone", "CallDurationInSeconds": "int",
                "Description": "textarea", "TextBody": "textarea", "HtmlBody": "textarea"}
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

Problem = tuple[str, str, list[str]]  # a record's statusCode, message and fields


def render(when: datetime) -> str:
    """Salesforce's dateTime rendering: ``2024-01-02T10:00:00.000+0000``."""
    when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}+0000"


def to_minute(when: datetime) -> datetime:
    """getUpdated/getDeleted windows and horizons: truncated to the minute."""
    return when.astimezone(UTC).replace(second=0, microsecond=0)


def as_json(value: Any) -> Any:
    """A stored value as the REST API sends it: dateTimes rendered, the rest as is."""
    return render(value) if isinstance(value, datetime) else value


def blank_is_null(values: dict[str, Any]) -> dict[str, Any]:
    """Salesforce stores an empty text field as null."""
    return {k: None if v == "" else v for k, v in values.items()}


def field_type(name: str) -> str:
    """The describe ``type`` of a field: ``id``, ``boolean``, ``reference``, ``string``..."""
    if name in _NAMED_TYPES:
        return _NAMED_TYPES[name]
    for kind, names in (("boolean", BOOLEANS), ("date", DATES), ("datetime", DATETIMES),
                        ("reference", REFERENCES), ("picklist", PICKLISTS)):
        if name in names:
            return kind
    return "string"


def describe(sobject: str, readable: Callable[[str], bool] = lambda _: True,
             editable: Callable[[str], bool] = lambda _: True,
             rights: dict[str, bool] | None = None) -> dict[str, Any]:
    """The describe answer of ``sobject`` for a user: its name, key prefix, the user's
    object rights (``rights``: createable, updateable, deletable; all true by default)
    and the fields the user may read, in order, ``updateable`` where they may edit them
    (SOAP API Developer Guide, DescribeSObjectResult and Field)."""
    fields = [{"name": name, "type": field_type(name), "label": name,
               "nillable": name not in READ_ONLY | BOOLEANS,
               "createable": name not in READ_ONLY and editable(name),
               "updateable": name not in READ_ONLY and editable(name),
               "referenceTo": list(POLYMORPHIC.get(name, ())) or (
                   [REFERENCES[name] or sobject] if name in REFERENCES else []),
               "custom": name.endswith("__c")}
              for name in FIELDS[sobject] if readable(name)]
    granted = {"createable": True, "updateable": True, "deletable": True, **(rights or {})}
    return {"name": sobject, "label": sobject, "keyPrefix": PREFIX[sobject],
            "queryable": True, "undeletable": granted["deletable"], **granted,
            "fields": fields}


def check_columns(sobject: str, columns: Iterable[str],
                  readable: Callable[[str, str], bool] = lambda _t, _f: True) -> None:
    """Refuse (400 INVALID_FIELD) a queried column ``sobject`` lacks or the user may not
    read; ``Individual.X`` follows the person types' lookup to their Individual."""
    for column in columns:
        owner, name = sobject, column
        if "." in column and sobject != "Individual":
            relation, name = column.split(".", 1)
            owner = "Individual" if relation == "Individual" else ""
        if name not in FIELDS.get(owner, ()) or not readable(owner, name):
            raise Refused(400, "INVALID_FIELD",
                          f"No such column '{column}' on entity '{sobject}'")


def field_problem(sobject: str, name: str, value: Any,
                  is_individual: Callable[[str], bool]) -> Problem | None:
    """Why Salesforce would reject writing ``value`` to ``name`` on one record, or None.

    Raises Refused (400 JSON_PARSER_ERROR) for a date it cannot read: Salesforce
    fails the whole request then, not the record.
    """
    if name not in FIELDS[sobject]:
        return "INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject}", []
    if name in READ_ONLY:
        return "INVALID_FIELD_FOR_INSERT_UPDATE", f"Unable to update {name}", [name]
    if name in BOOLEANS and not isinstance(value, bool):
        return "INVALID_TYPE_ON_FIELD_IN_RECORD", f"{name}: value not a boolean", [name]
    if name in DATES and value is not None and (
            not isinstance(value, str) or _DATE.fullmatch(value) is None):
        raise Refused(400, "JSON_PARSER_ERROR",
                      f"Cannot deserialize instance of date for field {name}")
    if name in PICKLISTS and value not in PICKLISTS[name]:
        return ("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"{name}: bad value for restricted picklist field", [name])
    if REFERENCES.get(name) == "Individual" and value is not None and not is_individual(str(value)):
        return "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [name]
    return None
