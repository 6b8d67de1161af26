"""`privasync smoke` on HubSpot: a test contact made, subscribed, unsubscribed, read back and
removed, through hubspot-api-client (contacts) and plain HTTP for v4 preferences (which the
client lacks), never through the connector (the smoke checks the connector's work).

Facts, from HubSpot's OpenAPI documents (HubSpot/HubSpot-public-api-spec-collection):
- ``PublicApiSpecs/CRM/Contacts/Rollouts/424/v3/contacts.json`` (v3): POST
  /crm/v3/objects/contacts takes ``properties`` and ``associations`` (both required);
  batch/read requires ``inputs``, ``properties`` and ``propertiesWithHistory`` and may
  answer 207; gdpr-delete takes ``objectId`` and ``idProperty`` and answers 204.
- ``PublicApiSpecs/Communication Preferences/Subscriptions/Rollouts/176901/v4/
  subscriptions.json`` (v4): statuses/batch/write rows need ``channel`` (EMAIL),
  ``statusState`` (NOT_SPECIFIED, SUBSCRIBED, UNSUBSCRIBED), ``subscriberIdString`` and
  ``subscriptionId``, with ``legalBasis`` and ``legalBasisExplanation`` to subscribe;
  statuses/batch/read needs ``channel=EMAIL`` and answers PublicStatus rows whose
  ``status`` is one of the same three; ``{subscriberIdString}/unsubscribe-all`` needs
  ``channel=EMAIL``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from hubspot import HubSpot
from hubspot.crm.contacts import (
    BatchReadInputSimplePublicObjectId,
    PublicGdprDeleteInput,
    SimplePublicObjectId,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.contacts.exceptions import ApiException

from connectors.transport import TimeoutSession, error_for_status
from core.errors import DeliveryError, PermanentError

_V4 = "/communication-preferences/v4/statuses"
LEGAL_BASIS = "CONSENT_WITH_NOTICE"
EXPLANATION = "privasync smoke test: the operator's own test address, subscribed by the operator"
# v4 spells an opt-out UNSUBSCRIBED; v3's NOT_SUBSCRIBED is read as the same answer (an
# assumption kept for reading only: nothing here ever sends it).
OPTED_OUT = frozenset({"UNSUBSCRIBED", "NOT_SUBSCRIBED"})


def _refused(status: int, body: object, what: str) -> DeliveryError:
    """HubSpot's error ``category`` (VALIDATION_ERROR, ...) is the class; never its message,
    which may quote the address."""
    category = body.get("category") if isinstance(body, dict) else None
    return error_for_status(status, what, error_class=category if isinstance(category, str)
                            else None)


class HubSpotSmoke:
    name = "hubspot"

    def __init__(self, *, base_url: str, access_token: str, timeout: float,
                 subscriptions: Iterable[str]) -> None:
        token = access_token
        self._base = base_url.rstrip("/")
        self._timeout = timeout
        self._http = TimeoutSession(timeout)  # refuses a timeout of 0 before anything is made
        self._client = HubSpot(access_token=token, host=self._base)
        self._http.headers["Authorization"] = f"Bearer {token}"
        self._subscriptions = sorted(subscriptions, key=int)

    # -- the calls --------------------------------------------------------------------
    def _sdk(self, what: str, method: Any, *args: Any) -> Any:
        try:
            return method(*args, _request_timeout=self._timeout)
        except ApiException as exc:
            body: object = None
            try:
                body = json.loads(exc.body or "null")
            except ValueError:
                pass
            raise _refused(int(exc.status or 0), body, what) from None

    def _post(self, what: str, path: str, body: object, **params: str) -> dict[str, Any]:
        answer = self._http.post(self._base + path, json=body, params=params)
        try:
            found = answer.json()
        except ValueError:
            found = None
        if not answer.ok:
            raise _refused(answer.status_code, found, what)
        errors = found.get("errors") if isinstance(found, dict) else None
        if errors:  # a 207: some rows refused
            first = errors[0] if isinstance(errors[0], dict) else {}
            raise PermanentError(f"{what}: refused", error_class=str(first.get("category")
                                                                     or "batch_error"))
        return found if isinstance(found, dict) else {}

    # -- what the smoke does ----------------------------------------------------------
    def create(self, address: str) -> None:
        """A contact with the address, subscribed to every mapped subscription type."""
        self._sdk("hubspot create contact", self._client.crm.contacts.basic_api.create,
                  SimplePublicObjectInputForCreate(properties={"email": address},
                                                   associations=[]))
        rows = [{"subscriberIdString": address, "channel": "EMAIL", "statusState": "SUBSCRIBED",
                 "subscriptionId": int(s), "legalBasis": LEGAL_BASIS,
                 "legalBasisExplanation": EXPLANATION} for s in self._subscriptions]
        self._post("hubspot statuses batch write", f"{_V4}/batch/write", {"inputs": rows})

    def unsubscribe(self, address: str) -> None:
        """What the person's "unsubscribe from all" does (v4, the address in the path)."""
        self._post("hubspot unsubscribe-all", f"{_V4}/{quote(address, safe='')}/unsubscribe-all",
                   None, channel="EMAIL")

    def opted_out(self, address: str) -> bool:
        """Whether every mapped subscription type reads as unsubscribed."""
        found = self._post("hubspot statuses batch read", f"{_V4}/batch/read",
                           {"inputs": [address]}, channel="EMAIL")
        states = {str(s.get("subscriptionId")): s.get("status")
                  for r in found.get("results") or [] for s in r.get("statuses") or []
                  if isinstance(s, dict)}
        return all(states.get(s) in OPTED_OUT for s in self._subscriptions)

    def holds(self, address: str) -> bool:
        """Whether a contact has the address (batch read by email: absent ones are a 207's
        errors, not a failure)."""
        read = BatchReadInputSimplePublicObjectId(
            inputs=[SimplePublicObjectId(id=address)], id_property="email",
            properties=["email"], properties_with_history=[])
        answer = self._sdk("hubspot batch read contacts",
                           self._client.crm.contacts.batch_api.read, read)
        return bool(getattr(answer, "results", None))

    def remove(self, address: str) -> bool:
        """GDPR-delete the contact if it is still there; True if something was removed."""
        if not self.holds(address):
            return False
        self._sdk("hubspot gdpr delete", self._client.crm.contacts.basic_api.purge,
                  PublicGdprDeleteInput(object_id=address, id_property="email"))
        return True

    def close(self) -> None:
        self._http.close()

