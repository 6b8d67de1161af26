"""A partner's acknowledgement of an erasure request, read strictly.

The partner POSTs, signed like our own deliveries (``signing.verify``), one JSON
object: ``event_id`` (its own, unique per acknowledgement), ``request_id`` (ours,
echoed), ``status`` (``completed`` or ``rejected``) and ``detail`` (its short
words; required for a rejection, which must say why). Anything else is refused,
so a misspelt field cannot pass as absent. Errors name the field and the rule,
never the value; the hash of the raw signed body is the receipt kept as proof.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import ErrorDetails, PydanticCustomError

from connectors.inbound import field_of, parsed, required
from core.model import EventMeta, RequestAcknowledged, require_aware

FIELDS = ("detail", "event_id", "request_id", "status")
STATUSES = ("completed", "rejected")
DETAIL_LIMIT = 500
ID_LIMIT = 200


def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank", "blank")
    return value


_Identifier = Annotated[str, BeforeValidator(required), Field(max_length=ID_LIMIT),
                        AfterValidator(_not_blank)]


class Acknowledgement(BaseModel):
    """The partner protocol's acknowledgement: ours to define, so nothing else is allowed."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    event_id: _Identifier
    request_id: _Identifier
    status: Annotated[Literal["completed", "rejected"], BeforeValidator(required)]
    detail: str = ""

    @model_validator(mode="after")
    def _rejection_says_why(self) -> Self:
        if self.status == "rejected" and not self.detail.strip():
            raise PydanticCustomError("detail_required", "say why")
        return self


_ORDER = ("event_id", "request_id", "status", "detail")


def _rank(problem: ErrorDetails) -> tuple[int, int, str]:
    """Which problem to name first: the order the rules were always checked in."""
    name, kind = field_of(problem), problem["type"]
    if kind == "model_type":
        return (0, 0, "acknowledgement must be a JSON object")
    if kind == "extra_forbidden":
        return (1, 0, "acknowledgement has fields outside its schema "
                      f"(allowed: {', '.join(FIELDS)})")
    if kind == "detail_required":
        return (3, 0, "detail: required when status is rejected (say why)")
    if kind == "missing":
        return (2, _ORDER.index(name), f"{name}: required")
    rule = {"status": f"must be one of {', '.join(STATUSES)}", "detail": "must be a string"}
    return (2, _ORDER.index(name), f"{name}: " + rule.get(
        name, f"must be a non-blank string of at most {ID_LIMIT} characters"))


def _reason(problems: Sequence[ErrorDetails]) -> str:
    return min(_rank(p) for p in problems)[2]


def parse_ack(destination: str, body: bytes, received_at: datetime) -> list[RequestAcknowledged]:
    """One verified acknowledgement from ``destination`` (``partner:NAME``) as its event.

    ``meta.source_event_id`` is the partner's event id; ``occurred_at`` is when we
    received it (the partner's own clock is not evidence). Raises BadInput naming
    the field and the rule.
    """
    require_aware(received_at, "received_at")
    ack = parsed(body, "acknowledgement", FIELDS, Acknowledgement, _reason)
    meta = EventMeta(source=destination, source_event_id=ack.event_id,
                     occurred_at=received_at, kind="partner.ack")
    return [RequestAcknowledged(meta=meta, destination=destination, request_id=ack.request_id,
                                completed=ack.status == "completed",
                                detail=ack.detail[:DETAIL_LIMIT],
                                proof=hashlib.sha256(body).hexdigest())]
