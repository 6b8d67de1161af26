"""An OpenDSR processor's status callback, once its signature has been verified.

A callback comes on every state change and may come more than once. Only an end
state is an acknowledgement: ``completed`` (erased) or ``cancelled`` (not
erased); ``pending`` and ``in_progress`` change nothing we must record. The
dedupe key is the request id and its status, so a retried callback lands once.
The callback must be for us: our ``controller_id``, our callback URL (the
spec's last check), a request id of the form we send. Errors name the field
and the rule, never the value.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Literal, TypeGuard

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo
from pydantic_core import ErrorDetails, PydanticCustomError

from connectors.inbound import field_of, parsed
from core.model import EventMeta, RequestAcknowledged, require_aware

STATUSES = ("pending", "in_progress", "completed", "cancelled")
OPEN_STATUSES = ("pending", "in_progress")
_NAMED = ("controller_id", "status_callback_url", "subject_request_id", "request_status",
          "expected_completion_time", "results_count", "results_url", "api_version")


def is_request_id(value: object) -> TypeGuard[str]:
    """A lowercase UUID v4: the only ``subject_request_id`` OpenDSR allows."""
    if not isinstance(value, str):
        return False
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return False
    return parsed.version == 4 and str(parsed) == value


def rfc3339(value: object) -> datetime | None:
    """An RFC 3339 timestamp with its zone, or None if ``value`` is not one."""
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo is not None and when.utcoffset() is not None else None


def _ours(name: str) -> AfterValidator:
    """The value must be the one this controller expects (``context[name]``)."""
    def check(value: str, info: ValidationInfo) -> str:
        if info.context is None or value != info.context[name]:
            raise PydanticCustomError("not_ours", "not ours")
        return value
    return AfterValidator(check)


def _request_id(value: str) -> str:
    if not is_request_id(value):
        raise PydanticCustomError("not_request_id", "not a lowercase UUID v4")
    return value


def _zoned(value: str) -> str:
    if rfc3339(value) is None:
        raise PydanticCustomError("not_rfc3339", "not an RFC 3339 time with its zone")
    return value


class Callback(BaseModel):
    """An OpenDSR status callback (§8; VENDOR_APIS E). Processors may add fields (an
    ``api_version``, extensions), so unknown ones are ignored, as they always were."""

    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    controller_id: Annotated[str, _ours("controller_id")]
    status_callback_url: Annotated[str, _ours("callback_url")]
    subject_request_id: Annotated[str, AfterValidator(_request_id)]
    request_status: Literal["pending", "in_progress", "completed", "cancelled"]
    expected_completion_time: Annotated[str, AfterValidator(_zoned)] | None = None
    results_count: Annotated[int, Field(ge=0)] | None = None
    results_url: str | None = None


_RULES = {
    "controller_id": "required, and must be this controller's id",
    "status_callback_url": "required, and must be this endpoint's URL",
    "subject_request_id": "required, a lowercase UUID v4",
    "request_status": f"required, one of {', '.join(STATUSES)}",
    "expected_completion_time": "must be an RFC 3339 time with its zone",
    "results_count": "must be a whole number, zero or more",
    "results_url": "must be a string",
}
_ORDER = tuple(_RULES)


def _reason(problems: Sequence[ErrorDetails]) -> str:
    """The first problem in the order the rules were always checked in."""
    if any(p["type"] == "model_type" for p in problems):
        return "callback must be a JSON object"
    name = min((field_of(p) for p in problems), key=_ORDER.index)
    return f"{name}: {_RULES[name]}"


def parse_callback(destination: str, controller_id: str, callback_url: str, body: bytes,
                   received_at: datetime) -> list[RequestAcknowledged]:
    """A verified callback as its acknowledgement; [] while the request is still open.

    Raises BadInput naming the field and the rule.
    """
    require_aware(received_at, "received_at")
    callback = parsed(body, "callback", _NAMED, Callback, _reason,
                      context={"controller_id": controller_id, "callback_url": callback_url})
    request_id, status = callback.subject_request_id, callback.request_status
    if status in OPEN_STATUSES:
        return []
    meta = EventMeta(source=destination, source_event_id=f"{request_id}:{status}",
                     occurred_at=received_at, kind=f"opendsr.{status}")
    return [RequestAcknowledged(meta=meta, destination=destination, request_id=request_id,
                                completed=status == "completed",
                                detail=f"OpenDSR request_status {status}",
                                proof=hashlib.sha256(body).hexdigest())]
