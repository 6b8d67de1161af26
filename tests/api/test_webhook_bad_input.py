"""Bad input gets a clear 4xx with a reason, never a 500, and nothing half-stored."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import pytest
import requests
from hubspot.utils.signature import Signature
from sqlalchemy import func, select

from core import inbox as inbox_rows
from core.db import consents, events, inbox, jobs, subjects
from privasync.demo.stack import WEBHOOK_TOKEN, Stack
from tests.timing import scaled

EMAIL = "piet.pieters@example.be"


def stored(stack: Stack) -> tuple[int, ...]:
    """Rows of every table a delivery could touch, once the applier has caught up."""
    deadline = time.monotonic() + scaled(10)
    with stack.container.engine.connect() as conn:
        while inbox_rows.backlog(conn).rows and time.monotonic() < deadline:
            conn.rollback()
            time.sleep(0.02)
        return tuple(int(conn.execute(select(func.count()).select_from(t)).scalar_one())
                     for t in (inbox, events, jobs, consents, subjects))


def post_hubspot(stack: Stack, body: bytes) -> requests.Response:
    url = f"{stack.url}/webhooks/hubspot"
    ts = str(int(time.time() * 1000))
    sig = Signature.get_signature(client_secret=stack.emulators.hubspot.client_secret,
                                  request_body=body.decode("utf-8", "replace"),
                                  signature_version="v3", http_uri=url, timestamp=ts)
    return requests.post(url, data=body, timeout=scaled(10), headers={
        "X-HubSpot-Signature-v3": sig, "X-HubSpot-Request-Timestamp": ts,
        "Content-Type": "application/json"})


def event(contact: int | str, **over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "eventId": 1, "subscriptionId": 9, "portalId": 62515, "appId": 54321,
        "occurredAt": int(time.time() * 1000), "subscriptionType": "contact.propertyChange",
        "attemptNumber": 0, "objectId": int(contact), "propertyName": "hs_email_optout",
        "propertyValue": "true", "changeSource": "CRM_UI"}
    return base | over


@pytest.mark.parametrize(("body", "status", "reason"), [
    (b"{not json", 400, "JSON"),
    (b'{"eventId": 1}', 400, "array"),
    (json.dumps([event(1001, subscriptionType="contact.teleported")]).encode(), 400,
     "subscriptionType is not one"),
    (json.dumps([{k: v for k, v in event(1001).items() if k != "objectId"}]).encode(), 400,
     "objectId"),
    (json.dumps([event(1001, eventId=i) for i in range(101)]).encode(), 400, "100"),
])
def test_bad_hubspot_deliveries_get_a_4xx_with_a_reason_and_store_nothing(
        embedded: Stack, body: bytes, status: int, reason: str):
    embedded.emulators.hubspot.create_contact(EMAIL)
    embedded.emulators.hubspot.flush_webhooks()  # its contact.creation lands first
    before = stored(embedded)
    response = post_hubspot(embedded, body)
    assert response.status_code == status, response.text
    assert reason in response.json()["reason"]
    assert stored(embedded) == before
    assert EMAIL not in response.text


def test_a_contact_no_system_knows_is_accepted_and_shown_as_not_applied(embedded: Stack):
    response = post_hubspot(embedded, json.dumps([event(999999)]).encode())
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 1, "duplicate": False}
    stored(embedded)
    with embedded.container.engine.connect() as conn:
        outcome = conn.execute(select(events.c.outcome).where(
            events.c.source_event_id.like("%:999999:%"))).scalar_one()
    assert outcome == "unknown_subject"
    metrics = requests.get(f"{embedded.url}/metrics", timeout=scaled(10)).text
    assert ('privasync_events_received_total{outcome="unknown_subject",source="hubspot"} 1.0'
            in metrics)


def test_one_bad_event_in_a_batch_refuses_the_whole_batch(embedded: Stack):
    good = embedded.emulators.hubspot.create_contact(EMAIL)
    embedded.emulators.hubspot.flush_webhooks()
    before = stored(embedded)
    body = json.dumps([event(good), event(good, eventId=2, occurredAt="yesterday")]).encode()
    response = post_hubspot(embedded, body)
    assert response.status_code == 400 and "occurredAt" in response.json()["reason"]
    assert stored(embedded) == before


def test_a_huge_body_is_refused_before_it_is_read(embedded: Stack):
    limit = embedded.container.settings.max_body_bytes
    response = post_hubspot(embedded, b"[" + b" " * limit + b"]")
    assert response.status_code == 413 and str(limit) in response.json()["reason"]


def test_an_unsigned_request_is_401(embedded: Stack):
    response = requests.post(f"{embedded.url}/webhooks/hubspot", data=b"[]", timeout=scaled(10),
                             headers={"Content-Type": "application/json"})
    assert response.status_code == 401 and response.json()["error"] == "Unauthenticated"


def test_mailchimp_with_a_wrong_token_is_401_and_its_check_get_too(embedded: Stack):
    url = f"{embedded.url}/webhooks/mailchimp/wrong-token"
    assert requests.get(url, timeout=scaled(10)).status_code == 401
    posted = requests.post(url, data="type=unsubscribe&data[email]=x@y.z", timeout=scaled(10),
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert posted.status_code == 401 and stored(embedded) == (0, 0, 0, 0, 0)


def test_mailchimps_creation_check_gets_200(embedded: Stack):
    response = requests.get(f"{embedded.url}/webhooks/mailchimp/{WEBHOOK_TOKEN}",
                            timeout=scaled(10))
    assert response.status_code == 200


@pytest.mark.parametrize(("form", "reason"), [
    ({"fired_at": "2026-01-01 10:00:00", "data[email]": EMAIL}, "type"),
    ({"type": "unsubscribe", "fired_at": "2026-01-01 10:00:00"}, "data[email]"),
    ({"type": "teleport", "fired_at": "2026-01-01 10:00:00", "data[email]": EMAIL},
     "not a known Mailchimp event type"),
    ({"type": "unsubscribe", "fired_at": "last tuesday", "data[email]": EMAIL}, "fired_at"),
])
def test_bad_mailchimp_deliveries_get_400_with_a_reason_and_store_nothing(
        embedded: Stack, form: dict[str, str], reason: str):
    form = {"data[list_id]": embedded.emulators.mailchimp.list_id} | form
    response = requests.post(f"{embedded.url}/webhooks/mailchimp/{WEBHOOK_TOKEN}",
                             data=urlencode(form), timeout=scaled(10),
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400, response.text
    assert reason in response.json()["reason"] and EMAIL not in response.text
    assert stored(embedded) == (0, 0, 0, 0, 0)


def test_an_unknown_path_or_method_is_a_4xx(embedded: Stack):
    assert requests.get(f"{embedded.url}/webhooks/hubspot", timeout=scaled(10)).status_code == 405
    assert requests.get(f"{embedded.url}/nope", timeout=scaled(10)).status_code == 404
