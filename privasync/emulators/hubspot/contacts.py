"""HubSpot's CRM objects endpoints for contacts: one by one, batches, GDPR delete, merge.

Bodies are read through contracts.hubspot.contacts (Contacts v3 spec); writes naming a
property the portal does not define, or a read-only one, are refused whole (properties.
invalid_properties).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from privasync.emulators.contracts.hubspot.contacts import (
    BatchInputSimplePublicObjectBatchInput,
    BatchReadInputSimplePublicObjectId,
    PublicGdprDeleteInput,
    PublicMergeInput,
)
from privasync.emulators.http import Request, Response
from privasync.emulators.hubspot.common import HubSpotError, _iso, _now_ms, standard_error
from privasync.emulators.hubspot.properties import invalid_properties
from privasync.emulators.hubspot.state import _State
from privasync.emulators.hubspot.validation import parse

_NOT_FOUND = ("Could not get some CONTACT objects, they may be deleted or not exist. Check "
              "that ids are valid.")


class _ContactRoutes(_State):
    """The handlers under ``/crm/v3/objects/contacts``."""

    @staticmethod
    def _names(request: Request) -> list[str] | None:
        names = [n for raw in request.query.get("properties", []) for n in raw.split(",") if n]
        return names or None

    def _api_writable(self, raw: object) -> dict[str, str | None]:
        """``_writable``, refusing what HubSpot refuses from the API: unknown properties and
        read-only values."""
        refused = invalid_properties(self._definitions, map(str, raw)) \
            if isinstance(raw, dict) else None
        if refused is not None:
            raise refused
        return self._writable(raw)

    def _h_create(self, request: Request, _: re.Match[str]) -> Response:
        contact = self._create(self._api_writable(self._body(request).get("properties")), "API")
        return Response(201, self._view(contact, contact.properties))

    def _h_get(self, request: Request, match: re.Match[str]) -> Response:
        contact = self._resolve(unquote(match["id"]), request.arg("idProperty"),
                                request.arg("archived") == "true")
        return Response(200, self._view(contact, self._names(request)))

    def _h_update(self, request: Request, match: re.Match[str]) -> Response:
        contact = self._resolve(unquote(match["id"]), request.arg("idProperty"))
        props = self._api_writable(self._body(request).get("properties"))
        self._set_props(contact, props, "API")
        return Response(200, self._view(contact, props))

    def _h_archive(self, _: Request, match: re.Match[str]) -> Response:
        self._archive(match["id"], "API")
        return Response(204)

    @staticmethod
    def _batch(found: list[dict[str, Any]], missing: list[str]) -> Response:
        """200 ``BatchResponseSimplePublicObject``, or 207 ``...WithErrors`` naming the ids
        not found in one ``StandardError`` (Contacts v3 spec)."""
        now = _iso(_now_ms())
        body: dict[str, Any] = {"status": "COMPLETE", "results": found, "startedAt": now,
                                "completedAt": now}
        if not missing:
            return Response(200, body)
        body["numErrors"] = 1
        body["errors"] = [standard_error(_NOT_FOUND, "OBJECT_NOT_FOUND", {"ids": missing})]
        return Response(207, body)

    def _h_batch_read(self, request: Request, _: re.Match[str]) -> Response:
        body = parse(BatchReadInputSimplePublicObjectId, request)
        found, missing = [], []
        for item in body.inputs:
            try:
                contact = self._resolve(item.id, body.idProperty)
            except HubSpotError:
                missing.append(item.id)
                continue
            found.append(self._view(contact, body.properties or None))
        return self._batch(found, missing)

    def _h_batch_update(self, request: Request, _: re.Match[str]) -> Response:
        body = parse(BatchInputSimplePublicObjectBatchInput, request)
        writes = [(item, self._api_writable(item.properties)) for item in body.inputs]
        found, missing = [], []
        for item, props in writes:
            try:
                contact = self._resolve(item.id, item.idProperty)
            except HubSpotError:
                missing.append(item.id)
                continue
            self._set_props(contact, props, "API")
            found.append(self._view(contact, props))
        return self._batch(found, missing)

    def _h_gdpr_delete(self, request: Request, _: re.Match[str]) -> Response:
        """204 whether or not HubSpot held the contact. By e-mail, an address it does not
        hold is blocklisted (spec: the operation's description). By id, an unknown id is
        answered 404 OBJECT_NOT_FOUND: the spec lists only 204 and ``default``, so this is
        an assumption (the erasure treats that 404 as "already gone")."""
        body = parse(PublicGdprDeleteInput, request)
        try:
            contact = self._resolve(body.objectId, body.idProperty)
        except HubSpotError:
            if body.idProperty != "email":
                raise
            self._blocklist.add(body.objectId.lower())
            return Response(204)
        self._purge(contact, "API")
        return Response(204)

    def _h_merge(self, request: Request, _: re.Match[str]) -> Response:
        body = parse(PublicMergeInput, request)
        primary = self._merge(body.primaryObjectId, body.objectIdToMerge, "API")
        return Response(200, self._view(primary))
