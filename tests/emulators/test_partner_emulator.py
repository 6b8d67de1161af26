"""The partner emulator checks signatures, dedupes event ids and keeps the latest state."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from connectors.partner import EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from privasync.emulators.partner import PartnerEmulator, signature
from tests.emulators.conftest import serve
from tests.timing import scaled

SECRET = "partner-secret"


@pytest.fixture(scope="module")
def partner() -> Iterator[PartnerEmulator]:
    yield from serve(PartnerEmulator())


def post(partner: PartnerEmulator, document: dict[str, Any], *, secret: str = SECRET,
         age: int = 0) -> requests.Response:
    body = json.dumps(document).encode()
    timestamp = str(int(time.time()) - age)
    return requests.post(f"{partner.url}{partner.path}", data=body, timeout=scaled(5), headers={
        TIMESTAMP_HEADER: timestamp, EVENT_ID_HEADER: document["event_id"],
        SIGNATURE_HEADER: sign(secret, timestamp, body)})


def update(event_id: str, status: str, occurred_at: str,
           subject_id: str = "sub-1") -> dict[str, Any]:
    return {"event_id": event_id, "sent_at": occurred_at, "subjects": [
        {"subject_id": subject_id, "consents": [{"purpose": "offers", "channel": "email",
                                              "status": status, "occurred_at": occurred_at}]}]}


def test_a_signed_update_is_stored_and_acknowledged(partner: PartnerEmulator) -> None:
    response = post(partner, update("ev-a", "withdrawn", "2026-03-01T10:00:00+00:00"))
    assert response.status_code == 200
    assert response.json() == {"received": "ev-a", "count": 1}
    assert partner.state("sub-1") == {"fields": {}, "consents": {"offers/email": {
        "status": "withdrawn", "occurred_at": "2026-03-01T10:00:00+00:00"}}}
    assert "ev-a" in partner.received_event_ids


def test_a_replayed_event_id_is_acknowledged_but_not_applied_twice(
        partner: PartnerEmulator) -> None:
    first = post(partner, update("ev-b", "granted", "2026-03-02T10:00:00+00:00"))
    again = post(partner, update("ev-b", "granted", "2026-03-02T10:00:00+00:00"))
    assert first.status_code == again.status_code == 200
    assert again.json()["duplicate"] is True
    assert partner.received_event_ids.count("ev-b") == 1


def test_an_older_update_does_not_overwrite_a_newer_one(partner: PartnerEmulator) -> None:
    post(partner, update("ev-c", "withdrawn", "2026-03-05T10:00:00+00:00", "sub-2"))
    post(partner, update("ev-d", "granted", "2026-03-04T10:00:00+00:00", "sub-2"))
    state = partner.state("sub-2")
    assert state is not None and state["consents"]["offers/email"]["status"] == "withdrawn"


def test_a_forged_or_stale_signature_is_refused_with_401(partner: PartnerEmulator) -> None:
    forged = post(partner, update("ev-e", "granted", "2026-03-09T10:00:00+00:00"),
                  secret="guess")
    stale = post(partner, update("ev-f", "granted", "2026-03-09T10:00:00+00:00"), age=301)
    assert forged.status_code == stale.status_code == 401
    assert {"ev-e", "ev-f"}.isdisjoint(partner.received_event_ids)


def test_a_signed_body_that_breaks_the_schema_is_a_400(partner: PartnerEmulator) -> None:
    response = post(partner, {"event_id": "ev-g", "subjects": [{"consents": []}]})
    assert response.status_code == 400
    assert "ev-g" not in partner.received_event_ids


def fields_update(event_id: str, sent_at: str, subject_id: str,
                  **fields: str | None) -> dict[str, Any]:
    return {"event_id": event_id, "sent_at": sent_at, "kind": "record",
            "subjects": [{"subject_id": subject_id, "fields": fields}]}


def test_a_record_update_stores_the_latest_value_per_field(partner: PartnerEmulator) -> None:
    post(partner, update("ev-h", "granted", "2026-03-01T10:00:00+00:00", "sub-3"))
    first = post(partner, fields_update("ev-i", "2026-03-02T10:00:00+00:00", "sub-3",
                                        first_name="Ada", city="Leeds"))
    post(partner, fields_update("ev-j", "2026-03-03T10:00:00+00:00", "sub-3",
                                city="York", phone=None))
    post(partner, fields_update("ev-k", "2026-03-02T12:00:00+00:00", "sub-3",
                                city="Hull", first_name=None))
    assert first.json() == {"received": "ev-i", "count": 1}
    state = partner.state("sub-3")
    assert state is not None
    assert state["fields"] == {"city": "York"}
    assert state["consents"]["offers/email"]["status"] == "granted"
    assert partner.received_kinds["ev-i"] == "record"


def test_an_update_of_an_unknown_kind_or_without_sent_at_is_a_400(
        partner: PartnerEmulator) -> None:
    odd = post(partner, {**fields_update("ev-l", "2026-03-01T10:00:00+00:00", "sub-4"),
                         "kind": "deletion"})
    naive = post(partner, fields_update("ev-m", "2026-03-01T10:00:00", "sub-4", city="X"))
    assert odd.status_code == naive.status_code == 400
    assert partner.state("sub-4") is None


def test_the_emulators_own_signature_is_the_documented_hmac() -> None:
    import hashlib
    import hmac

    expected = hmac.new(b"k", b"1700000000.{}", hashlib.sha256).hexdigest()
    assert signature("k", "1700000000", b"{}") == f"v1={expected}"
    assert signature("k", "1700000000", b"{}") == sign("k", "1700000000", b"{}")


def erasure(event_id: str, *requests_: dict[str, Any]) -> dict[str, Any]:
    return {"event_id": event_id, "sent_at": "2026-03-10T10:00:00+00:00", "kind": "erasure",
            "requests": list(requests_)}


def test_an_erasure_request_is_kept_and_the_data_stays_until_it_is_completed(
        partner: PartnerEmulator) -> None:
    post(partner, update("ev-n", "granted", "2026-03-01T10:00:00+00:00", "sub-5"))
    response = post(partner, erasure("ev-o", {"request_id": "r-5", "subject_id": "sub-5",
                                              "emails": ["a@example.com"]}))
    assert response.json() == {"received": "ev-o", "count": 1}
    assert partner.received_kinds["ev-o"] == "erasure"
    held = partner.erasure("r-5")
    assert held is not None and (held["subject_id"], held["status"]) == ("sub-5", "pending")
    assert partner.state("sub-5") is not None


def test_an_erasure_request_outside_the_schema_is_a_400(partner: PartnerEmulator) -> None:
    odd = post(partner, erasure("ev-p", {"request_id": "r-6", "subject_id": "sub-6",
                                         "email": "a@example.com"}))
    unnamed = post(partner, erasure("ev-q", {"subject_id": "sub-6"}))
    listless = post(partner, erasure("ev-r", {"request_id": "r-6", "subject_id": "sub-6",
                                              "emails": "a@example.com"}))
    assert odd.status_code == unnamed.status_code == listless.status_code == 400
    assert partner.erasure("r-6") is None


def test_acking_without_an_ack_url_or_for_an_unknown_request_is_a_test_mistake(
        partner: PartnerEmulator) -> None:
    with pytest.raises(RuntimeError):
        partner.ack("r-unknown")


def test_a_timed_ack_that_cannot_be_delivered_is_recorded_on_the_request() -> None:
    emulator = PartnerEmulator(ack_url="http://127.0.0.1:9/nowhere", ack_delay=0.01)
    emulator.start()
    try:
        post(emulator, erasure("ev-s", {"request_id": "r-7", "subject_id": "sub-7"}))
        deadline = time.monotonic() + scaled(5)
        while (emulator.erasure("r-7") or {}).get("ack_status") is None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        emulator.stop()
    assert emulator.erasure("r-7") == {"subject_id": "sub-7", "emails": [],
                                       "status": "completed", "ack_status": "ConnectionError"}
