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
from datetime import datetime
from typing import Any

from core import strict_json
from core.errors import BadInput
from core.model import EventMeta, RequestKind, RequestReceived, SubjectHint, require_aware

FIELDS = ("email", "event_id", "identity_verified", "kind", "request_id")
KINDS = ("erasure", "access", "portability", "objection")


def _field(document: dict[str, Any], name: str, limit: int = 254) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise BadInput(f"{name}: required, a non-blank string of at most {limit} characters")
    return value.strip()


def parse_ask(destination: str, body: bytes, received_at: datetime) -> list[RequestReceived]:
    """The verified request as its canonical event. Raises BadInput."""
    require_aware(received_at, "received_at")
    document = strict_json.loads(body, "request", FIELDS)
    if not isinstance(document, dict) or set(document) - set(FIELDS):
        raise BadInput(f"request must be a JSON object with only: {', '.join(FIELDS)}")
    kind = _field(document, "kind")
    if kind not in KINDS:
        raise BadInput(f"kind: must be one of {', '.join(KINDS)}")
    email = _field(document, "email")
    if "@" not in email or any(c.isspace() for c in email):
        raise BadInput("email: not an e-mail address")
    try:
        request_id = str(uuid.UUID(_field(document, "request_id", 36)))
    except ValueError:
        raise BadInput("request_id: must be a UUID") from None
    verified = document.get("identity_verified", False)
    if not isinstance(verified, bool):
        raise BadInput("identity_verified: must be true or false")
    meta = EventMeta(destination, _field(document, "event_id", 200), received_at,
                     kind=f"request.{kind}")
    return [RequestReceived(meta, SubjectHint(email=email), RequestKind(kind), request_id,
                            verified, actor=destination)]
