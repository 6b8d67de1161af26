"""Communication preferences: v4 (batches, privasync's consent writes) and v3 (definitions).

The two versions spell an opt-out differently, and that is the trap this module pins:
v4's ``statusState``/``status`` is ``NOT_SPECIFIED | SUBSCRIBED | UNSUBSCRIBED``; v3's
``status`` is ``SUBSCRIBED | NOT_SUBSCRIBED``.

Sources (HubSpot/HubSpot-public-api-spec-collection, commit in common.SPEC_COMMIT):
- v4: ``PublicApiSpecs/Communication Preferences/Subscriptions/Rollouts/176901/v4/
  subscriptions.json`` (info.version v4): ``POST /communication-preferences/v4/statuses/
  batch/write`` (200 ``BatchResponsePublicStatus`` only: per-input refusals ride in its
  ``errors``), ``.../statuses/batch/read?channel=EMAIL`` (200/207),
  ``.../statuses/{subscriberIdString}/unsubscribe-all?channel=EMAIL`` (200).
- v3: ``PublicApiSpecs/Communication Preferences/Subscriptions/Rollouts/147906/v3/
  subscriptions.json``: ``GET /communication-preferences/v3/definitions``,
  ``GET .../v3/status/email/{emailAddress}``, ``POST .../v3/subscribe|unsubscribe``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from privasync.emulators.contracts.hubspot.common import (
    BATCH_LIMIT,
    BatchAnswer,
    BatchAnswerWithErrors,
    Request,
    Strict,
)

LegalBasis = Literal["CONSENT_WITH_NOTICE", "LEGITIMATE_INTEREST_CLIENT",
                     "LEGITIMATE_INTEREST_OTHER", "LEGITIMATE_INTEREST_PQL", "NON_GDPR",
                     "PERFORMANCE_OF_CONTRACT", "PROCESS_AND_STORE"]
V4Status = Literal["NOT_SPECIFIED", "SUBSCRIBED", "UNSUBSCRIBED"]
V4_STATUSES: tuple[str, ...] = ("NOT_SPECIFIED", "SUBSCRIBED", "UNSUBSCRIBED")
SetStatusSuccessReason = Literal["NO_STATUS_CHANGE", "REQUESTED_CHANGE_OCCURRED",
                                 "RESUBSCRIBE_OCCURRED", "UNSUBSCRIBE_FROM_ALL_OCCURRED"]
V3Status = Literal["NOT_SUBSCRIBED", "SUBSCRIBED"]
Channel = Literal["EMAIL"]


# -- v4 ------------------------------------------------------------------------------
class PublicStatusRequest(Request):
    channel: Channel
    statusState: V4Status
    subscriberIdString: str
    subscriptionId: int
    legalBasis: LegalBasis | None = None
    legalBasisExplanation: str | None = None


class BatchInputPublicStatusRequest(Request):
    inputs: list[PublicStatusRequest] = Field(max_length=BATCH_LIMIT)


class PublicStatus(Strict):
    channel: Channel
    source: str
    status: V4Status
    subscriberIdString: str
    subscriptionId: int
    timestamp: AwareDatetime
    businessUnitId: int | None = None
    legalBasis: LegalBasis | None = None
    legalBasisExplanation: str | None = None
    setStatusSuccessReason: SetStatusSuccessReason | None = None
    subscriptionName: str | None = None


class BatchResponsePublicStatus(BatchAnswerWithErrors):
    results: list[PublicStatus]


class ActionResponseWithResultsPublicStatus(BatchAnswerWithErrors):
    results: list[PublicStatus]


class BatchInputString(Request):
    inputs: list[str] = Field(max_length=BATCH_LIMIT)


class PublicStatusBulkResponse(Strict):
    statuses: list[PublicStatus]
    subscriberIdString: str


class BatchResponsePublicStatusBulkResponse(BatchAnswer):
    results: list[PublicStatusBulkResponse]


class BatchResponsePublicStatusBulkResponseWithErrors(BatchAnswerWithErrors):
    results: list[PublicStatusBulkResponse]


# -- v3 ------------------------------------------------------------------------------
class SubscriptionDefinition(Strict):
    createdAt: AwareDatetime
    description: str
    id: str
    isActive: bool
    isDefault: bool
    isInternal: bool
    name: str
    updatedAt: AwareDatetime
    businessUnitId: int | None = None
    communicationMethod: str | None = None
    purpose: str | None = None


class SubscriptionDefinitionsResponse(Strict):
    subscriptionDefinitions: list[SubscriptionDefinition]


class PublicSubscriptionStatus(Strict):
    description: str
    id: str
    name: str
    sourceOfStatus: Literal["BRAND_WIDE_STATUS", "PORTAL_WIDE_STATUS", "SUBSCRIPTION_STATUS"]
    status: V3Status
    brandId: int | None = None
    legalBasis: LegalBasis | None = None
    legalBasisExplanation: str | None = None
    preferenceGroupName: str | None = None


class PublicSubscriptionStatusesResponse(Strict):
    recipient: str
    subscriptionStatuses: list[PublicSubscriptionStatus]


class PublicUpdateSubscriptionStatusRequest(Request):
    emailAddress: str
    subscriptionId: str
    legalBasis: LegalBasis | None = None
    legalBasisExplanation: str | None = None
