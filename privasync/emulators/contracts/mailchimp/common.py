"""What every Mailchimp Marketing API call shares: the problem document, links, statuses.

Sources (facts only; the models are written here):
- [S1] Mailchimp Marketing API definition 3.0.55 (Swagger 2.0), the ``spec/marketing.json``
  of github.com/mailchimp/mailchimp-client-lib-codegen, read from its Swagger rendering in
  github.com/iimrudy/mailchimp ``api/swagger.yaml`` (the codegen repository's own copy is over
  the size the mirror keeps). Definitions "Problem Detail Document", "Add List Members",
  "Add List Members_2", "Add List Members_3", "Batch update List members(_errors)",
  "Members to Subscribe/Unsubscribe to/from a List in batch", "Add Webhook", "List Webhooks",
  "API health status", "Subscriber List".
- [S2] The current definition as generated into github.com/mailchimp/
  mailchimp-marketing-typescript-sdk (Fern, "auto-generated from our API Definition",
  codegen weekly deploy of 2026-04-30 "adding SMS support"): ``src/api/types/AddWebhook.ts``,
  ``ListWebhooks.ts``, ``src/api/resources/lists/client/requests/{Get,Update,Upsert}Member
  ListsRequest.ts``, ``.../types/BatchSubscribeOrUnsubscribeListsResponse*.ts``; and its
  Python sibling's ``ListMembers`` model (member properties incl. contact_id, sms_*).
- [D1] Mailchimp's error documentation, https://mailchimp.com/developer/marketing/docs/errors/
  (the ``type`` every problem names; the titles by status).
Where a rule below comes from none of these, its comment says "assumption".
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

SPEC_VERSION = "3.0.55 (S1) + 2026-04-30 definition (S2)"
PROBLEM_TYPE = "https://mailchimp.com/developer/marketing/docs/errors/"  # [D1]
PROBLEM_CONTENT_TYPE = "application/problem+json"  # [S1] produces
# Titles by status [D1]; 405 and the JSON parse error as the glossary names them.
TITLES = {400: "Invalid Resource", 401: "API Key Invalid", 404: "Resource Not Found",
          405: "Method Not Allowed", 429: "Too Many Requests"}
JSON_PARSE_ERROR = "JSON Parse Error"
INVALID_DETAIL = ("The resource submitted could not be validated. For field-specific "
                  "details, see the 'errors' array.")
BATCH_LIMIT = 500  # [S1]/[S2] members: "Up to 500 members may be added or updated"
PAGE_LIMIT = 1000  # [S1] count: "Maximum value is 1000"

# [S1]/[S2] "Subscriber's current status" of writes (PUT, PATCH, batch).
MemberStatus = Literal["subscribed", "unsubscribed", "cleaned", "pending", "transactional"]
# [S1] the members read's ``status`` filter, and what a read answers: archived too.
ReadStatus = Literal["subscribed", "unsubscribed", "cleaned", "pending", "transactional",
                     "archived"]
WRITE_STATUSES: frozenset[str] = frozenset(
    {"subscribed", "unsubscribed", "cleaned", "pending", "transactional"})
READ_STATUSES: frozenset[str] = WRITE_STATUSES | {"archived"}


class Closed(BaseModel):
    """A shape as published: no property it does not list, JSON types taken strictly."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)


class Link(Closed):
    """[S1] "Resource Link"."""

    rel: str | None = None
    href: str | None = None
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"] | None = None
    targetSchema: str | None = None  # noqa: N815 - the API's own name
    schema_: str | None = Field(default=None, alias="schema")


class FieldError(Closed):
    """[D1] a validation problem's ``errors`` entry: the field and what is wrong with it."""

    field: str
    message: str


class Problem(Closed):
    """[S1] "Problem Detail Document": every refusal's body, all five required; [D1] adds
    ``errors`` to validation problems."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    errors: list[FieldError] | None = None


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """A pydantic refusal as problem ``errors``: the dotted field and a message naming the
    rule, never the value sent. The messages are an assumption ([D1] shows the shape only)."""
    found: list[dict[str, str]] = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "body"
        kind = error["type"]
        if kind == "extra_forbidden":
            message = "This property is not allowed."
        elif kind == "missing":
            message = "This value should not be blank."
        elif kind == "literal_error":
            message = "Value is not one of the allowed values."
        elif kind == "too_long":
            message = "Too many items."
        else:
            message = f"Schema describes another type ({kind})."
        found.append({"field": field, "message": message})
    return found
