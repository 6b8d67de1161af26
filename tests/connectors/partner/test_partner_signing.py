"""Partner deliveries are HMAC-signed; anything altered, forged or stale is refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from connectors.partner import EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify
from core.errors import Unauthenticated

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SECRET = "s3cret"
BODY = json.dumps({"event_id": "e-1", "subjects": []}).encode()


def headers(body: bytes = BODY, secret: str = SECRET, at: datetime = NOW,
            event_id: str = "e-1") -> dict[str, str]:
    timestamp = str(int(at.timestamp()))
    return {TIMESTAMP_HEADER: timestamp, EVENT_ID_HEADER: event_id,
            SIGNATURE_HEADER: sign(secret, timestamp, body)}


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    expected = hmac.new(b"k", b"1700000000.{}", hashlib.sha256).hexdigest()
    assert sign("k", "1700000000", b"{}") == f"v1={expected}"


def test_a_signed_delivery_verifies_and_yields_its_event_id() -> None:
    assert verify(SECRET, headers(), BODY, NOW) == "e-1"


def test_header_names_are_matched_case_insensitively() -> None:
    lowered = {k.lower(): v for k, v in headers().items()}
    assert verify(SECRET, lowered, BODY, NOW + timedelta(seconds=299)) == "e-1"


@pytest.mark.parametrize(("case", "hdrs", "body", "now"), [
    ("tampered body", headers(), BODY.replace(b"e-1", b"e-2"), NOW),
    ("wrong secret", headers(secret="other"), BODY, NOW),
    ("stale", headers(at=NOW - timedelta(minutes=6)), BODY, NOW),
    ("from the future", headers(at=NOW + timedelta(minutes=6)), BODY, NOW),
    ("event id swapped", headers(event_id="e-9"), BODY, NOW),
    ("missing signature", {k: v for k, v in headers().items() if k != SIGNATURE_HEADER}, BODY,
     NOW),
    ("timestamp not numeric", {**headers(), TIMESTAMP_HEADER: "yesterday"}, BODY, NOW),
    ("not json", headers(body=b"hello"), b"hello", NOW),
])
def test_an_altered_forged_or_stale_delivery_is_unauthenticated(
        case: str, hdrs: dict[str, str], body: bytes, now: datetime) -> None:
    with pytest.raises(Unauthenticated):
        verify(SECRET, hdrs, body, now)


def test_a_rotated_secret_can_be_accepted_alongside_the_old_one() -> None:
    old = headers(secret="old")[SIGNATURE_HEADER]
    new = headers()[SIGNATURE_HEADER]
    both = {**headers(), SIGNATURE_HEADER: f"{old}, {new}"}
    assert verify(SECRET, both, BODY, NOW) == "e-1"
