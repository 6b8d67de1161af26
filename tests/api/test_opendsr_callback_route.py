"""The OpenDSR callback route answers as the specification asks: 403 for a signature that
fails (§8.8 step 5), and OpenGDPR's header names accepted beside OpenDSR's (§10.1)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from privasync.emulators.opendsr.authority import TestAuthority, sign
from tests.api.door import OPENDSR, OPENDSR_DOMAIN, Door, callback, processor

NOW = datetime.now(UTC)


def test_a_callback_whose_signature_fails_is_403_and_stores_nothing(door: Door) -> None:
    before = door.rows()
    forged_key, _ = TestAuthority().issue(OPENDSR_DOMAIN, NOW - timedelta(days=1),
                                          NOW + timedelta(days=1))
    body = json.dumps(callback()).encode()
    answers = [
        door.opendsr(body, headers={"X-OpenDSR-Signature": sign(forged_key, body)}),
        door.opendsr(body, headers={"X-OpenDSR-Processor-Domain": "elsewhere.example"}),
        door.client.post(OPENDSR, content=body, headers={"Content-Type": "application/json"}),
    ]
    assert [a.status_code for a in answers] == [403, 403, 403]
    assert all(a.json()["error"] == "Forbidden" for a in answers)
    assert door.rows() == before


def test_a_callback_signed_under_the_opengdpr_header_names_is_accepted(door: Door) -> None:
    body = json.dumps(callback()).encode()
    answer = door.client.post(OPENDSR, content=body, headers={
        "Content-Type": "application/json", "X-OpenGDPR-Processor-Domain": OPENDSR_DOMAIN,
        "X-OpenGDPR-Signature": sign(processor()[0], body)})
    assert answer.status_code == 200, answer.text
    assert answer.json()["duplicate"] is False
