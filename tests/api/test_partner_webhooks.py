"""``POST /webhooks/partners/{name}/ack|requests``: signed by the partner with its own
code (the emulator's signer, written from the README), refused with 401 when forged,
stale or replayed, and nothing stored then."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import requests
from sqlalchemy import func, select

from core import subject_requests as rq
from core.db import inbox
from privasync.demo.stack import Stack
from privasync.emulators.partner.signature import signed_headers
from tests.e2e.conftest import applied, settle, subject_of
from tests.timing import scaled

EMAIL = "pieter.claes@example.be"
ACKS = "/webhooks/partners/contact_centre/ack"
ASKS = "/webhooks/partners/contact_centre/requests"


def post(stack: Stack, path: str, document: dict[str, Any], *, secret: str | None = None,
         at: float | None = None, event_id: str | None = None) -> requests.Response:
    body = json.dumps(document).encode()
    headers = signed_headers(secret or stack.emulators.partner.secret,
                             event_id or str(document.get("event_id", "")), body,
                             time.time() if at is None else at)
    return requests.post(stack.url + path, data=body, headers=headers, timeout=scaled(10))


def stored(stack: Stack) -> int:
    with stack.container.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(inbox)).scalar_one())


def ack(request_id: str) -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "request_id": request_id, "status": "completed",
            "detail": "erased"}


def test_forged_and_stale_acks_get_401_and_store_nothing(embedded: Stack):
    before = stored(embedded)
    forged = post(embedded, ACKS, ack(str(uuid.uuid4())), secret="not-the-partner-secret")
    stale = post(embedded, ACKS, ack(str(uuid.uuid4())), at=time.time() - 301)
    assert (forged.status_code, stale.status_code) == (401, 401)
    assert forged.json()["error"] == "Unauthenticated" and forged.json()["reason"]
    assert stored(embedded) == before


def test_a_replayed_ack_gets_401_the_second_time_and_changes_nothing(embedded: Stack):
    document = ack(str(uuid.uuid4()))
    first = post(embedded, ACKS, document)
    assert first.status_code == 200 and first.json()["duplicate"] is False
    before = stored(embedded)
    again = post(embedded, ACKS, document)  # the same signed bytes, a fresh timestamp
    assert again.status_code == 401 and "replay" in again.json()["reason"]
    assert stored(embedded) == before


def test_an_ack_that_breaks_its_schema_is_400_naming_the_field_not_the_value(embedded: Stack):
    document = ack(str(uuid.uuid4())) | {"status": "done-ish"}
    refused = post(embedded, ACKS, document)
    assert refused.status_code == 400 and "status" in refused.json()["reason"]
    assert "done-ish" not in refused.text
    # A request's body at the ack endpoint is no ack.
    ask = {"event_id": "x-1", "request_id": str(uuid.uuid4()), "kind": "erasure",
           "email": EMAIL}
    assert post(embedded, ACKS, ask).status_code == 400


def test_unknown_partners_and_endpoints_are_404(embedded: Stack):
    assert post(embedded, "/webhooks/partners/nobody/ack", ack("r")).status_code == 404
    assert post(embedded, "/webhooks/partners/contact_centre/acks", ack("r")).status_code == 404


def test_a_request_a_partner_passes_on_is_recorded_with_the_partner_as_its_source(
        embedded: Stack):
    embedded.seed_customer(EMAIL)
    settle(embedded)
    request_id = str(uuid.uuid4())
    asked = post(embedded, ASKS, {"event_id": "cc-771", "request_id": request_id,
                                  "kind": "objection", "email": EMAIL,
                                  "identity_verified": True})
    assert asked.status_code == 200, asked.text
    applied(embedded)
    with embedded.container.engine.connect() as conn:
        request = rq.get(conn, request_id)
    assert request is not None
    assert (request.kind, request.source, request.actor) == (
        "objection", "partner:contact_centre", "partner:contact_centre")
    assert request.subject_id == subject_of(embedded, EMAIL)


def test_a_malformed_request_from_a_partner_is_400_and_echoes_no_value(embedded: Stack):
    before = stored(embedded)
    refused = post(embedded, ASKS, {"event_id": "cc-772", "request_id": "not-a-uuid",
                                    "kind": "erasure", "email": EMAIL})
    assert refused.status_code == 400 and "request_id" in refused.json()["reason"]
    assert EMAIL not in refused.text and "not-a-uuid" not in refused.text
    assert stored(embedded) == before


def test_a_kept_ack_is_checked_again_in_the_evidence_pack(embedded: Stack):
    from dataclasses import replace

    from core import ackproofs
    from core.model import RequestKind
    from privasync.app.evidence import ack_check, evidence
    from privasync.app.subject_requests import create
    from tests.timing import wait_until

    partner = embedded.emulators.partner
    partner.auto_ack = False
    embedded.seed_customer(EMAIL)
    settle(embedded)
    request_id = create(embedded.container, kind=RequestKind.ERASURE, email=EMAIL,
                        identity_verified=True, actor="test").request_id
    wait_until("the partner was asked", lambda: partner.erasure(request_id) is not None)
    wait_until("the request awaits the partner's ack",
               lambda: _partner_state(embedded, request_id) == rq.AWAITING_ACK)
    # A rejection keeps the request open, and the person's key (and the kept ack) alive.
    assert partner.ack(request_id, "rejected", "no such customer here") == 200
    applied(embedded)
    assert _partner_state(embedded, request_id) == rq.FAILED

    [kept] = evidence(embedded.container, request_id)["acknowledgements"]
    assert kept["body_sha256_matches"] is True and kept["signature"] == "valid"
    assert set(kept["signed_headers"]) >= {"X-Privasync-Signature", "X-Privasync-Timestamp"}
    assert "no such customer here" not in json.dumps(kept)
    with embedded.container.engine.connect() as conn:
        [proof] = ackproofs.of_request(conn, embedded.container.keyring, request_id)
    tampered = ack_check(embedded.container, replace(proof, body=proof.body + b" "))
    assert tampered["body_sha256_matches"] is False
    assert tampered["signature"].startswith("invalid")


def _partner_state(stack: Stack, request_id: str) -> str | None:
    with stack.container.engine.connect() as conn:
        request = rq.get(conn, request_id)
    found = {d.name: d.status for d in request.destinations} if request else {}
    return found.get("partner:contact_centre")
