"""How privasync signs every webhook it sends, and how a receiver checks it.

One scheme for all outgoing POSTs (partner updates, request notices), defined
once so a receiver verifies them all with the same code and a change reaches
every sender. The signed string is ``timestamp + "." + body``: the timestamp
bounds replays in time, the receiver's event-id dedupe catches replays inside
that window. The event id travels in a header for convenience but is only
trusted when it equals the ``event_id`` inside the signed body.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Collection, Mapping
from datetime import datetime

from core import strict_json
from core.errors import Unauthenticated
from core.model import require_aware

TIMESTAMP_HEADER = "X-Privasync-Timestamp"
EVENT_ID_HEADER = "X-Privasync-Event-Id"
SIGNATURE_HEADER = "X-Privasync-Signature"
SCHEME = "v1"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``"v1=" + hex(HMAC-SHA256(secret, timestamp + "." + body))``."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body,
                   hashlib.sha256)
    return f"{SCHEME}={mac.hexdigest()}"


def _header(headers: Mapping[str, str], name: str) -> str:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value.strip()
    raise Unauthenticated(f"missing {name} header")


def _check_fresh(timestamp: str, now: datetime, tolerance_seconds: int) -> None:
    if not timestamp.isdigit():
        raise Unauthenticated(f"{TIMESTAMP_HEADER} is not unix seconds")
    age = require_aware(now, "now").timestamp() - int(timestamp)
    if abs(age) > tolerance_seconds:
        raise Unauthenticated(f"{TIMESTAMP_HEADER} is outside the {tolerance_seconds} s window")


def _body_event_id(body: bytes, fields: Collection[str]) -> object:
    """The signed body's ``event_id``: Unauthenticated when the body is no JSON (the event
    id cannot be checked); BadInput when it is JSON beyond core.strict_json's bounds."""
    try:
        document = strict_json.loads(body, "signed body", fields)
    except strict_json.NotJson as exc:
        raise Unauthenticated("signed body is not JSON") from exc
    return document.get("event_id") if isinstance(document, dict) else None


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: datetime,
           tolerance_seconds: int = 300, fields: Collection[str] = ("event_id",)) -> str:
    """Check a delivery's signature and freshness; return its event id.

    Raises Unauthenticated when a header is missing, the timestamp is more than
    ``tolerance_seconds`` away from ``now``, no signature matches, or the event
    id header differs from the signed body's ``event_id`` (or the body is no JSON);
    BadInput when the signed body is JSON beyond core.strict_json's bounds (naming the
    place by the keys in ``fields``).
    """
    timestamp = _header(headers, TIMESTAMP_HEADER)
    signatures = _header(headers, SIGNATURE_HEADER)
    event_id = _header(headers, EVENT_ID_HEADER)
    _check_fresh(timestamp, now, tolerance_seconds)
    expected = sign(secret, timestamp, body)
    candidates = [s.strip() for s in signatures.split(",")]
    if not any(hmac.compare_digest(expected.encode(), c.encode("utf-8", "replace"))
               for c in candidates):
        raise Unauthenticated(f"{SIGNATURE_HEADER} does not match")
    if not event_id or _body_event_id(body, fields) != event_id:
        raise Unauthenticated(f"{EVENT_ID_HEADER} does not match the signed body")
    return event_id
