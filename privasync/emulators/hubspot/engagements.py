"""Engagements (logged e-mails, calls, meetings, notes, tasks) and the contacts they are
associated with: ``POST /crm/v3/objects/{type}/batch/read`` and
``POST /crm/v4/associations/contacts/{type}/batch/read`` (contracts.hubspot.engagements).

A merge moves the merged contact's associations to the one kept and adds the merged id to
its ``hs_merged_object_ids``, as HubSpot's merge does ("Merge records": activities of both
are kept on the remaining record); a GDPR delete removes the contact's associations.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

from privasync.emulators.contracts.hubspot.contacts import BatchReadInputSimplePublicObjectId
from privasync.emulators.contracts.hubspot.engagements import (
    ASSOCIATION_PAGE,
    CONTACT_TO,
    ENGAGEMENT_PROPERTIES,
    NO_ASSOCIATIONS,
    BatchInputPublicFetchAssociationsBatchRequest,
)
from privasync.emulators.http import Request, Response
from privasync.emulators.hubspot.common import HubSpotError, _iso, _now_ms, standard_error
from privasync.emulators.hubspot.validation import parse

ENGAGEMENTS = tuple(ENGAGEMENT_PROPERTIES)


@dataclass
class _Engagement:
    id: str
    type: str
    properties: dict[str, str]
    created_ms: int


class _EngagementRoutes:
    """The handlers for engagements and associations; HubSpotEmulator sets the state."""

    _engagements: dict[str, _Engagement]
    _associated: dict[str, list[str]]  # contact id -> engagement ids, in the order logged
    _engagement_ids: itertools.count[int]
    association_page: int

    def _reset_engagements(self) -> None:
        self._engagements, self._associated = {}, {}
        self._engagement_ids = itertools.count(50001)
        self.association_page = ASSOCIATION_PAGE

    # -- helpers for tests (someone logging an activity on a contact in the CRM) ----------
    def log_engagement(self, object_type: str, contact_ids: list[str] | str,
                       **properties: str) -> str:
        """Log an engagement of ``object_type`` on these contacts; returns its id. Raises
        HubSpotError for a type or property HubSpot does not have (the API refuses a write
        naming an unknown property)."""
        with self.lock:  # type: ignore[attr-defined]
            if object_type not in ENGAGEMENT_PROPERTIES:
                raise HubSpotError(404, f"Unable to infer object type from: {object_type}",
                                   "OBJECT_NOT_FOUND")
            unknown = sorted(set(properties) - set(ENGAGEMENT_PROPERTIES[object_type]))
            if unknown:
                raise HubSpotError(400, f"Property values were not valid: {unknown[0]} does "
                                        "not exist", errors=[{"message": "does not exist",
                                                              "code": "PROPERTY_DOESNT_EXIST",
                                                              "in": unknown[0]}])
            ids = [contact_ids] if isinstance(contact_ids, str) else list(contact_ids)
            for contact_id in ids:
                self._live(contact_id)  # type: ignore[attr-defined]
            now = _now_ms()
            engagement = _Engagement(str(next(self._engagement_ids)), object_type,
                                     {"hs_timestamp": _iso(now), **properties}, now)
            self._engagements[engagement.id] = engagement
            for contact_id in ids:
                self._associated.setdefault(contact_id, []).append(engagement.id)
            return engagement.id

    def associated(self, contact_id: str) -> list[str]:
        with self.lock:  # type: ignore[attr-defined]
            return list(self._associated.get(contact_id, []))

    # -- state changes the contact routes call ----------------------------------------------
    def _move_associations(self, primary_id: str, merged_id: str) -> None:
        moved = self._associated.pop(merged_id, [])
        kept = self._associated.setdefault(primary_id, [])
        kept.extend(e for e in moved if e not in kept)

    def _forget_associations(self, contact_id: str) -> None:
        self._associated.pop(contact_id, None)

    # -- routes -------------------------------------------------------------------------------
    def _h_engagement_read(self, request: Request, match: re.Match[str]) -> Response:
        object_type = match["object"]
        body = parse(BatchReadInputSimplePublicObjectId, request)
        if body.idProperty not in (None, "hs_object_id"):
            raise HubSpotError(400, f"{body.idProperty} is not a unique property of "
                                    f"{object_type}")
        found: list[dict[str, Any]] = []
        missing: list[str] = []
        for item in body.inputs:
            engagement = self._engagements.get(item.id)
            if engagement is None or engagement.type != object_type:
                missing.append(item.id)
                continue
            found.append(_view(engagement, body.properties))
        now = _iso(_now_ms())
        answer: dict[str, Any] = {"status": "COMPLETE", "results": found, "startedAt": now,
                                  "completedAt": now}
        if not missing:
            return Response(200, answer)
        answer["numErrors"] = 1
        answer["errors"] = [standard_error(
            f"Could not get some {object_type.upper()} objects, they may be deleted or not "
            "exist. Check that ids are valid.", "OBJECT_NOT_FOUND", {"ids": missing})]
        return Response(207, answer)

    def _h_association_read(self, request: Request, match: re.Match[str]) -> Response:
        if match["from"] not in ("contacts", "contact", "0-1"):
            raise HubSpotError(400, "this emulator associates from contacts only")
        to = match["to"]
        if to not in CONTACT_TO:
            raise HubSpotError(400, f"Unable to infer object type from: {to}",
                               "OBJECT_NOT_FOUND")
        body = parse(BatchInputPublicFetchAssociationsBatchRequest, request)
        results: list[dict[str, Any]] = []
        lonely: list[str] = []
        for item in body.inputs:
            linked = [e for e in self._associated.get(item.id, [])
                      if self._engagements[e].type == to]
            start = int(item.after) if item.after and item.after.isdigit() else 0
            page = linked[start:start + self.association_page]
            if not page:
                lonely.append(item.id)
                continue
            result: dict[str, Any] = {"from": {"id": item.id}, "to": [
                {"toObjectId": e, "associationTypes": [
                    {"category": "HUBSPOT_DEFINED", "typeId": CONTACT_TO[to], "label": None}]}
                for e in page]}
            if start + len(page) < len(linked):
                result["paging"] = {"next": {"after": str(start + len(page))}}
            results.append(result)
        now = _iso(_now_ms())
        answer: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": now,
                                  "completedAt": now}
        if not lonely:
            return Response(200, answer)
        answer["numErrors"] = len(lonely)
        answer["errors"] = [{**standard_error(
            f"No {to} is associated with contact {i}.", "VALIDATION_ERROR",
            {"fromObjectId": [i]}), "subCategory": NO_ASSOCIATIONS} for i in lonely]
        return Response(207, answer)


def _view(engagement: _Engagement, names: list[str]) -> dict[str, Any]:
    """An engagement as HubSpot answers it: the properties asked for it has, plus the
    ones every object carries."""
    props: dict[str, str | None] = {n: engagement.properties.get(n) for n in names
                                    if n in ENGAGEMENT_PROPERTIES[engagement.type]}
    props |= {"hs_object_id": engagement.id, "hs_createdate": _iso(engagement.created_ms),
              "hs_lastmodifieddate": _iso(engagement.created_ms)}
    stamp = _iso(engagement.created_ms)
    return {"id": engagement.id, "properties": props, "createdAt": stamp, "updatedAt": stamp,
            "archived": False}
