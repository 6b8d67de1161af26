"""What the integration user must be allowed for the features configured, read from
describe, and the names of what is missing.

``GET /sobjects/{type}/describe/`` answers for the calling user: the object's
``queryable``, ``updateable`` and ``deletable``, and only the fields field-level security
lets the user read, each ``updateable`` or not (SOAP API Developer Guide,
DescribeSObjectResult and Field; REST API Developer Guide, sObject Describe).

Hard deletion purges with SOAP ``emptyRecycleBin()``, which needs no user permission of
its own: "The logged in user can delete any record that they can query in their Recycle
Bin" (SOAP API Developer Guide, emptyRecycleBin(), Rules and Guidelines), and erasure
purges only records it has just deleted itself, so they are in its own bin; Modify All
Data (any user's bin) is not needed. What it needs is what erasure already needs, read and
delete on each type, named then for "erase, purge". The "Bulk API Hard Delete" permission
(``PermissionsBulkApiHardDelete``) is for Bulk API ``hardDelete`` jobs, which privasync
does not use, so it is not asked.

An org without Data Protection and Privacy and a user who may not read
ContactPointTypeConsent look the same through describe (404 NOT_FOUND): the object is
then taken as absent, as erasure takes it, and nothing is said about it.

API calls: one describe per type (Contact, Lead, Individual, ContactPointTypeConsent).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.people import IDENTITY, PEOPLE, has_field
from core.errors import PermanentError
from core.mappings import SystemMapping

CONSENT = "ContactPointTypeConsent"
OPT_OUT = "HasOptedOutOfEmail"
SOLICIT = "HasOptedOutSolicit"
# What polling, erasure and export read on every type, whatever the mapping.
READ = {"Contact": ("Email", "FirstName", "LastName", "IndividualId", OPT_OUT,
                    "SystemModstamp"),
        "Lead": ("Email", "FirstName", "LastName", "IndividualId", OPT_OUT, "SystemModstamp"),
        "Individual": (SOLICIT, "ShouldForget", "SystemModstamp"),
        CONSENT: ("PartyId",)}
# Objects the org may lack (Data Protection and Privacy off): absent is not missing.
OPTIONAL = frozenset({CONSENT})


@dataclass(frozen=True)
class Need:
    """One right a feature needs: ``Contact delete`` or ``Lead.Phone edit``."""

    sobject: str
    right: str  # read | edit | delete
    feature: str
    field: str = ""

    def __str__(self) -> str:
        where = f"{self.sobject}.{self.field}" if self.field else self.sobject
        return f"{where} {self.right} ({self.feature})"


def needs(mapping: SystemMapping, *, hard_delete: bool = False) -> list[Need]:
    """Every right the configured features need: polling, erasure and export always (the
    Recycle Bin purge of a hard delete needing the same read and delete); consent writes
    when ``consent.all_email`` is set; field writes per mapped field."""
    wanted: list[Need] = []
    erase = "erase, purge" if hard_delete else "erase"
    for sobject, fields in READ.items():
        wanted.append(Need(sobject, "read", f"poll, {erase}, export"))
        wanted.extend(Need(sobject, "read", f"poll, {erase}", f) for f in fields)
    wanted.extend(Need(s, "delete", erase) for s in (*PEOPLE, "Individual", CONSENT))
    if mapping.consent.all_email:
        wanted.extend(Need(s, "edit", "consent", OPT_OUT) for s in PEOPLE)
        wanted.append(Need("Individual", "edit", "consent", SOLICIT))
    for vendor in mapping.fields:
        if vendor != IDENTITY:
            wanted.extend(Need(s, "edit", "push fields", vendor) for s in PEOPLE
                          if has_field(s, vendor))
    return wanted


def missing(described: dict[str, dict[str, Any] | None], wanted: Iterable[Need]) -> list[Need]:
    """The needs ``described`` (type to describe answer, None when describe said 404)
    does not grant."""
    return [n for n in wanted if not _granted(described.get(n.sobject), n)
            and not (described.get(n.sobject) is None and n.sobject in OPTIONAL)]


def _granted(describe: dict[str, Any] | None, need: Need) -> bool:
    if describe is None:
        return False
    if not need.field:
        return bool(describe.get({"read": "queryable", "edit": "updateable",
                                  "delete": "deletable"}[need.right]))
    field = next((f for f in describe.get("fields", []) if f.get("name") == need.field), None)
    return field is not None and (need.right == "read" or bool(field.get("updateable")))


def check_permissions(client: SalesforceClient, mapping: SystemMapping, *,
                      hard_delete: bool = False) -> None:
    """Raise PermanentError (error_class ``salesforce_permissions``) naming every missing
    right, each with the feature that needs it; other DeliveryErrors as calls fail."""
    described: dict[str, dict[str, Any] | None] = {}
    for sobject in READ:
        described[sobject] = _describe(client, sobject)
    lacking = [str(n) for n in missing(described, needs(mapping, hard_delete=hard_delete))]
    if lacking:
        raise PermanentError("salesforce user lacks: " + "; ".join(lacking),
                             error_class="salesforce_permissions")


def _describe(client: SalesforceClient, sobject: str) -> dict[str, Any] | None:
    try:
        answer = client.call(f"{sobject} describe", lambda sf: getattr(sf, sobject).describe())
    except PermanentError as exc:
        if exc.error_class == "not_found":
            return None  # absent from the org, or not readable by this user
        raise
    return dict(answer)

