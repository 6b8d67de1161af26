"""What every HubSpot API shares: the error bodies, the batch envelope, the batch limit.

Source: HubSpot/HubSpot-public-api-spec-collection at commit SPEC_COMMIT, the
``Error``, ``ErrorDetail`` and ``StandardError`` schemas, identical in
``PublicApiSpecs/CRM/Contacts/Rollouts/424/v3/contacts.json`` (Contacts v3) and
``PublicApiSpecs/Communication Preferences/Subscriptions/Rollouts/176901/v4/subscriptions.json``
(Subscriptions v4). Where a fact is not in those files the comment names its source.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

SPEC_REPOSITORY = "HubSpot/HubSpot-public-api-spec-collection"
SPEC_COMMIT = "99893791383254f52aa07662baeb98aad65cc710"  # 2026-08-21

# Documentation, not the spec (no schema has maxItems): "batch endpoints take up to 100
# records" (developers.hubspot.com, CRM objects guide, "Batch operations"). That v4's
# statuses batches take 100 as well is an assumption.
BATCH_LIMIT = 100

BatchStatus = Literal["CANCELED", "COMPLETE", "PENDING", "PROCESSING"]


class Strict(BaseModel):
    """A request or answer body: a field the spec does not name is refused.

    HubSpot's JSON reader refuses an unknown field ("Unrecognized field ... not marked as
    ignorable", an answer of HubSpot's, not in the spec); for answers, ``forbid`` keeps
    the emulator from inventing fields privasync could come to rely on."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Request(Strict):
    """A request body. Numbers are taken where the spec says string, as HubSpot's JSON
    reader does (an id sent as 101 for "101")."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True,
                              coerce_numbers_to_str=True)


class ErrorDetail(Strict):
    """Spec ``ErrorDetail``: required ``message``; context maps a key to strings."""

    message: str
    code: str | None = None
    context: dict[str, list[str]] | None = None
    in_: str | None = Field(default=None, alias="in")
    subCategory: str | None = None


class Error(Strict):
    """Spec ``Error``: the body of every refused call (``default`` response).

    ``status: "error"`` is not in the schema, but in every example of HubSpot's
    error-handling page (developers.hubspot.com/docs/api-reference/error-handling),
    so it is allowed here."""

    category: str
    correlationId: str
    message: str
    context: dict[str, list[str]] | None = None
    errors: list[ErrorDetail] | None = None
    links: dict[str, str] | None = None
    subCategory: str | None = None
    status: Literal["error"] | None = None


class StandardError(Strict):
    """Spec ``StandardError``: one refused item of a batch; all six fields required.

    ``status`` is typed string ("The HTTP status code associated with the error");
    HubSpot's batch answers carry ``"error"`` there (assumption from observed answers)."""

    category: str
    context: dict[str, list[str]]
    errors: list[ErrorDetail]
    links: dict[str, str]
    message: str
    status: str
    id: str | None = None
    subCategory: dict[str, object] | None = None


class BatchAnswer(Strict):
    """The batch envelope every ``BatchResponse*`` schema shares (results typed below)."""

    completedAt: AwareDatetime
    startedAt: AwareDatetime
    status: BatchStatus
    requestedAt: AwareDatetime | None = None
    links: dict[str, str] | None = None


class BatchAnswerWithErrors(BatchAnswer):
    """``BatchResponse*WithErrors`` (and v4's write answer): per-item refusals."""

    errors: list[StandardError] | None = None
    numErrors: int | None = None


class RateLimited(Strict):
    """A 429's body as HubSpot's "API usage guidelines" show it (documentation, not the
    spec: it lacks the ``category`` the spec's Error requires). No Retry-After comes with
    it; ``X-HubSpot-RateLimit-Interval-Milliseconds`` names the window."""

    status: Literal["error"]
    message: str
    errorType: Literal["RATE_LIMIT"]
    correlationId: str
    policyName: str
    requestId: str | None = None


RATE_LIMIT_HEADERS = ("X-HubSpot-RateLimit-Max", "X-HubSpot-RateLimit-Remaining",
                      "X-HubSpot-RateLimit-Interval-Milliseconds")
