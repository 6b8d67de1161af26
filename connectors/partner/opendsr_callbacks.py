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
from datetime import datetime
from typing import Any, TypeGuard

from core import strict_json
from core.errors import BadInput
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


def _document(body: bytes) -> dict[str, Any]:
    document = strict_json.loads(body, "callback", _NAMED)
    if not isinstance(document, dict):
        raise BadInput("callback must be a JSON object")
    return document


def _check_optional(document: dict[str, Any]) -> None:
    expected = document.get("expected_completion_time")
    if expected is not None and rfc3339(expected) is None:
        raise BadInput("expected_completion_time: must be an RFC 3339 time with its zone")
    count = document.get("results_count")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool)
                              or count < 0):
        raise BadInput("results_count: must be a whole number, zero or more")
    if document.get("results_url") is not None and not isinstance(document["results_url"], str):
        raise BadInput("results_url: must be a string")


def parse_callback(destination: str, controller_id: str, callback_url: str, body: bytes,
                   received_at: datetime) -> list[RequestAcknowledged]:
    """A verified callback as its acknowledgement; [] while the request is still open.

    Raises BadInput naming the field and the rule.
    """
    require_aware(received_at, "received_at")
    document = _document(body)
    if document.get("controller_id") != controller_id:
        raise BadInput("controller_id: required, and must be this controller's id")
    if document.get("status_callback_url") != callback_url:
        raise BadInput("status_callback_url: required, and must be this endpoint's URL")
    request_id = document.get("subject_request_id")
    if not is_request_id(request_id):
        raise BadInput("subject_request_id: required, a lowercase UUID v4")
    status = document.get("request_status")
    if status not in STATUSES:
        raise BadInput(f"request_status: required, one of {', '.join(STATUSES)}")
    _check_optional(document)
    if status in OPEN_STATUSES:
        return []
    meta = EventMeta(source=destination, source_event_id=f"{request_id}:{status}",
                     occurred_at=received_at, kind=f"opendsr.{status}")
    return [RequestAcknowledged(meta=meta, destination=destination, request_id=request_id,
                                completed=status == "completed",
                                detail=f"OpenDSR request_status {status}",
                                proof=hashlib.sha256(body).hexdigest())]
