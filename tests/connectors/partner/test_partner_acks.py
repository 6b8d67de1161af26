"""A partner's acknowledgement is believed only signed, fresh and in its exact schema."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.partner import PartnerConnector
from core.errors import BadInput, Unauthenticated
from core.mappings import Partner
from privasync.emulators.partner import signed_headers
from tests.connectors.partner.conftest import KEYS

SECRET = "partner-secret"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PERSONAL = "ada.lovelace@example.com"


def connector(secret: str = SECRET) -> PartnerConnector:
    policy = Partner(url="http://127.0.0.1:1/unused", secret_setting="S", purposes=("offers",),
                     agreement="DPA-1")
    return PartnerConnector(name="contact_centre", partner=policy, url="http://127.0.0.1:1/x",
                            secret=secret, keys=KEYS)


def ack(**overrides: Any) -> bytes:
    document = {"event_id": "ack-1", "request_id": "req-1", "status": "completed",
                "detail": "erased"} | overrides
    return json.dumps({k: v for k, v in document.items() if v is not None}).encode()


def signed(body: bytes, *, secret: str = SECRET, at: datetime = NOW,
           event_id: str = "ack-1") -> dict[str, str]:
    """Headers made by the partner emulator's own signing code, not ours."""
    return signed_headers(secret, event_id, body, at.timestamp())


def test_a_signed_ack_yields_its_event_id() -> None:
    assert connector().verify_ack(signed(ack()), ack(), NOW + timedelta(seconds=299)) == "ack-1"


@pytest.mark.parametrize(("case", "headers", "body"), [
    ("wrong secret", signed(ack(), secret="guess"), ack()),
    ("stale", signed(ack(), at=NOW - timedelta(seconds=301)), ack()),
    ("from the future", signed(ack(), at=NOW + timedelta(seconds=301)), ack()),
    ("event id not the body's", signed(ack(), event_id="ack-2"), ack()),
    ("body altered after signing", signed(ack()), ack(status="rejected")),
    ("forged hex", {**signed(ack()), "X-Privasync-Signature": "v1=" + "0" * 64}, ack()),
    ("no signature", {k: v for k, v in signed(ack()).items()
                      if k != "X-Privasync-Signature"}, ack()),
    ("no timestamp", {k: v for k, v in signed(ack()).items()
                      if k != "X-Privasync-Timestamp"}, ack()),
])
def test_a_forged_stale_or_mismatched_ack_is_unauthenticated(
        case: str, headers: dict[str, str], body: bytes) -> None:
    with pytest.raises(Unauthenticated):
        connector().verify_ack(headers, body, NOW)


def test_an_ack_parses_into_the_acknowledgement_of_our_request() -> None:
    body = ack(detail="x" * 600)
    [event] = connector().parse_ack(body, NOW)
    assert (event.destination, event.request_id, event.completed) == (
        "partner:contact_centre", "req-1", True)
    assert event.detail == "x" * 500
    assert event.proof == hashlib.sha256(body).hexdigest()
    assert (event.meta.source, event.meta.source_event_id, event.meta.occurred_at) == (
        "partner:contact_centre", "ack-1", NOW)


def test_a_completion_needs_no_detail_but_a_rejection_must_say_why() -> None:
    [done] = connector().parse_ack(ack(detail=None), NOW)
    assert (done.completed, done.detail) == (True, "")
    with pytest.raises(BadInput, match="detail: required when status is rejected"):
        connector().parse_ack(ack(status="rejected", detail=" "), NOW)


@pytest.mark.parametrize(("body", "names"), [
    (ack(event_id=None), "event_id: required"),
    (ack(request_id=None), "request_id: required"),
    (ack(status=None), "status: required"),
    (ack(status=PERSONAL), "status: must be one of completed, rejected"),
    (ack(request_id=["req-1"]), "request_id: must be a non-blank string"),
    (ack(event_id="   "), "event_id: must be a non-blank string"),
    (ack(request_id=PERSONAL * 10), "request_id: must be a non-blank string of at most 200"),
    (ack(detail={"note": PERSONAL}), "detail: must be a string"),
    (ack(subject_email=PERSONAL), "fields outside its schema"),
    (json.dumps([PERSONAL]).encode(), "must be a JSON object"),
    (PERSONAL.encode(), "not JSON"),
    (b"[" * 5000 + b"]" * 5000, "nests deeper than 16 levels"),
    (ack(detail="Zeph\ud800"), "the value at detail is not valid UTF-8"),
    (ack(event_id="ack\u0000-1"), "the value at event_id holds a NUL character"),
])
def test_a_malformed_ack_is_refused_naming_the_field_never_the_value(
        body: bytes, names: str) -> None:
    with pytest.raises(BadInput) as refused:
        connector().parse_ack(body, NOW)
    assert names in str(refused.value)
    assert PERSONAL not in str(refused.value)


def test_a_naive_received_at_is_refused() -> None:
    with pytest.raises(BadInput):
        connector().parse_ack(ack(), datetime(2026, 3, 1, 12, 0))  # noqa: DTZ001


def test_the_readmes_examples_are_signed_as_it_says() -> None:
    """A partner's developer builds from the README: its examples must verify."""
    import re
    from pathlib import Path

    readme = (Path(__file__).parents[3] / "README.md").read_text()
    blocks = re.findall(r"```http\n(POST .*?)\n```", readme, re.S)
    examples = [b for b in blocks if "X-Privasync-Signature" in b]
    assert len(examples) == 2
    for block in examples:
        head, body = block.split("\n\n", 1)
        headers = dict(line.split(": ", 1) for line in head.splitlines()[1:])
        at = datetime.fromtimestamp(int(headers["X-Privasync-Timestamp"]), UTC)
        event_id = connector("example-secret").verify_ack(headers, body.encode(), at)
        assert event_id == headers["X-Privasync-Event-Id"]
    [event] = connector().parse_ack(body.encode(), NOW)
    assert (event.request_id, event.completed) == ("3c0d7f7e-0a51-4b1e-9f0e-2d1f6b5c9a01", True)


def test_an_ack_from_the_inbox_carries_the_body_and_headers_it_was_signed_with() -> None:
    from connectors.partner import signed as envelope

    body = ack()
    headers = {"x-privasync-signature": "v1=abc", "x-privasync-timestamp": "1",
               "x-privasync-event-id": "ack-1", "cookie": "not kept"}
    parse = envelope.parsing(connector().parse_message)
    [wrapped] = parse(envelope.wrap(body, headers, envelope.OWN_HEADERS), NOW)
    assert wrapped.signed_body == body  # type: ignore[union-attr]
    assert dict(wrapped.signed_headers) == {  # type: ignore[union-attr]
        "X-Privasync-Signature": "v1=abc", "X-Privasync-Timestamp": "1",
        "X-Privasync-Event-Id": "ack-1"}
    [bare] = parse(body, NOW)  # a row stored before the envelope existed
    assert bare.signed_body == b"" and bare.proof == wrapped.proof  # type: ignore[union-attr]
