"""HubSpot's communication preferences endpoints: v3 (one address) and v4 (batches)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from emulators.http import Request, Response
from emulators.hubspot.common import (
    LEGAL_BASES,
    NOT_SPECIFIED,
    NOT_SUBSCRIBED,
    SUBSCRIBED,
    HubSpotError,
    _iso,
    _now_ms,
)
from emulators.hubspot.state import _State


class _PreferenceRoutes(_State):
    """The handlers under ``/communication-preferences``."""

    def _h_definitions(self, _: Request, __: re.Match[str]) -> Response:
        stamp = _iso(_now_ms())
        return Response(200, {"subscriptionDefinitions": [
            {"id": str(d.id), "name": d.name, "description": "", "purpose": "Marketing",
             "communicationMethod": "Email", "isActive": True, "isDefault": False,
             "isInternal": False, "createdAt": stamp, "updatedAt": stamp, "businessUnitId": 0}
            for d in self._definitions.values()]})

    def _h_v3_status(self, _: Request, match: re.Match[str]) -> Response:
        email = unquote(match["email"]).lower()
        rows = [self._v3_row(email, s) for s in self._definitions
                if self._status_of(email, s) != NOT_SPECIFIED]
        return Response(200, {"recipient": email, "subscriptionStatuses": rows})

    def _v3_change(self, request: Request, state: str) -> Response:
        body = self._body(request)
        email, sub_id = str(body.get("emailAddress", "")).lower(), self._subscription(
            body.get("subscriptionId"))
        if "@" not in email:
            raise HubSpotError(400, "emailAddress is not a valid address")
        if state == SUBSCRIBED and (email in self._opted_out
                                    or self._status_of(email, sub_id) == NOT_SUBSCRIBED):
            raise HubSpotError(400, "The recipient has opted out and cannot be resubscribed "
                                    "through this API")
        self._write_status(email, sub_id, state, "API", body.get("legalBasis"),
                           body.get("legalBasisExplanation"))
        self._sync_optout(email, "API")
        return Response(200, self._v3_row(email, sub_id))

    def _h_v3_unsubscribe(self, request: Request, _: re.Match[str]) -> Response:
        return self._v3_change(request, NOT_SUBSCRIBED)

    def _h_v3_subscribe(self, request: Request, _: re.Match[str]) -> Response:
        return self._v3_change(request, SUBSCRIBED)

    def _v4_input(self, item: object) -> tuple[str, int, str, str | None, str | None]:
        """Validate one batch/write input; HubSpotError names what is wrong with it."""
        if not isinstance(item, dict):
            raise HubSpotError(400, "each input must be an object")
        email, state = str(item.get("subscriberIdString", "")).lower(), item.get("statusState")
        basis = item.get("legalBasis")
        if "@" not in email:
            raise HubSpotError(400, "subscriberIdString is not a valid address")
        if item.get("channel") != "EMAIL":
            raise HubSpotError(400, "channel must be EMAIL")
        if state not in (SUBSCRIBED, NOT_SUBSCRIBED, NOT_SPECIFIED):
            raise HubSpotError(400, "statusState must be SUBSCRIBED, NOT_SUBSCRIBED or "
                                    "NOT_SPECIFIED")
        if (basis is not None and basis not in LEGAL_BASES) or (state == SUBSCRIBED and not basis):
            raise HubSpotError(400, "a valid legalBasis is required to subscribe")
        sub_id = self._subscription(item.get("subscriptionId"))
        return email, sub_id, str(state), basis, item.get("legalBasisExplanation")

    def _h_v4_write(self, request: Request, _: re.Match[str]) -> Response:
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        touched: dict[str, None] = {}
        for item in self._inputs(self._body(request)):
            try:
                email, sub_id, state, basis, why = self._v4_input(item)
            except HubSpotError as exc:
                raw = item if isinstance(item, dict) else {}
                errors.append({"status": "error", "category": exc.category, "message": exc.message,
                               "context": {"subscriberIdString": [str(raw.get(
                                   "subscriberIdString", ""))], "subscriptionId": [str(
                                       raw.get("subscriptionId", ""))]}})
                continue
            reason = self._write_status(email, sub_id, state, "API", basis, why)
            results.append(self._status_row(email, sub_id) | {"setStatusSuccessReason": reason})
            touched[email] = None
        for email in touched:
            self._sync_optout(email, "API")
        return self._v4_answer(results, errors)

    @staticmethod
    def _v4_answer(results: list[dict[str, Any]], errors: list[dict[str, Any]]) -> Response:
        now = _iso(_now_ms())
        body = {"status": "COMPLETE", "results": results, "errors": errors,
                "numErrors": len(errors), "startedAt": now, "completedAt": now}
        return Response(207 if errors else 200, body)

    def _h_v4_read(self, request: Request, _: re.Match[str]) -> Response:
        emails = [str(e).lower() for e in self._inputs(self._body(request))]
        results = [{"subscriberIdString": e,
                    "statuses": [self._status_row(e, s) for s in self._definitions]}
                   for e in emails]
        return self._v4_answer(results, [])

    def _h_v4_unsub_all(self, request: Request, match: re.Match[str]) -> Response:
        if request.arg("channel") != "EMAIL":
            raise HubSpotError(400, "channel must be EMAIL")
        email = unquote(match["email"]).lower()
        self._unsubscribe_all(email, "API")
        return self._v4_answer([self._status_row(email, s) for s in self._definitions], [])
