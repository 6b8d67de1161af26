"""What HubSpot sends privasync (webhook deliveries) and the private-app token-info call.

In no OpenAPI file; from HubSpot's documentation:
- "Webhooks API" (developers.hubspot.com/docs/api/webhooks, legacy apps), "Event
  payloads": a POST whose JSON array holds up to 100 events; the fields below; merge
  events add ``primaryObjectId``, ``mergedObjectIds``, ``newObjectId``,
  ``numberOfPropertiesMoved`` (changelog "New subscription types for webhooks").
- "Validating requests" (developers.hubspot.com/docs/api/webhooks/validating-requests):
  ``X-HubSpot-Signature-v3`` = base64(HMAC-SHA256(client secret, method + URI + body +
  timestamp)), ``X-HubSpot-Request-Timestamp`` in ms, refused past 5 minutes; CRM object
  webhooks also carry ``X-HubSpot-Signature-Version: v1`` with the v1 ``X-HubSpot-Signature``
  (hex SHA-256 of secret + body).
- "Private apps" (developers.hubspot.com/docs/api/private-apps), "access token info":
  ``POST /oauth/v2/private-apps/get/access-token-info`` with ``{"tokenKey": ...}``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from privasync.emulators.contracts.hubspot.common import BATCH_LIMIT, Request, Strict

SIGNATURE_V3_HEADER = "X-HubSpot-Signature-v3"
TIMESTAMP_HEADER = "X-HubSpot-Request-Timestamp"
LEGACY_SIGNATURE_HEADER = "X-HubSpot-Signature"
VERSION_HEADER = "X-HubSpot-Signature-Version"
MAX_TIMESTAMP_AGE_MS = 5 * 60 * 1000
MAX_EVENTS = BATCH_LIMIT

SubscriptionType = Literal[
    "contact.creation", "contact.deletion", "contact.privacyDeletion", "contact.merge",
    "contact.propertyChange", "contact.restore", "contact.associationChange"]
# Documented examples; HubSpot names more sources than these (e.g. IMPORT, INTEGRATION).
ChangeSource = str


class WebhookEvent(Strict):
    """One event of a classic (``contact.*``) webhook delivery. Ids are 64-bit integers;
    ``occurredAt`` is ms since the epoch; ``attemptNumber`` counts from 0."""

    eventId: int = Field(ge=0)
    subscriptionId: int = Field(ge=0)
    portalId: int = Field(ge=0)
    appId: int = Field(ge=0)
    occurredAt: int = Field(ge=0)
    subscriptionType: SubscriptionType
    attemptNumber: int = Field(ge=0)
    objectId: int = Field(ge=0)
    changeSource: ChangeSource | None = None
    sourceId: str | None = None
    changeFlag: str | None = None
    propertyName: str | None = None
    propertyValue: str | None = None
    primaryObjectId: int | None = None
    mergedObjectIds: list[int] | None = None
    newObjectId: int | None = None
    numberOfPropertiesMoved: int | None = None


class WebhookDelivery(Strict):
    events: list[WebhookEvent] = Field(min_length=1, max_length=MAX_EVENTS)


class AccessTokenInfoRequest(Request):
    tokenKey: str


class AccessTokenInfo(Strict):
    userId: int
    hubId: int
    appId: int
    scopes: list[str]
