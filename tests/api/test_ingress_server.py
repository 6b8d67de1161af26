"""The door behind a real uvicorn: slow clients get 408, readiness answers while intake
waits for the database, and what a sender sent (a marker in every refusable place, the
Mailchimp token) reaches no answer and no log line."""

from __future__ import annotations

import json
import socket
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests

from connectors.hubspot.plugin import HubSpotSettings
from privasync.app.bootstrap import Container, build
from privasync.cli.main import configure_logging
from privasync.demo.stack import AppServer
from tests.api.door import (
    ACKS,
    ASKS,
    BASE,
    HUBSPOT,
    HUBSPOT_SECRET,
    LIST_ID,
    MAILCHIMP_TOKEN,
    OPENDSR,
    PARTNER_SECRET,
    ack,
    ask,
    callback,
    door_environ,
    door_settings,
    hubspot_event,
    hubspot_signature,
    processor,
)
from tests.conftest import make_database
from tests.timing import scaled, wait_until


class Served:
    def __init__(self, container: Container, server: AppServer) -> None:
        self.container, self.server = container, server
        self.url = server.url

    def hubspot(self, body: bytes, timeout: float = 30) -> requests.Response:
        stamp = str(int(time.time() * 1000))
        return requests.post(self.url + HUBSPOT, data=body, timeout=timeout, headers={
            "X-HubSpot-Signature-v3": hubspot_signature(body, BASE + HUBSPOT, stamp),
            "X-HubSpot-Request-Timestamp": stamp, "Content-Type": "application/json"})


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    url = make_database("sqlite", tmp_path)
    container = build(door_settings(url, tmp_path, body_read_timeout_seconds=1.0),
                      environ=door_environ())
    server = AppServer(container).start()
    yield Served(container, server)
    server.stop()
    container.close()


def trickle(port: int, head: bytes, seconds: float) -> tuple[bytes, bool]:
    """Send ``head``, then a byte of body every 0.2 s for up to ``seconds``; what came back
    (empty if the server never answered), and whether the server closed the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=scaled(5)) as sock:
        sock.sendall(head)
        sock.settimeout(0.2)
        answer = b""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                sock.sendall(b" ")
                chunk = sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return answer, True
            if not chunk:
                return answer, True
            answer += chunk
        return answer, False


@pytest.mark.parametrize(("path", "media"), [
    (HUBSPOT, "application/json"),
    (ACKS, "application/json"),
    (f"/webhooks/mailchimp/{MAILCHIMP_TOKEN}", "application/x-www-form-urlencoded"),
    ("/api/v1/requests", "application/json"),
])
def test_a_body_that_trickles_in_gets_408_and_the_connection_is_closed(
        served: Served, path: str, media: str):
    token = ""
    if path.startswith("/api/"):
        from core import tokens

        c = served.container
        with c.engine.begin() as conn:
            token = tokens.create(conn, c.keyring, "ops", tokens.SCOPES, c.clock(), actor="cli")
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {media}\r\n"
            f"Content-Length: 1000\r\nAuthorization: Bearer {token}\r\n\r\n[").encode()
    answer, closed = trickle(served.server.port, head, seconds=15)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'"error":"BodyReadTimeout"' in answer
    assert closed  # the client cannot go on holding the connection


def test_readiness_answers_while_intake_waits_for_the_write_lock(served: Served):
    """48 deliveries wait behind a writer holding SQLite's lock (more than the request
    thread pool's 40 threads and the database pool's 15 connections): /readyz still
    answers, from its own threads and connections, and never takes the write lock."""
    database = served.container.settings.database_url.removeprefix("sqlite:///")
    writer = sqlite3.connect(database, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    with ThreadPoolExecutor(48) as pool:
        try:
            bodies = [json.dumps([hubspot_event(eventId=i)]).encode() for i in range(48)]
            posted = [pool.submit(served.hubspot, body, 60) for body in bodies]
            wait_until("intake piled up behind the held write lock",
                       lambda: served.container.foreground._busy >= 40)
            ready = requests.get(served.url + "/readyz", timeout=scaled(20))
            assert ready.json()["checks"]["database"] == {"ok": True}, ready.text
            assert not any(p.done() for p in posted)  # intake was still waiting
        finally:
            writer.execute("ROLLBACK")
            writer.close()
        assert [p.result().status_code for p in posted] == [200] * 48


MARKER = "zq7MARKERx91"


def marked_refusals(s: Served) -> list[requests.Response]:
    """One request down every refusal path that could echo a value, each carrying MARKER."""
    from privasync.emulators.partner.signature import signed_headers

    def partner(path: str, document: dict[str, object], *, at: float | None = None,
                event_id: str | None = None, secret: str = PARTNER_SECRET) -> requests.Response:
        body = json.dumps(document).encode()
        headers = signed_headers(secret, event_id if event_id is not None
                                 else str(document["event_id"]), body,
                                 time.time() if at is None else at)
        return requests.post(s.url + path, data=body, headers=headers, timeout=scaled(10))

    def form(**fields: str) -> requests.Response:
        base = {"type": "unsubscribe", "fired_at": "2026-01-01 10:00:00",
                "data[list_id]": LIST_ID, "data[email]": f"{MARKER}@example.org"}
        return requests.post(f"{s.url}/webhooks/mailchimp/{MAILCHIMP_TOKEN}",
                             data=urlencode(base | fields), timeout=scaled(10),
                             headers={"Content-Type": "application/x-www-form-urlencoded"})

    def signed_opendsr(document: dict[str, object]) -> requests.Response:
        from privasync.emulators.opendsr.authority import sign

        body = json.dumps(document).encode()
        return requests.post(s.url + OPENDSR, data=body, timeout=scaled(10), headers={
            "Content-Type": "application/json", "X-OpenDSR-Processor-Domain": MARKER,
            "X-OpenDSR-Signature": sign(processor()[0], body)})

    hs = [hubspot_event(subscriptionType=MARKER), hubspot_event(propertyValue=MARKER),
          hubspot_event(eventId=MARKER), hubspot_event(objectId=MARKER),
          hubspot_event(occurredAt=MARKER), hubspot_event(mergedObjectIds=[MARKER]),
          hubspot_event(propertyName=MARKER, propertyValue=MARKER + "\ud800"),
          {MARKER: MARKER}, MARKER]
    answers = [s.hubspot(json.dumps([e]).encode()) for e in hs]
    answers += [s.hubspot(json.dumps({MARKER: 1}).encode()),
                s.hubspot(json.dumps([hubspot_event()] * 101 + [MARKER]).encode())]
    answers += [form(type=MARKER), form(fired_at=MARKER), form(**{"data[list_id]": MARKER}),
                form(**{"data[email]": MARKER}), form(**{f"data[{MARKER}]": "x",
                                                        f"data[{MARKER}][y]": "z"}),
                form(**{f"data[merges][{MARKER}]": "x\x00"}),
                form(type="upemail", **{"data[old_email]": MARKER})]
    answers += [partner(ACKS, ack(status=MARKER)), partner(ACKS, ack(request_id=[MARKER])),
                partner(ACKS, ack(**{MARKER: MARKER})), partner(ACKS, ack(detail=7)),
                partner(ACKS, ack(status="rejected", detail=" ")),
                partner(ACKS, ack(event_id=MARKER * 20), event_id=MARKER * 20),
                partner(ACKS, ack(), secret=MARKER), partner(ACKS, ack(), event_id=MARKER),
                partner(ASKS, ask(kind=MARKER)), partner(ASKS, ask(email=MARKER)),
                partner(ASKS, ask(request_id=MARKER)),
                partner(ASKS, ask(identity_verified=MARKER)),
                partner(ASKS, ask(**{MARKER: 1}))]
    answers += [signed_opendsr(callback()),  # the domain header is the marker
                signed_opendsr(callback(controller_id=MARKER)),
                signed_opendsr(callback(request_status=MARKER)),
                signed_opendsr(callback(subject_request_id=MARKER)),
                signed_opendsr(callback(status_callback_url=MARKER)),
                signed_opendsr(callback(expected_completion_time=MARKER))]
    answers += [requests.get(f"{s.url}/webhooks/mailchimp/{MARKER}", timeout=scaled(10)),
                requests.get(f"{s.url}/webhooks/partners/{MARKER}/ack", timeout=scaled(10)),
                requests.post(f"{s.url}/webhooks/partners/{MARKER}/ack", json={},
                              timeout=scaled(10)),
                requests.post(f"{s.url}/webhooks/partners/contact_centre/{MARKER}", json={},
                              timeout=scaled(10))]
    return answers


def admin_refusals(s: Served) -> list[requests.Response]:
    from core import tokens

    c = s.container
    with c.engine.begin() as conn:
        token = tokens.create(conn, c.keyring, "ops", tokens.SCOPES, c.clock(), actor="cli")
        tokens.create(conn, c.keyring, MARKER.lower(), ("jobs:read",), c.clock(), actor="cli")
    auth = {"Authorization": f"Bearer {token}"}

    def post(path: str, document: object) -> requests.Response:
        return requests.post(s.url + "/api/v1" + path, json=document, headers=auth,
                             timeout=scaled(10))

    return [
        requests.get(s.url + "/api/v1/tokens", headers={"Authorization": f"Bearer {MARKER}"},
                     timeout=scaled(10)),
        post("/tokens", {"name": MARKER.lower(), "scopes": ["jobs:read"]}),
        post("/tokens", {"name": MARKER, "scopes": [MARKER]}),
        post("/tokens", {"name": "x", "scopes": ["jobs:read"], MARKER: 1}),
        post("/requests", {"kind": MARKER, "email": f"{MARKER}@example.org",
                           "identity": "verified"}),
        post("/requests", {"kind": "erasure", "email": MARKER, "identity": "verified"}),
        post("/requests", {"kind": "rectification", "email": f"{MARKER}@example.org",
                           "identity": "verified", "fields": {MARKER: MARKER}}),
        post("/requests", {"kind": "erasure", "email": "a@b.c", "received_at": MARKER,
                           "identity": "verified"}),
        post("/requests", {"kind": "erasure", "email": "a@b.c", "identity": MARKER}),
        post(f"/requests/{MARKER}/extend", {"months": MARKER, "reason": MARKER}),
        post(f"/requests/{MARKER}/reject", {"reason": MARKER}),
        requests.get(f"{s.url}/api/v1/requests/{MARKER}", headers=auth, timeout=scaled(10)),
        requests.get(f"{s.url}/api/v1/requests?status={MARKER}", headers=auth, timeout=scaled(10)),
        requests.get(f"{s.url}/api/v1/breach-scope?destination={MARKER}&from={MARKER}&to=x",
                     headers=auth, timeout=scaled(10)),
        requests.delete(f"{s.url}/api/v1/tokens/{MARKER}", headers=auth, timeout=scaled(10)),
    ]


def test_no_refusal_repeats_what_was_sent_in_its_answer_or_a_log_line(
        served: Served, capfd: pytest.CaptureFixture[str]):
    configure_logging("DEBUG")
    try:
        answers = marked_refusals(served) + admin_refusals(served)
    finally:
        configure_logging("INFO")
    out, err = capfd.readouterr()
    assert "webhook.rejected" in out + err and "admin.refused" in out + err
    for answer in answers:
        assert 400 <= answer.status_code < 500, (answer.request.url, answer.text)
        assert set(answer.json()) >= {"error", "reason"}, answer.text
        assert MARKER not in answer.text and MARKER.lower() not in answer.text, answer.text
    assert MARKER not in out + err and MARKER.lower() not in out + err


def test_the_mailchimp_token_reaches_no_log_line_and_no_answer(
        served: Served, capfd: pytest.CaptureFixture[str]):
    configure_logging("DEBUG")
    try:
        url = f"{served.url}/webhooks/mailchimp/{MAILCHIMP_TOKEN}"
        form = {"type": "unsubscribe", "fired_at": "2026-01-01 10:00:00",
                "data[list_id]": LIST_ID, "data[email]": "someone@example.org"}
        answers = [requests.get(url, timeout=scaled(10)),
                   requests.post(url, data=urlencode(form), timeout=scaled(10), headers={
                       "Content-Type": "application/x-www-form-urlencoded"}),
                   requests.post(url, data="type=teleport", timeout=scaled(10), headers={
                       "Content-Type": "application/x-www-form-urlencoded"}),
                   requests.post(url, data="{}", timeout=scaled(10),
                                 headers={"Content-Type": "application/json"}),
                   requests.get(url[:-1], timeout=scaled(10))]
    finally:
        configure_logging("INFO")
    assert [a.status_code for a in answers] == [200, 200, 400, 415, 401]
    out, err = capfd.readouterr()
    assert "webhook.rejected" in out + err
    assert MAILCHIMP_TOKEN not in out + err and MAILCHIMP_TOKEN[:-1] not in out + err
    assert all(MAILCHIMP_TOKEN not in a.text for a in answers)


@pytest.fixture
def legacy(tmp_path: Path) -> Iterator[Served]:
    url = make_database("sqlite", tmp_path)
    container = build(door_settings(url, tmp_path, hubspot=HubSpotSettings(
        base_url="http://127.0.0.1:9", client_secret=HUBSPOT_SECRET,
        allow_legacy_signatures=True)), environ=door_environ())
    server = AppServer(container).start()
    yield Served(container, server)
    server.stop()
    container.close()


def test_v1_and_v2_signatures_pass_only_where_the_setting_allows_them(
        served: Served, legacy: Served):
    import hashlib

    body = json.dumps([hubspot_event()]).encode()
    v1 = hashlib.sha256(HUBSPOT_SECRET.encode() + body).hexdigest()
    v2 = hashlib.sha256(HUBSPOT_SECRET.encode() + b"POST" + (BASE + HUBSPOT).encode()
                        + body).hexdigest()

    def send(s: Served, version: str, signature: str, **extra: str) -> requests.Response:
        return requests.post(s.url + HUBSPOT, data=body, timeout=scaled(10), headers={
            "Content-Type": "application/json", "X-HubSpot-Signature-Version": version,
            "X-HubSpot-Signature": signature, **extra})

    assert send(served, "v1", v1).status_code == 401  # the default: v3 only
    assert send(served, "v2", v2).status_code == 401
    assert send(legacy, "v1", v1).json() == {"accepted": 1, "duplicate": False}
    assert send(legacy, "v2", v2).json() == {"accepted": 1, "duplicate": True}
    assert send(legacy, "v1", v2).status_code == 401
    assert send(legacy, "v3", v1).status_code == 401
    # A v3 signature present decides alone, even beside a valid v1.
    assert send(legacy, "v1", v1, **{"X-HubSpot-Signature-v3": "AAAA",
                                     "X-HubSpot-Request-Timestamp": "1"}).status_code == 401
