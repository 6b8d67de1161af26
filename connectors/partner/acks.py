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
from datetime import datetime
from typing import Any

from core import strict_json
from core.errors import BadInput
from core.model import EventMeta, RequestAcknowledged, require_aware

FIELDS = ("detail", "event_id", "request_id", "status")
STATUSES = ("completed", "rejected")
DETAIL_LIMIT = 500
ID_LIMIT = 200


def _document(body: bytes) -> dict[str, Any]:
    document = strict_json.loads(body, "acknowledgement", FIELDS)
    if not isinstance(document, dict):
        raise BadInput("acknowledgement must be a JSON object")
    if set(document) - set(FIELDS):
        raise BadInput(f"acknowledgement has fields outside its schema "
                       f"(allowed: {', '.join(FIELDS)})")
    return document


def _identifier(document: dict[str, Any], name: str) -> str:
    value = document.get(name)
    if value is None:
        raise BadInput(f"{name}: required")
    if not isinstance(value, str) or not value.strip() or len(value) > ID_LIMIT:
        raise BadInput(f"{name}: must be a non-blank string of at most {ID_LIMIT} characters")
    return value


def _status(document: dict[str, Any]) -> str:
    status = document.get("status")
    if status is None:
        raise BadInput("status: required")
    if status not in STATUSES:
        raise BadInput(f"status: must be one of {', '.join(STATUSES)}")
    return str(status)


def _detail(document: dict[str, Any], status: str) -> str:
    detail = document.get("detail", "")
    if not isinstance(detail, str):
        raise BadInput("detail: must be a string")
    if status == "rejected" and not detail.strip():
        raise BadInput("detail: required when status is rejected (say why)")
    return detail[:DETAIL_LIMIT]


def parse_ack(destination: str, body: bytes, received_at: datetime) -> list[RequestAcknowledged]:
    """One verified acknowledgement from ``destination`` (``partner:NAME``) as its event.

    ``meta.source_event_id`` is the partner's event id; ``occurred_at`` is when we
    received it (the partner's own clock is not evidence). Raises BadInput naming
    the field and the rule.
    """
    require_aware(received_at, "received_at")
    document = _document(body)
    event_id = _identifier(document, "event_id")
    request_id = _identifier(document, "request_id")
    status = _status(document)
    detail = _detail(document, status)
    meta = EventMeta(source=destination, source_event_id=event_id, occurred_at=received_at,
                     kind="partner.ack")
    return [RequestAcknowledged(meta=meta, destination=destination, request_id=request_id,
                                completed=status == "completed", detail=detail,
                                proof=hashlib.sha256(body).hexdigest())]
