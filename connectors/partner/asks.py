"""A partner passing on a data-subject request a person made to it (Art. 19: the person
may ask any party; the controller answers for all), read strictly.

Signed like acknowledgements. One JSON object: ``event_id`` (the partner's, unique),
``request_id`` (a UUID the partner chooses, to follow it up), ``kind`` (erasure,
access, portability, objection), ``email``, and ``identity_verified`` (whether the
partner checked who asked; default false: the clock stops until privasync's own
staff verify). Errors name the field and the rule, never the value.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import ErrorDetails, PydanticCustomError

from connectors.inbound import field_of, parsed
from core.model import EventMeta, RequestKind, RequestReceived, SubjectHint, require_aware

FIELDS = ("email", "event_id", "identity_verified", "kind", "request_id")
KINDS = ("erasure", "access", "portability", "objection")


def _stripped(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank", "blank")
    return value.strip()


def _kind(value: str) -> str:
    if value not in KINDS:
        raise PydanticCustomError("unknown_kind", "unknown kind")
    return value


def _email(value: str) -> str:
    if "@" not in value or any(c.isspace() for c in value):
        raise PydanticCustomError("not_email", "not an e-mail address")
    return value


def _uuid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise PydanticCustomError("not_uuid", "not a UUID") from None



class PassedOnRequest(BaseModel):
    """The partner protocol's request: ours to define, so nothing else is allowed."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    kind: Annotated[str, Field(max_length=254), AfterValidator(_stripped),
                    AfterValidator(_kind)]
    email: Annotated[str, Field(max_length=254), AfterValidator(_stripped),
                     AfterValidator(_email)]
    request_id: Annotated[str, Field(max_length=36), AfterValidator(_stripped),
                          AfterValidator(_uuid)]
    identity_verified: bool = False
    event_id: Annotated[str, Field(max_length=200), AfterValidator(_stripped)]


_ORDER = ("kind", "email", "request_id", "identity_verified", "event_id")
_LIMITS = {"kind": 254, "email": 254, "request_id": 36, "event_id": 200}
_RULES = {"unknown_kind": f"must be one of {', '.join(KINDS)}",
          "not_email": "not an e-mail address", "not_uuid": "must be a UUID"}


def _rank(problem: ErrorDetails) -> tuple[int, int, str]:
    """Which problem to name first: the order the rules were always checked in."""
    name, kind = field_of(problem), problem["type"]
    if kind in ("model_type", "extra_forbidden"):
        return (0, 0, f"request must be a JSON object with only: {', '.join(FIELDS)}")
    if name == "identity_verified":
        return (1, _ORDER.index(name), "identity_verified: must be true or false")
    rule = _RULES.get(kind, f"required, a non-blank string of at most {_LIMITS[name]} "
                            "characters")
    return (1, _ORDER.index(name), f"{name}: {rule}")


def _reason(problems: Sequence[ErrorDetails]) -> str:
    return min(_rank(p) for p in problems)[2]


def parse_ask(destination: str, body: bytes, received_at: datetime) -> list[RequestReceived]:
    """The verified request as its canonical event. Raises BadInput."""
    require_aware(received_at, "received_at")
    ask = parsed(body, "request", FIELDS, PassedOnRequest, _reason)
    meta = EventMeta(destination, ask.event_id, received_at, kind=f"request.{ask.kind}")
    return [RequestReceived(meta, SubjectHint(email=ask.email), RequestKind(ask.kind),
                            ask.request_id, ask.identity_verified, actor=destination)]
