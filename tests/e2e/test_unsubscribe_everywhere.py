"""Unsubscribe once, seen everywhere: each promise of the slice as its own test."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import requests
from hubspot.utils.signature import Signature
from sqlalchemy import select

from core import ledger
from core.db import consents, jobs
from privasync.demo.stack import WEBHOOK_TOKEN, Stack
from privasync.emulators.http import Fault
from privasync.emulators.partner.signature import signed_headers
from tests.e2e.conftest import (
    BOTH_BROKERS,
    event_count,
    job_count,
    mc_status,
    partner_withdrawn,
    seed,
    settle,
    sf_opted_out,
    subject_of,
    wait_for,
)
from tests.timing import scaled

EMAIL = "anna.devries@example.nl"


@BOTH_BROKERS
def test_an_unsubscribe_in_hubspot_reaches_salesforce_mailchimp_and_the_partner(stack: Stack):
    contact = seed(stack, EMAIL)
    seed(stack, "bystander@example.nl")
    stack.emulators.hubspot.ui_unsubscribe_all(contact)
    wait_for("Salesforce opt-out", lambda: sf_opted_out(stack, EMAIL))
    wait_for("Mailchimp unsubscribed", lambda: mc_status(stack, EMAIL) == "unsubscribed")
    wait_for("partner told", lambda: partner_withdrawn(stack, EMAIL))
    assert mc_status(stack, "bystander@example.nl") == "subscribed"
    assert not sf_opted_out(stack, "bystander@example.nl")
    with stack.container.engine.connect() as conn:
        assert ledger.verify(conn).ok


def hubspot_v4_statuses(stack: Stack, email: str) -> dict[int, str]:
    """What HubSpot's v4 batch read answers for an address: subscription id -> status, in
    v4's spelling (an opt-out is UNSUBSCRIBED there; the strict emulator refuses v3's
    NOT_SUBSCRIBED in a v4 write, so an opt-out sent so never arrives)."""
    hubspot = stack.emulators.hubspot
    answer = requests.post(f"{hubspot.url}/communication-preferences/v4/statuses/batch/read",
                           params={"channel": "EMAIL"}, json={"inputs": [email]},
                           timeout=scaled(10),
                           headers={"Authorization": f"Bearer {hubspot.access_token}"})
    return {s["subscriptionId"]: s["status"] for s in answer.json()["results"][0]["statuses"]}


def hubspot_unsubscribed(stack: Stack, email: str) -> bool:
    return hubspot_v4_statuses(stack, email) == {101: "UNSUBSCRIBED", 102: "UNSUBSCRIBED"}


@BOTH_BROKERS
def test_an_unsubscribe_in_mailchimp_reaches_hubspot_and_salesforce(stack: Stack):
    seed(stack, EMAIL)
    stack.emulators.mailchimp.user_unsubscribe(EMAIL)
    wait_for("HubSpot subscriptions UNSUBSCRIBED (v4)", lambda: hubspot_unsubscribed(
        stack, EMAIL))
    wait_for("Salesforce opt-out", lambda: sf_opted_out(stack, EMAIL))
    wait_for("partner told", lambda: partner_withdrawn(stack, EMAIL))


@BOTH_BROKERS
def test_an_opt_out_found_by_the_salesforce_poller_reaches_the_others(stack: Stack):
    seed(stack, EMAIL)
    sf = stack.emulators.salesforce
    sf.ui_set_opt_out(sf.find_by_email(EMAIL)[0], True)
    wait_for("HubSpot subscriptions UNSUBSCRIBED (v4)", lambda: hubspot_unsubscribed(
        stack, EMAIL), timeout=90)
    wait_for("Mailchimp unsubscribed", lambda: mc_status(stack, EMAIL) == "unsubscribed")
    wait_for("partner told", lambda: partner_withdrawn(stack, EMAIL))


def test_an_objection_a_partner_passes_on_reaches_hubspot_as_v4_spells_it(stack: Stack):
    seed(stack, EMAIL)
    settle(stack)
    document = {"event_id": "cc-901", "request_id": str(uuid.uuid4()), "kind": "objection",
                "email": EMAIL, "identity_verified": True}
    body = json.dumps(document).encode()
    asked = requests.post(f"{stack.url}/webhooks/partners/contact_centre/requests", data=body,
                          timeout=scaled(10), headers=signed_headers(
                              stack.emulators.partner.secret, "cc-901", body, time.time()))
    assert asked.status_code == 200, asked.text
    wait_for("HubSpot subscriptions UNSUBSCRIBED (v4)", lambda: hubspot_unsubscribed(
        stack, EMAIL))
    wait_for("Mailchimp unsubscribed", lambda: mc_status(stack, EMAIL) == "unsubscribed")


def _signed_post(stack: Stack, body: bytes, *, secret: str | None = None,
                 timestamp: int | None = None) -> requests.Response:
    url = f"{stack.url}/webhooks/hubspot"
    ts = str(timestamp if timestamp is not None else int(time.time() * 1000))
    signature = Signature.get_signature(
        client_secret=secret or stack.emulators.hubspot.client_secret,
        request_body=body.decode(), signature_version="v3", http_uri=url,
        http_method="POST", timestamp=ts)
    return requests.post(url, data=body, timeout=scaled(10), headers={
        "Content-Type": "application/json", "X-HubSpot-Signature-v3": signature,
        "X-HubSpot-Signature-Version": "v3", "X-HubSpot-Request-Timestamp": ts})


def _optout_event(contact: str, event_id: int, occurred: datetime) -> list[dict[str, object]]:
    return [{"eventId": event_id, "subscriptionId": 2345, "portalId": 62515, "appId": 54321,
             "occurredAt": int(occurred.timestamp() * 1000),
             "subscriptionType": "contact.propertyChange", "attemptNumber": 0,
             "objectId": int(contact), "propertyName": "hs_email_optout",
             "propertyValue": "true", "changeSource": "CRM_UI"}]


def test_a_forged_or_stale_hubspot_signature_gets_401_and_stores_nothing(stack: Stack):
    contact = seed(stack, EMAIL)
    stack.container.stop_background()  # no poller storing Salesforce events meanwhile
    before = (event_count(stack), job_count(stack))
    body = json.dumps(_optout_event(contact, 1, datetime.now(UTC))).encode()
    forged = _signed_post(stack, body, secret="not-the-app-secret")
    stale_ts = int((time.time() - 301) * 1000)
    stale = _signed_post(stack, body, timestamp=stale_ts)
    assert (forged.status_code, stale.status_code) == (401, 401)
    assert forged.json()["error"] == "Unauthenticated" and "reason" in stale.json()
    assert (event_count(stack), job_count(stack)) == before


def test_the_same_webhook_delivered_twice_changes_nothing_the_second_time(stack: Stack):
    contact = seed(stack, EMAIL)
    body = json.dumps(_optout_event(contact, 77, datetime.now(UTC))).encode()
    settle(stack)
    jobs_before = job_count(stack)
    first = _signed_post(stack, body)
    assert first.status_code == 200 and first.json() == {"accepted": 1, "duplicate": False}
    settle(stack)
    jobs_after_first = job_count(stack)
    assert jobs_after_first == jobs_before + 3
    second = _signed_post(stack, body)
    assert second.status_code == 200
    assert second.json() == {"accepted": 1, "duplicate": True}
    # HubSpot's own retry counts its attempt in the body: other bytes, the same event.
    retried = json.loads(body)
    retried[0]["attemptNumber"] = 1
    third = _signed_post(stack, json.dumps(retried).encode())
    assert third.json() == {"accepted": 1, "duplicate": False}
    settle(stack)
    assert job_count(stack) == jobs_after_first
    assert _counted(stack, "hubspot", "duplicate") == 1


def _mailchimp_post(stack: Stack, kind: str, fired_at: datetime) -> requests.Response:
    form = {"type": kind, "fired_at": fired_at.strftime("%Y-%m-%d %H:%M:%S"),
            "data[id]": "8a25ff1d98", "data[list_id]": stack.emulators.mailchimp.list_id,
            "data[email]": EMAIL, "data[email_type]": "html", "data[merges][EMAIL]": EMAIL,
            "data[ip_opt]": "10.20.10.30"}
    if kind == "unsubscribe":
        form |= {"data[action]": "unsub", "data[reason]": "manual"}
    return requests.post(f"{stack.url}/webhooks/mailchimp/{WEBHOOK_TOKEN}",
                         data=urlencode(form), timeout=scaled(10),
                         headers={"Content-Type": "application/x-www-form-urlencoded"})


def test_an_older_subscribe_arriving_after_a_newer_unsubscribe_changes_nothing(stack: Stack):
    seed(stack, EMAIL)
    now = datetime.now(UTC).replace(microsecond=0)
    assert _mailchimp_post(stack, "unsubscribe", now).status_code == 200
    settle(stack)
    jobs_before = job_count(stack)
    late = _mailchimp_post(stack, "subscribe", now - timedelta(minutes=5))
    assert late.status_code == 200
    settle(stack)
    assert _counted(stack, "mailchimp", "stale") == 1
    assert job_count(stack) == jobs_before
    with stack.container.engine.connect() as conn:
        statuses = set(conn.execute(select(consents.c.status).where(
            consents.c.subject_id == subject_of(stack, EMAIL))).scalars())
    assert statuses == {"withdrawn"}


def test_our_own_write_echoing_back_causes_no_further_jobs(stack: Stack):
    seed(stack, EMAIL)
    stack.emulators.mailchimp.user_unsubscribe(EMAIL)
    wait_for("HubSpot subscriptions off", lambda: hubspot_v4_statuses(stack, EMAIL)[102] ==
             "UNSUBSCRIBED")
    settle(stack)
    stack.emulators.hubspot.flush_webhooks()
    wait_for("echo from HubSpot received", lambda: _counted(stack, "hubspot", "unchanged") > 0)
    settle(stack, 1.5)
    with stack.container.engine.connect() as conn:
        destinations = sorted(conn.execute(select(jobs.c.destination)
                                           .where(jobs.c.kind == "consent")).scalars())
    # One job per destination for the one real change: the echoes added none.
    assert destinations == ["hubspot", "partner:contact_centre", "salesforce"]


def _counted(stack: Stack, source: str, outcome: str) -> int:
    """Events of ``source`` applied with ``outcome`` (no-ops are counted, not stored)."""
    from core.db import event_counts

    with stack.container.engine.connect() as conn:
        return int(conn.execute(select(event_counts.c.n).where(
            event_counts.c.source == source, event_counts.c.outcome == outcome))
            .scalar_one_or_none() or 0)


def test_a_destination_answering_429_then_500_still_ends_in_the_right_state(stack: Stack):
    contact = seed(stack, EMAIL)
    emu = stack.emulators
    settle(stack)
    seen_before = len(emu.mailchimp.log)  # the audience read at start, among others
    emu.mailchimp.inject(Fault(429, {"title": "Too Many Requests", "status": 429},
                               {"Retry-After": "1"}, path_pattern="^/3.0/lists"),
                         *[Fault(500, {"title": "Internal Server Error", "status": 500},
                                 path_pattern="^/3.0/lists")] * 3)
    emu.partner.inject(*[Fault(503, {"error": "maintenance"})] * 4)
    emu.hubspot.ui_unsubscribe_all(contact)
    wait_for("every job done", lambda: _job_states(stack) == {
        "mailchimp": "done", "partner:contact_centre": "done", "salesforce": "done"},
        timeout=40)
    assert mc_status(stack, EMAIL) == "unsubscribed" and partner_withdrawn(stack, EMAIL)
    with stack.container.engine.connect() as conn:
        attempts = dict(conn.execute(select(jobs.c.destination, jobs.c.attempts)
                                     .where(jobs.c.kind == "consent")).all())
    mailchimp = [s for m, p, s in list(emu.mailchimp.log)[seen_before:]
                 if p.startswith("/3.0/lists")]
    partner = [s for _, _, s in emu.partner.log]
    assert mailchimp[:5] == [429, 500, 500, 500, 200]
    assert partner == [503, 503, 503, 503, 200]
    # Worker retries with backoff (429's Retry-After honoured), blips retried in-call.
    assert attempts["mailchimp"] >= 3 and attempts["partner:contact_centre"] >= 2
    # The 429 is counted as a throttled batch (the vendor-429 alert's metric), apart from
    # the 500s.
    scraped = requests.get(f"{stack.url}/metrics", timeout=scaled(10)).text
    assert 'privasync_vendor_batches_total{destination="mailchimp",result="throttled"} 1.0' \
        in scraped
    assert 'privasync_vendor_batches_total{destination="mailchimp",result="error"} 3.0' \
        in scraped
    assert 'privasync_vendor_batches_total{destination="mailchimp",result="ok"}' in scraped


def _job_states(stack: Stack) -> dict[str, str]:
    with stack.container.engine.connect() as conn:
        return dict(conn.execute(select(jobs.c.destination, jobs.c.status)
                                 .where(jobs.c.kind == "consent")).all())
