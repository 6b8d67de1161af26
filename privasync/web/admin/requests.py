"""``/api/v1/requests``: data-subject requests over HTTP, the same operations as the CLI.

Every change names the calling token as its actor in the ledger. A change is
answered 201/200 once the applier has applied it, or 202 when it is stored and
will be applied shortly (the applier was busy or not running).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core import subject_requests as rq
from core.db import reader
from core.model import EXCLUDE, INCLUDE, RequestKind, RequestStep
from privasync.app import access_bundle, breach, evidence, subject_requests, views
from privasync.web.admin.errors import FieldProblem, ValidationFailed
from privasync.web.admin.openapi import Call, Operation


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateRequest(_In):
    """What the person asked, as customer service recorded it."""

    kind: RequestKind
    email: str = Field(min_length=3, max_length=254, description="The address they gave.")
    received_at: datetime | None = Field(default=None, description="When it came in "
                                         "(default: now); the deadline counts from it.")
    identity: Literal["verified", "unverified"] = Field(
        description="Required: whether the person's identity was checked. `unverified` asks "
        "them to prove it (Art. 12(6)): nothing is done and the clock stops until "
        "`verify-identity`, within PRIVASYNC_IDENTITY_WAIT_DAYS (past it the request is "
        "flagged `identity_overdue` for an admin to verify or reject).")
    fields: dict[str, str] = Field(default_factory=dict, description="Rectification: the "
                                   "corrected values by canonical field name.")


class Extend(_In):
    months: int = Field(ge=1, le=2)
    reason: str = Field(min_length=1, max_length=500)


class Reason(_In):
    reason: str = Field(min_length=1, max_length=500)


class Review(_In):
    """Records held for review (the receipt's ``held_for_review``), each decided once:
    ``include`` joins the access answer, ``exclude`` drops it. A record held at two
    systems is named ``DESTINATION:RECORD``."""

    include: list[str] = Field(default_factory=list, max_length=200)
    exclude: list[str] = Field(default_factory=list, max_length=200)
    reason: str = Field(min_length=1, max_length=500)


class Retry(_In):
    destination: str = Field(default="", max_length=64)


class ListQuery(_In):
    due_within_days: int | None = Field(default=None, ge=0, le=400)
    overdue: bool = False
    status: Literal["identity_pending", "in_progress", "completed", "rejected"] | None = None
    kind: RequestKind | None = None


class Accepted(BaseModel):
    """The request's id, and whether the change is applied yet (false: stored, shortly)."""

    id: str
    applied: bool


class DestinationView(BaseModel):
    destination: str
    status: str = Field(description="`pending`, `done`, `failed`, `awaiting_ack`, "
                        "`awaiting_review` (records held for an admin's review: the "
                        "request waits) or `not_applicable`")
    reason: str | None
    ack_due: str | None
    overdue: bool
    receipt: dict[str, Any]


class RequestView(BaseModel):
    """A request: states, times and receipts; never personal data."""

    id: str
    kind: str
    status: str = Field(description="`received` (stored, not applied yet: no deadline, no "
                        "actor shown until then), `identity_pending`, `in_progress`, "
                        "`completed`, `rejected`; `failed` if privasync could not apply it.")
    source: str
    actor: str | None
    received_at: str
    due_at: str | None
    overdue: bool
    clock_paused: bool
    paused_seconds: int
    identity_due_at: str | None = Field(
        default=None, description="Asked to prove who they are: by when (Art. 12(6)).")
    identity_overdue: bool = Field(
        default=False, description="Still waiting for proof of identity past "
        "`identity_due_at`: an admin verifies or rejects it (nothing does by itself).")
    extended_months: int
    extension_reason: str | None
    extension_told_at: str | None = Field(
        default=None, description="When the person was told of the extension and its "
        "reason (Art. 12(3)), or the notice was given up (the history says which).")
    rejection_reason: str | None
    completed_at: str | None
    person_told_at: str | None
    note: str | None
    acks_overdue: list[str]
    destinations: list[DestinationView]
    covers: list[str] = Field(default_factory=list, description="The systems the request "
                              "goes to here (its destinations).")
    not_configured: list[str] | None = Field(
        default=None, description="The systems privasync knows (its vendor connectors, the "
        "partners in the mappings) that no connection was configured for when the request "
        "came in: it never reached them. null: received before privasync kept this.")
    history: list[dict[str, Any]] = Field(default_factory=list)


class RequestList(BaseModel):
    requests: list[RequestView]


class Evidence(BaseModel):
    """The request's ledger entries with their hashes and the chain segment linking them;
    ``digests`` are the SHA-256 of each part's ``canonicalization`` (RFC 8785) form."""

    canonicalization: str
    request: dict[str, Any]
    how_to_check: str
    entries: list[dict[str, Any]]
    acknowledgements: list[dict[str, Any]] = Field(
        default_factory=list, description="Each partner acknowledgement kept as it was "
        "signed, checked again: `body_sha256_matches` (the kept body against the ledger's "
        "`proof_sha256`) and `signature` (`valid`, `invalid: why`, or `not checked: why`).")
    segment: list[dict[str, Any]]
    generated_at: str
    digests: dict[str, str]


class BreachQuery(_In):
    destination: str = Field(min_length=1, max_length=64)
    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")


class BreachScope(BaseModel):
    """Who may be affected at a destination, counted two ways and then each person once
    (``counts`` says which count is which); ``subjects`` lists each with ``why`` (``sent``,
    ``held``), the field names sent (never values) and since when it is referenced."""

    destination: str
    people: int = Field(description="Everyone below, each person once (sent or held).")
    people_sent: int = Field(description="People privasync delivered something to it in "
                             "the window.")
    people_held: int = Field(description="People it holds according to privasync's stored "
                             "references there, known before the window's end.")
    counts: dict[str, str]
    fields: list[str]
    identifiers_sent: list[str]
    subjects: list[dict[str, Any]]


def create_request(call: Call[views.Evidence]) -> Accepted:
    body = call.body(CreateRequest)
    stored = subject_requests.create(call.uses, kind=body.kind, email=body.email,
                                   received=body.received_at,
                                   identity_verified=body.identity == "verified",
                                   fields=body.fields, actor=call.principal.actor)
    return Accepted(id=stored.request_id, applied=stored.applied)


def list_requests(call: Call[views.Evidence]) -> RequestList:
    q = call.query(ListQuery)
    with reader(call.uses.engine).connect() as conn:
        found = rq.listing(conn, call.now, kind=q.kind.value if q.kind else None,
                           status=q.status, overdue=q.overdue,
                           due_within=timedelta(days=q.due_within_days)
                           if q.due_within_days is not None else None)
    return RequestList(requests=[RequestView(**subject_requests.summary(r, call.now))
                                 for r in found])


def get_request(call: Call[views.Evidence]) -> RequestView:
    return RequestView(**evidence.story(call.uses, call.path["request_id"]))


def _step(call: Call[views.Evidence], step: RequestStep, **options: Any) -> Accepted:
    stored = subject_requests.act(call.uses, call.path["request_id"], step,
                                actor=call.principal.actor, **options)
    return Accepted(id=stored.request_id, applied=stored.applied)


def verify_identity(call: Call[views.Evidence]) -> Accepted:
    return _step(call, RequestStep.VERIFY_IDENTITY)


def extend_request(call: Call[views.Evidence]) -> Accepted:
    body = call.body(Extend)
    return _step(call, RequestStep.EXTEND, months=body.months, reason=body.reason)


def reject_request(call: Call[views.Evidence]) -> Accepted:
    return _step(call, RequestStep.REJECT, reason=call.body(Reason).reason)


def not_applicable(call: Call[views.Evidence]) -> Accepted:
    return _step(call, RequestStep.NOT_APPLICABLE, destination=call.path["destination"],
                 reason=call.body(Reason).reason)


def review_request(call: Call[views.Evidence]) -> Accepted:
    body = call.body(Review)
    records = tuple((r, INCLUDE) for r in body.include) + tuple(
        (r, EXCLUDE) for r in body.exclude)
    return _step(call, RequestStep.REVIEW, reason=body.reason, records=records)


def retry_request(call: Call[views.Evidence]) -> Accepted:
    return _step(call, RequestStep.RETRY, destination=call.body(Retry).destination)


def request_evidence(call: Call[views.Evidence]) -> Evidence:
    return Evidence(**evidence.evidence(call.uses, call.path["request_id"]))


def request_export(call: Call[views.Evidence]) -> access_bundle.AccessBundle:
    return access_bundle.bundle(call.uses, call.path["request_id"])


def breach_scope(call: Call[views.Evidence]) -> BreachScope:
    q = call.query(BreachQuery)
    try:
        c = call.uses
        found = breach.breach_scope(c.engine, c.mappings, c.every_destination(),
                                    q.destination, q.start, q.end)
    except breach.UnknownDestination as exc:
        raise ValidationFailed([FieldProblem(field="destination", problem=str(exc))]) from None
    except ValueError as exc:
        from core.errors import BadInput

        raise BadInput(str(exc)) from None
    return BreachScope(**{k: found[k] for k in BreachScope.model_fields})


_ID = "/requests/{request_id}"
OPERATIONS = (
    Operation("POST", "/requests", "Record a data-subject request", "requests:write",
              create_request, response=Accepted, body=CreateRequest, status=201,
              errors=(409,), tag="requests"),
    Operation("GET", "/requests", "Requests, the soonest due first", "requests:read",
              list_requests, response=RequestList, query=ListQuery, tag="requests"),
    Operation("GET", _ID, "A request's whole story, with times and receipts",
              "requests:read", get_request, response=RequestView, errors=(404,),
              tag="requests"),
    Operation("POST", _ID + "/verify-identity", "The identity is verified: the clock runs",
              "requests:write", verify_identity, response=Accepted, errors=(404, 409),
              tag="requests"),
    Operation("POST", _ID + "/extend", "Extend once by 1 or 2 months, with a reason",
              "requests:write", extend_request, response=Accepted, body=Extend,
              errors=(404, 409), tag="requests"),
    Operation("POST", _ID + "/reject", "Refuse, with a reason the person is told",
              "requests:write", reject_request, response=Accepted, body=Reason,
              errors=(404, 409), tag="requests"),
    Operation("POST", _ID + "/destinations/{destination}/not-applicable",
              "A destination does not apply, with the admin's reason", "requests:write",
              not_applicable, response=Accepted, body=Reason, errors=(404, 409),
              tag="requests"),
    Operation("POST", _ID + "/review", "Include or exclude records held for review, "
              "with a reason", "requests:write", review_request, response=Accepted,
              body=Review, errors=(404, 409), tag="requests",
              description="Only records the request still holds for review (its "
              "destinations' `held_for_review`) can be decided, each once; an included "
              "record joins the access bundle (`/export`), an excluded one is dropped. "
              "Refused (409, nothing stored) for a record not held, one decided already, "
              "a rejected request, or one whose gathered answer is no longer kept. While "
              "any record is held its destination is `awaiting_review` and the request "
              "stays open (its deadline runs on); the decision on the last one "
              "completes it."),
    Operation("POST", _ID + "/retry", "Try failed destinations again", "requests:write",
              retry_request, response=Accepted, body=Retry, errors=(404, 409),
              tag="requests"),
    Operation("GET", _ID + "/evidence", "The evidence pack: entries, hashes, chain segment",
              "requests:read", request_evidence, response=Evidence, errors=(404,),
              tag="requests"),
    Operation("GET", _ID + "/export", "The access bundle", "requests:read", request_export,
              response=access_bundle.AccessBundle, errors=(404,), tag="requests",
              description=f"It validates against the published JSON Schema, `GET "
              f"/api/v1{access_bundle.SCHEMA_PATH}` (`$id` {access_bundle.SCHEMA_ID}), the same as "
              "the file `privasync requests export` writes."),
    Operation("GET", "/breach-scope", "Who a destination holds or was sent, and which fields",
              "audit:read", breach_scope, response=BreachScope, query=BreachQuery,
              tag="audit"),
)
