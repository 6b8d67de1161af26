"""HubSpot's CRM objects endpoints for contacts: one by one, batches, GDPR delete, merge."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from emulators.http import Request, Response
from emulators.hubspot.common import HubSpotError, _iso, _now_ms
from emulators.hubspot.state import _State


class _ContactRoutes(_State):
    """The handlers under ``/crm/v3/objects/contacts``."""

    @staticmethod
    def _names(request: Request) -> list[str] | None:
        names = [n for raw in request.query.get("properties", []) for n in raw.split(",") if n]
        return names or None

    def _h_create(self, request: Request, _: re.Match[str]) -> Response:
        contact = self._create(self._writable(self._body(request).get("properties")), "API")
        return Response(201, self._view(contact, contact.properties))

    def _h_get(self, request: Request, match: re.Match[str]) -> Response:
        contact = self._resolve(unquote(match["id"]), request.arg("idProperty"),
                                request.arg("archived") == "true")
        return Response(200, self._view(contact, self._names(request)))

    def _h_update(self, request: Request, match: re.Match[str]) -> Response:
        contact = self._resolve(unquote(match["id"]), request.arg("idProperty"))
        props = self._writable(self._body(request).get("properties"))
        self._set_props(contact, props, "API")
        return Response(200, self._view(contact, props))

    def _h_archive(self, _: Request, match: re.Match[str]) -> Response:
        self._archive(match["id"], "API")
        return Response(204)

    def _batch(self, found: list[dict[str, Any]], missing: list[str]) -> Response:
        now = _iso(_now_ms())
        body: dict[str, Any] = {"status": "COMPLETE", "results": found, "startedAt": now,
                                "completedAt": now}
        if not missing:
            return Response(200, body)
        body["numErrors"] = 1
        body["errors"] = [{"status": "error", "category": "OBJECT_NOT_FOUND",
                           "message": "Could not get some CONTACT objects, they may be deleted "
                                      "or not exist. Check that ids are valid.",
                           "context": {"ids": missing}}]
        return Response(207, body)

    def _h_batch_read(self, request: Request, _: re.Match[str]) -> Response:
        body = self._body(request)
        found, missing = [], []
        for item in self._inputs(body):
            key = str(item.get("id", "")) if isinstance(item, dict) else ""
            try:
                contact = self._resolve(key, body.get("idProperty"))
            except HubSpotError:
                missing.append(key)
                continue
            names = body.get("properties")
            found.append(self._view(contact, names if isinstance(names, list) and names else None))
        return self._batch(found, missing)

    def _h_batch_update(self, request: Request, _: re.Match[str]) -> Response:
        found, missing = [], []
        for item in self._inputs(self._body(request)):
            if not isinstance(item, dict):
                raise HubSpotError(400, "each input must be an object")
            props = self._writable(item.get("properties"))
            try:
                contact = self._resolve(str(item.get("id", "")), item.get("idProperty"))
            except HubSpotError:
                missing.append(str(item.get("id", "")))
                continue
            self._set_props(contact, props, "API")
            found.append(self._view(contact, props))
        return self._batch(found, missing)

    def _h_gdpr_delete(self, request: Request, _: re.Match[str]) -> Response:
        body = self._body(request)
        key, id_property = str(body.get("objectId", "")), body.get("idProperty")
        try:
            contact = self._resolve(key, id_property)
        except HubSpotError:
            if id_property != "email":
                raise
            self._blocklist.add(key.lower())
            return Response(204)
        self._purge(contact, "API")
        return Response(204)

    def _h_merge(self, request: Request, _: re.Match[str]) -> Response:
        body = self._body(request)
        primary = self._merge(str(body.get("primaryObjectId", "")),
                              str(body.get("objectIdToMerge", "")), "API")
        return Response(200, self._view(primary))
