"""What an attacker tried at the door (issue 9), each refused with a 4xx and a JSON reason
that names the field, never a 500, and nothing stored; on SQLite and PostgreSQL where
the database could be what breaks."""

from __future__ import annotations

import json
import time
from urllib.parse import quote

import pytest

from tests.api.door import (
    ACKS,
    ASKS,
    LIST_ID,
    Door,
    ack,
    ask,
    callback,
    hubspot_event,
)

NESTED = b"[" * 5000 + b"]" * 5000


def refused(response, status: int, *words: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    document = response.json()
    assert set(document) >= {"error", "reason"}, document
    for word in words:
        assert word in document["reason"], document


def nested_in(field: str, document: dict[str, object]) -> bytes:
    """``document`` with ``field`` holding arrays 5,000 deep (valid JSON, signed)."""
    text = json.dumps(document | {field: "@@"})
    return text.replace('"@@"', NESTED.decode()).encode()


def test_json_nested_5000_deep_is_400_on_every_json_route(door: Door):
    before = door.rows()
    token = door.token()
    admin = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    rows = door.rows()
    refused(door.hubspot(NESTED), 400, "nests deeper than 16")
    refused(door.hubspot(json.dumps([hubspot_event()]).encode()[:-1] + b"," + NESTED + b"]"),
            400, "nests deeper than 16")
    for path, document in ((ACKS, ack()), (ASKS, ask())):
        refused(door.partner(path, nested_in("detail", document),
                             event_id=str(document["event_id"])), 400, "nests deeper")
    refused(door.opendsr(nested_in("results", callback())), 400, "nests deeper")
    for path in ("/api/v1/requests", "/api/v1/tokens"):
        refused(door.client.post(path, content=NESTED, headers=admin), 400, "not valid JSON")
        refused(door.client.post(path, content=nested_in("name", {}), headers=admin), 400)
    assert door.rows() == rows and rows[:4] == before[:4]


def test_a_lone_surrogate_is_400_naming_the_field_on_both_backends(any_door: Door):
    before = any_door.rows()
    escaped = json.dumps([hubspot_event(propertyName="firstname", propertyValue="Zeph\ud800")])
    refused(any_door.hubspot(escaped.encode()), 400, "[0].propertyValue", "not valid UTF-8")
    raw = json.dumps([hubspot_event(propertyName="firstname", propertyValue="Zeph")]).encode()
    refused(any_door.hubspot(raw.replace(b"Zeph", b"Zeph\xed\xa0\x80")), 400,
            "[0].propertyValue")
    refused(any_door.hubspot(json.dumps([hubspot_event(changeSource="\udc00")]).encode()),
            400, "[0].changeSource")
    refused(any_door.partner(ASKS, ask(email="zeph\ud800@example.org")), 400, "email")
    refused(any_door.partner(ACKS, ack(detail="x\udfff")), 400, "detail")
    form = (f"type=profile&fired_at=2026-01-01 10:00:00&data[list_id]={LIST_ID}"
            "&data[email]=z@example.org&data[merges][FNAME]=").encode()
    refused(any_door.mailchimp(form + b"Zeph%ED%A0%80"), 400, "data[merges][FNAME]")
    refused(any_door.mailchimp(form + b"Zeph\xed\xa0\x80"), 400, "data[merges][FNAME]")
    assert any_door.rows() == before


def test_a_nul_character_is_400_on_both_backends(any_door: Door):
    """PostgreSQL refuses NUL in text: an event id holding one used to reach the inbox's key."""
    before = any_door.rows()
    event_id = "cc\u0000-1"
    refused(any_door.partner(ACKS, ack(event_id=event_id), event_id=event_id), 400,
            "event_id", "NUL")
    refused(any_door.hubspot(json.dumps([hubspot_event(propertyValue="tr\u0000ue")]).encode()),
            400, "propertyValue")
    assert any_door.rows() == before


@pytest.mark.parametrize("field", ["eventId", "objectId", "portalId", "subscriptionId",
                                   "primaryObjectId", "appId"])
def test_an_id_past_64_bits_is_400_on_both_backends(any_door: Door, field: str):
    """A 300-digit eventId overflowed the dedupe key's column on PostgreSQL (and passed on
    SQLite): HubSpot's ids are 64-bit, and so is every id let in."""
    before = any_door.rows()
    body = json.dumps([hubspot_event(**{field: int("9" * 300)})]).encode()
    refused(any_door.hubspot(body), 400, f"event 0: {field} must be an integer from 0")
    refused(any_door.hubspot(json.dumps([hubspot_event(**{field: 2**63})]).encode()), 400)
    assert any_door.rows() == before
    assert any_door.hubspot(json.dumps([hubspot_event(**{field: 2**63 - 1})]).encode()
                            ).status_code == 200


def test_partner_ids_are_bounded_on_both_backends(any_door: Door):
    before = any_door.rows()
    long_id = "e" * 201
    refused(any_door.partner(ACKS, ack(event_id=long_id), event_id=long_id), 400, "event_id")
    refused(any_door.partner(ASKS, ask(event_id=long_id), event_id=long_id), 400, "event_id")
    refused(any_door.partner(ASKS, ask(request_id="9" * 300)), 400, "request_id")
    refused(any_door.opendsr(callback(subject_request_id="9" * 300)), 400, "subject_request_id")
    assert any_door.rows() == before


def test_partner_event_ids_sharing_a_long_prefix_are_different_events(any_door: Door):
    """The replay check keyed on the first 58 characters of an event id: a second ack whose
    id only differed after them was refused as a replay."""
    prefix = "contact-centre-acknowledgement-" + "x" * 40
    first, second = ack(event_id=prefix + "-1"), ack(event_id=prefix + "-2")
    assert any_door.partner(ACKS, first).status_code == 200
    answer = any_door.partner(ACKS, second)
    assert answer.status_code == 200 and answer.json()["duplicate"] is False, answer.text


def test_a_merge_naming_115000_ids_is_400_before_any_look_up(door: Door):
    before = door.rows()
    merge = hubspot_event(subscriptionType="contact.merge", primaryObjectId=1,
                          mergedObjectIds=list(range(2, 115_002)))
    body = json.dumps([merge]).encode()
    assert len(body) < door.container.settings.max_body_bytes
    refused(door.hubspot(body), 400, "mergedObjectIds holds more than 100 ids")
    assert door.rows() == before


@pytest.mark.parametrize(("route", "media"), [
    ("hubspot", "text/plain"), ("hubspot", "application/x-www-form-urlencoded"),
    ("mailchimp", "application/json"), ("ack", "text/plain"), ("requests", "text/xml"),
    ("opendsr", "application/x-www-form-urlencoded"), ("hubspot", ""),
])
def test_a_wrong_content_type_is_415_before_the_body_is_read(door: Door, route: str,
                                                            media: str):
    before = door.rows()
    wrong = {"Content-Type": media}
    body = json.dumps([hubspot_event()]).encode()
    sent = {"hubspot": lambda: door.hubspot(body, headers=wrong),
            "mailchimp": lambda: door.mailchimp(b"type=unsubscribe", headers=wrong),
            "ack": lambda: door.partner(ACKS, ack(), headers=wrong),
            "requests": lambda: door.partner(ASKS, ask(), headers=wrong),
            "opendsr": lambda: door.opendsr(callback(), headers=wrong)}[route]()
    refused(sent, 415, "Content-Type")
    assert door.rows() == before


def test_a_body_streamed_past_the_limit_is_413(door: Door):
    """No Content-Length to check first: the stream is counted as it comes."""
    limit = door.container.settings.max_body_bytes
    chunks = (b"[" + b" " * (64 * 1024) for _ in range(limit // (64 * 1024) + 2))
    before = door.rows()
    answer = door.client.post("/webhooks/hubspot", content=chunks,
                              headers={"Content-Type": "application/json"})
    refused(answer, 413, str(limit))
    assert door.rows() == before


def test_mailchimp_forms_are_capped_in_fields_size_and_depth(door: Door):
    before = door.rows()
    base = (f"type=profile&fired_at=2026-01-01 10:00:00&data[list_id]={LIST_ID}"
            "&data[email]=z@example.org")
    many = base + "".join(f"&data[merges][F{i}]=x" for i in range(200))
    refused(door.mailchimp(many.encode()), 400, "more than 200 fields")
    big = base + "&data[merges][NOTES]=" + "x" * 70_000
    refused(door.mailchimp(big.encode()), 413, "65536")
    deep = base + "&data[merges][A][B][C][D]=x"
    refused(door.mailchimp(deep.encode()), 400, "nest at most 4 levels")
    assert door.rows() == before


def test_a_wrong_mailchimp_token_is_refused_before_the_body_is_read(door: Door):
    before = door.rows()
    refused(door.mailchimp(b"x" * 100, token="not-the-token",
                           headers={"Content-Type": "text/plain"}), 401, "token")
    assert door.rows() == before


def test_partner_messages_signed_in_the_future_are_401(door: Door):
    before = door.rows()
    # 30 s past the 300 s window either way: a signature 1 s ahead of the window came
    # inside it when the machine took over a second to answer.
    for path, document in ((ACKS, ack()), (ASKS, ask())):
        refused(door.partner(path, document, at=time.time() + 330), 401, "window")
        refused(door.partner(path, document, at=time.time() - 330), 401, "window")
    assert door.rows() == before


def test_a_partner_request_replayed_is_401_and_counted(door: Door):
    document = ask()
    assert door.partner(ASKS, document).status_code == 200
    before = door.rows()
    refused(door.partner(ASKS, document), 401, "replay")
    assert door.rows() == before
    metrics = door.client.get("/metrics").text
    assert ('privasync_webhook_deliveries_total{result="replayed",'
            'source="partner:contact_centre"} 1.0') in metrics


def test_a_hubspot_delivery_replayed_in_its_window_is_200_without_effect_and_counted(
        door: Door):
    body = json.dumps([hubspot_event()]).encode()
    first = door.hubspot(body)
    assert first.json() == {"accepted": 1, "duplicate": False}
    before = door.rows()
    again = door.hubspot(body)  # the same bytes, signed again: HubSpot's own retries differ
    assert again.status_code == 200 and again.json() == {"accepted": 1, "duplicate": True}
    assert door.rows() == before
    metrics = door.client.get("/metrics").text
    assert 'privasync_webhook_deliveries_total{result="replayed",source="hubspot"} 1.0' \
        in metrics
    stale = int((time.time() - 301) * 1000)
    refused(door.hubspot(body, at_ms=stale), 401, "more than 5 minutes old")


def test_an_opendsr_callback_replayed_is_stored_once(door: Door):
    """OpenDSR callbacks carry no timestamp (the spec has none): a replay of one is the same
    status for the same request, answered 2xx and stored once."""
    document = callback()
    assert door.opendsr(document).json()["duplicate"] is False
    before = door.rows()
    assert door.opendsr(document).json()["duplicate"] is True
    assert door.rows() == before


def test_an_admin_path_parameter_with_a_nul_is_a_4xx(any_door: Door):
    token = any_door.token()
    answer = any_door.client.get(f"/api/v1/requests/{quote(chr(0))}x",
                                 headers={"Authorization": f"Bearer {token}"})
    assert 400 <= answer.status_code < 500, answer.text
    assert set(answer.json()) >= {"error", "reason"}


def test_a_partner_reusing_a_request_id_opens_nothing_and_blocks_nothing(door: Door):
    """Found by the fuzzing: a second request under an id already taken failed the
    applier's insert (IntegrityError) until its inbox row was set aside."""
    from sqlalchemy import select

    from core.db import events, inbox

    first, second = ask(), ask(kind="access", email="someone.else@example.org")
    second["request_id"] = first["request_id"]
    assert door.partner(ASKS, first).status_code == 200
    assert door.partner(ASKS, second).status_code == 200
    for _ in range(3):
        door.container.applier.tick()
    with door.container.engine.connect() as conn:
        assert conn.execute(select(inbox.c.last_error).where(
            inbox.c.applied_at.is_(None) | inbox.c.last_error.is_not(None))).all() == []
        outcomes = conn.execute(select(events.c.source_event_id, events.c.outcome)
                                .order_by(events.c.id)).all()
    assert [o for _, o in outcomes] == ["request_opened", "duplicate_request"]
