"""The partner's own reading of privasync's signature scheme, from the README alone.

Written apart from ``connectors.signing`` on purpose: an emulator that
called our verifier would accept whatever our signer produced, mistakes included.
Scheme: ``X-Privasync-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>``
(several comma-separated during a secret rotation), ``X-Privasync-Timestamp``
in unix seconds within 300 s of now, ``X-Privasync-Event-Id`` equal to the
``event_id`` inside the signed JSON body.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping

TIMESTAMP = "X-Privasync-Timestamp"
EVENT_ID = "X-Privasync-Event-Id"
SIGNATURE = "X-Privasync-Signature"
WINDOW_SECONDS = 300


class Refused(Exception):  # noqa: N818 - a partner's word for it
    """The delivery is not authentic; the message says which check failed."""


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + digest.hexdigest()


def signed_headers(secret: str, event_id: str, body: bytes, now: float) -> dict[str, str]:
    """What a partner sends with a signed body (its acknowledgements)."""
    timestamp = str(int(now))
    return {"Content-Type": "application/json", TIMESTAMP: timestamp, EVENT_ID: event_id,
            SIGNATURE: signature(secret, timestamp, body)}


def _get(headers: Mapping[str, str], name: str) -> str:
    lowered = {k.lower(): v for k, v in headers.items()}
    value = lowered.get(name.lower(), "").strip()
    if not value:
        raise Refused(f"no {name}")
    return value


def check(secret: str, headers: Mapping[str, str], body: bytes, now: float) -> str:
    """The delivery's event id, if it is authentic and fresh; Refused otherwise."""
    timestamp = _get(headers, TIMESTAMP)
    offered = [s.strip() for s in _get(headers, SIGNATURE).split(",")]
    event_id = _get(headers, EVENT_ID)
    if not timestamp.isdigit() or abs(now - int(timestamp)) > WINDOW_SECONDS:
        raise Refused("timestamp missing or outside the window")
    expected = signature(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, s) for s in offered if s.isascii()):
        raise Refused("signature does not match")
    try:
        inside = json.loads(body)
    except ValueError as exc:
        raise Refused("signed body is not JSON") from exc
    if not isinstance(inside, dict) or inside.get("event_id") != event_id:
        raise Refused("event id header differs from the body's")
    return event_id
