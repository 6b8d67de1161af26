"""HubSpot's property definitions for contacts: ``GET /crm/v3/properties/contacts``.

HubSpot's batch reads return only the properties asked for, so a client that wants
everything a contact holds lists the definitions first. The catalogue is every property
the emulator's contacts can hold: HubSpot's own, the read-only opt-out flags (one per
subscription definition) and the portal's custom ones that mappings/hubspot.yaml names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from privasync.emulators.http import Request, Response
from privasync.emulators.hubspot.common import HubSpotError, _Definition, _iso
from privasync.emulators.hubspot.state import _State

# name, label, type, fieldType, groupName, HubSpot-defined?
_CATALOGUE: tuple[tuple[str, str, str, str, str, bool], ...] = (
    ("email", "Email", "string", "text", "contactinformation", True),
    ("firstname", "First Name", "string", "text", "contactinformation", True),
    ("lastname", "Last Name", "string", "text", "contactinformation", True),
    ("phone", "Phone Number", "string", "phonenumber", "contactinformation", True),
    ("city", "City", "string", "text", "contactinformation", True),
    ("hs_additional_emails", "Additional email addresses", "enumeration", "checkbox",
     "contactinformation", True),
    ("hs_legal_basis", "Legal basis for processing contact's data", "enumeration",
     "checkbox", "contactinformation", True),
    ("hs_lifecyclestage_customer_date", "Became a Customer Date", "datetime", "date",
     "contactinformation", True),
    ("hs_email_optout", "Unsubscribed from all email", "enumeration", "booleancheckbox",
     "emailinformation", True),
    ("hs_object_id", "Record ID", "number", "number", "contactinformation", True),
    ("createdate", "Create Date", "datetime", "date", "contactinformation", True),
    ("lastmodifieddate", "Last Modified Date", "datetime", "date", "contactinformation", True),
    ("hs_merged_object_ids", "Merged Contact IDs", "enumeration", "checkbox",
     "contactinformation", True),
    ("date_of_birth", "Date of birth", "date", "date", "contactinformation", False),
    ("product_interests", "Product interests", "string", "textarea", "contactinformation",
     False),
    ("health_note", "Health note", "string", "textarea", "contactinformation", False),
)
_CONTACT_TYPES = frozenset({"contacts", "contact", "0-1"})
# Values HubSpot sets itself: the opt-out flags (the communication preferences API sets
# them), the record id and its timestamps. Which of HubSpot's properties are read-only is
# the portal's answer (modificationMetadata.readOnlyValue), not the spec's: assumption.
_READ_ONLY_VALUES = re.compile(r"hs_email_optout(_\d+)?|hs_object_id|createdate|lastmodifieddate"
                               r"|hs_merged_object_ids")
_EPOCH = _iso(0)


def _definition(name: str, label: str, kind: str, field_type: str, group: str,
                hubspot_defined: bool, order: int) -> dict[str, Any]:
    """One property in HubSpot's ``Property`` shape."""
    return {"name": name, "label": label, "type": kind, "fieldType": field_type,
            "groupName": group, "description": "", "options": [], "displayOrder": order,
            "calculated": False, "externalOptions": False, "hasUniqueValue": name == "email",
            "hidden": False, "hubspotDefined": hubspot_defined, "formField": True,
            "archived": False, "createdAt": _EPOCH, "updatedAt": _EPOCH,
            "modificationMetadata": {"archivable": not hubspot_defined,
                                     "readOnlyDefinition": hubspot_defined,
                                     "readOnlyValue": bool(_READ_ONLY_VALUES.fullmatch(name))}}


def property_definitions(definitions: Mapping[int, _Definition]) -> list[dict[str, Any]]:
    """Every contact property the portal defines, in HubSpot's ``Property`` shape: the
    catalogue and one read-only opt-out flag per subscription definition."""
    rows = list(_CATALOGUE) + [
        (f"hs_email_optout_{d.id}", f"Opted out of email: {d.name}", "enumeration",
         "booleancheckbox", "emailinformation", True) for d in definitions.values()]
    return [_definition(*row, order=i) for i, row in enumerate(rows)]


def invalid_properties(definitions: Mapping[int, _Definition],
                       names: Iterable[str]) -> HubSpotError | None:
    """HubSpot's refusal of a write naming a property the portal does not define or whose
    value is read-only, or None. The spec says only "Read-only and non-existent
    properties will result in an error" (Contacts v3, batch/update); the error names
    ``PROPERTY_DOESNT_EXIST`` and ``READ_ONLY_VALUE`` and the "Property values were not
    valid" wording are HubSpot's answers as commonly reported (assumption)."""
    known = {d["name"]: d for d in property_definitions(definitions)}
    results: list[dict[str, Any]] = []
    for name in dict.fromkeys(names):
        definition = known.get(name)
        if definition is None:
            results.append({"name": name, "error": "PROPERTY_DOESNT_EXIST",
                            "message": f'Property "{name}" does not exist'})
        elif definition["modificationMetadata"]["readOnlyValue"]:
            results.append({"name": name, "error": "READ_ONLY_VALUE",
                            "message": f'Property "{name}" is a read-only property'})
    if not results:
        return None
    shown = [{"isValid": False, "message": r["message"], "error": r["error"], "name": r["name"],
              "localizedErrorMessage": r["message"]} for r in results]
    return HubSpotError(
        400, f"Property values were not valid: {json.dumps(shown)}",
        errors=[{"message": r["message"], "code": r["error"],
                 "context": {"propertyName": [r["name"]]}} for r in results],
        context={"propertyName": [r["name"] for r in results]})


class _PropertyRoutes(_State):
    """The handler under ``/crm/v3/properties``."""

    def property_names(self) -> list[str]:
        """Every contact property the emulator defines (for tests)."""
        with self.lock:
            return [d["name"] for d in self._property_definitions()]

    def _property_definitions(self) -> list[dict[str, Any]]:
        return property_definitions(self._definitions)

    def _h_properties(self, _: Request, match: re.Match[str]) -> Response:
        if match["object"] not in _CONTACT_TYPES:
            raise HubSpotError(404, f"Unable to infer object type from: {match['object']}",
                               "OBJECT_NOT_FOUND")
        return Response(200, {"results": self._property_definitions()})
