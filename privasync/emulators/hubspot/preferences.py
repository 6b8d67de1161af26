"""HubSpot's communication preferences endpoints: v3 (one address) and v4 (batches).

v4 speaks ``UNSUBSCRIBED`` and refuses ``NOT_SUBSCRIBED``; v3 speaks ``NOT_SUBSCRIBED``
(contracts.hubspot.preferences). Bodies are read through those contracts."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from privasync.emulators.contracts.hubspot.preferences import (
    BatchInputPublicStatusRequest,
    BatchInputString,
    PublicStatusRequest,
    PublicUpdateSubscriptionStatusRequest,
)
from privasync.emulators.http import Request, Response
from privasync.emulators.hubspot.common import (
    FROM_V4,
    NOT_SPECIFIED,
    NOT_SUBSCRIBED,
    SUBSCRIBED,
    TO_V4,
    HubSpotError,
    _iso,
    _now_ms,
    standard_error,
)
from privasync.emulators.hubspot.state import _State
from privasync.emulators.hubspot.validation import parse


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
        body = parse(PublicUpdateSubscriptionStatusRequest, request)
        email, sub_id = body.emailAddress.lower(), self._subscription(body.subscriptionId)
        if "@" not in email:
            raise HubSpotError(400, "emailAddress is not a valid address")
        if state == SUBSCRIBED and (email in self._opted_out
                                    or self._status_of(email, sub_id) == NOT_SUBSCRIBED):
            raise HubSpotError(400, "The recipient has opted out and cannot be resubscribed "
                                    "through this API")
        self._write_status(email, sub_id, state, "API", body.legalBasis,
                           body.legalBasisExplanation)
        self._sync_optout(email, "API")
        return Response(200, self._v3_row(email, sub_id))

    def _h_v3_unsubscribe(self, request: Request, _: re.Match[str]) -> Response:
        return self._v3_change(request, NOT_SUBSCRIBED)

    def _h_v3_subscribe(self, request: Request, _: re.Match[str]) -> Response:
        return self._v3_change(request, SUBSCRIBED)

    def _v4_refusal(self, item: PublicStatusRequest) -> dict[str, Any] | None:
        """One input the contract let through but HubSpot still refuses (an unknown
        subscription, a subscribe without a legal basis), as a ``StandardError``."""
        context = {"subscriberIdString": [item.subscriberIdString],
                   "subscriptionId": [str(item.subscriptionId)]}
        if item.subscriptionId not in self._definitions:
            return standard_error(f"Subscription {item.subscriptionId} does not exist",
                                  "OBJECT_NOT_FOUND", context)
        if "@" not in item.subscriberIdString:
            return standard_error("subscriberIdString is not a valid address",
                                  "VALIDATION_ERROR", context)
        if item.statusState == SUBSCRIBED and not item.legalBasis:
            return standard_error("A legalBasis is required to subscribe", "VALIDATION_ERROR",
                                  context, [{"message": "legalBasis is required",
                                             "in": "legalBasis"}])
        return None

    def _h_v4_write(self, request: Request, _: re.Match[str]) -> Response:
        """Spec: 200 ``BatchResponsePublicStatus`` (no 207 listed): refused inputs ride in
        its ``errors``. A ``statusState`` outside v4's enum refuses the whole call (400)."""
        body = parse(BatchInputPublicStatusRequest, request)
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        touched: dict[str, None] = {}
        for item in body.inputs:
            refused = self._v4_refusal(item)
            if refused is not None:
                errors.append(refused)
                continue
            email = item.subscriberIdString.lower()
            reason = self._write_status(email, item.subscriptionId, FROM_V4[item.statusState],
                                        "API", item.legalBasis, item.legalBasisExplanation)
            results.append(self._v4_row(email, item.subscriptionId)
                           | {"setStatusSuccessReason": reason})
            touched[email] = None
        for email in touched:
            self._sync_optout(email, "API")
        return self._v4_answer(results, errors, multi_status=False)

    def _v4_row(self, email: str, sub_id: int) -> dict[str, Any]:
        """A v4 ``PublicStatus``: v4 spelling, unset optional fields left out."""
        row = self._status_row(email, sub_id)
        row["status"] = TO_V4[row["status"]]
        return {k: v for k, v in row.items() if v is not None}

    @staticmethod
    def _v4_answer(results: list[dict[str, Any]], errors: list[dict[str, Any]], *,
                   multi_status: bool = True) -> Response:
        now = _iso(_now_ms())
        body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": now,
                                "completedAt": now}
        if errors:
            body |= {"errors": errors, "numErrors": len(errors)}
        return Response(207 if errors and multi_status else 200, body)

    @staticmethod
    def _channel(request: Request) -> None:
        """``channel`` is a required query parameter, enum ``EMAIL`` (v4 spec)."""
        channel = request.arg("channel")
        if channel != "EMAIL":
            raise HubSpotError(400, f"Invalid value for query parameter channel: "
                                    f"{'missing' if channel is None else 'not EMAIL'}",
                               errors=[{"message": "channel must be EMAIL", "in": "channel"}])

    def _h_v4_read(self, request: Request, _: re.Match[str]) -> Response:
        self._channel(request)
        body = parse(BatchInputString, request)
        results = [{"subscriberIdString": e.lower(),
                    "statuses": [self._v4_row(e.lower(), s) for s in self._definitions]}
                   for e in body.inputs]
        return self._v4_answer(results, [])

    def _h_v4_unsub_all(self, request: Request, match: re.Match[str]) -> Response:
        self._channel(request)
        email = unquote(match["email"]).lower()
        self._unsubscribe_all(email, "API")
        return self._v4_answer([self._v4_row(email, s) | {
            "setStatusSuccessReason": "UNSUBSCRIBE_FROM_ALL_OCCURRED"}
            for s in self._definitions], [])
