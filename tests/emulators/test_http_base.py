"""The emulators' base server: what every vendor emulator takes from it, on a real socket."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from privasync.emulators.http import Emulator, Fault, Request, Response
from privasync.emulators.hubspot import HubSpotEmulator
from privasync.emulators.mailchimp import MailchimpEmulator
from tests.emulators.conftest import serve
from tests.timing import scaled, wait_until


class Echo(Emulator):
    name = "echo"

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Request] = []
        self.route("GET", "/items/(?P<id>[^/]+)", self._echo)
        self.route("POST", "/items", self._echo)
        self.route("DELETE", "/items/(?P<id>[^/]+)", lambda request, match: Response(204))
        self.route("GET", "/text", lambda request, match: Response(
            200, "plain", content_type="text/plain"))

    def _echo(self, request: Request, match: re.Match[str]) -> Response:
        with self.lock:
            self.seen.append(request)
        return Response(200, {"path": request.path, **match.groupdict()})


@pytest.fixture
def echo() -> Iterator[Echo]:
    yield from serve(Echo())


def test_a_request_arrives_as_http_server_passed_it(echo: Echo) -> None:
    response = requests.post(f"{echo.url}/items?a=1&a=2&blank=&b=x+y", data=b"\x00raw",
                             headers={"X-Custom": "Value"}, timeout=scaled(5))
    assert response.status_code == 200
    got = echo.seen[-1]
    assert (got.method, got.path, got.body) == ("POST", "/items", b"\x00raw")
    assert got.query == {"a": ["1", "2"], "b": ["x y"]}
    assert got.headers["x-custom"] == "Value" and got.arg("a") == "1"
    quoted = requests.get(f"{echo.url}/items/ann%40example.com", timeout=scaled(5)).json()
    assert quoted == {"path": "/items/ann%40example.com", "id": "ann%40example.com"}


def test_framing_content_type_only_with_a_body(echo: Echo) -> None:
    empty = requests.delete(f"{echo.url}/items/1", timeout=scaled(5))
    assert empty.status_code == 204 and "Content-Type" not in empty.headers
    assert empty.headers["Content-Length"] == "0"
    text = requests.get(f"{echo.url}/text", timeout=scaled(5))
    assert text.headers["Content-Type"] == "text/plain" and text.text == "plain"
    echo.inject(Fault(429, headers={"Retry-After": "3"}))
    refused = requests.get(f"{echo.url}/items/1", timeout=scaled(5))
    assert (refused.status_code, refused.headers["Retry-After"]) == (429, "3")
    assert "Content-Type" not in refused.headers


def test_routing_counting_and_the_log(echo: Echo) -> None:
    session = requests.Session()
    missing = session.get(f"{echo.url}/nowhere", timeout=scaled(5))
    assert missing.status_code == 404 and missing.json() == {"message": "no route for GET /nowhere"}
    assert session.put(f"{echo.url}/items/1", timeout=scaled(5)).status_code == 404
    assert session.get(f"{echo.url}/items/7", timeout=scaled(5)).status_code == 200
    assert session.request("OPTIONS", f"{echo.url}/items/7", timeout=scaled(5)).status_code == 501
    assert dict(echo.calls) == {"GET /items/7": 1}
    assert echo.total_calls("/items") == 1
    assert list(echo.log) == [("GET", "/nowhere", 404), ("PUT", "/items/1", 404),
                              ("GET", "/items/7", 200)]


def test_a_delayed_answer_holds_up_no_other_request(echo: Echo) -> None:
    echo.inject(Fault(503, delay_seconds=1.0, path_pattern="slow"))
    delayed: list[int] = []
    waiter = threading.Thread(target=lambda: delayed.append(
        requests.get(f"{echo.url}/items/slow", timeout=scaled(5)).status_code))
    started = time.monotonic()
    waiter.start()
    time.sleep(0.1)
    for _ in range(5):
        assert requests.get(f"{echo.url}/items/fast", timeout=scaled(5)).status_code == 200
    assert time.monotonic() - started < 0.9
    waiter.join()
    assert delayed == [503] and time.monotonic() - started >= 1.0


def test_start_returns_listening_and_stop_frees_the_port() -> None:
    port = 0
    for _ in range(20):
        emulator = Echo()
        url = emulator.start(port=port)
        port = int(url.rsplit(":", 1)[1])
        assert requests.get(f"{url}/items/1", timeout=scaled(5)).status_code == 200
        emulator.stop()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=scaled(1)).close()


def test_stop_does_not_wait_out_a_pending_delay() -> None:
    emulator = Echo()
    url = emulator.start()
    emulator.inject(Fault(504, delay_seconds=30))
    answers: list[int] = []
    waiter = threading.Thread(target=lambda: answers.append(
        requests.get(f"{url}/items/1", timeout=scaled(10)).status_code))
    waiter.start()
    time.sleep(0.2)
    started = time.monotonic()
    emulator.stop()
    waiter.join()
    assert time.monotonic() - started < 2 and answers == [504]


# A vendor slowed by ``latency_seconds``, and a call it answers (through the slow path).
SLOW_VENDORS = {
    "hubspot": (lambda: HubSpotEmulator(access_token="pat-slow"), "/crm/v3/objects/contacts/1",
                "pat-slow"),
    "mailchimp": (lambda: MailchimpEmulator(api_key="slowkey-us6"), "/3.0/ping", "slowkey-us6"),
}


@pytest.mark.parametrize("vendor", sorted(SLOW_VENDORS))
def test_stop_answers_a_call_held_by_the_vendors_latency_at_once(vendor: str) -> None:
    # A test that kills the client mid-call leaves such a call behind; the stop used to wait
    # out the latency (or give up after 5 s and drop the call).
    make, path, token = SLOW_VENDORS[vendor]
    emulator = make()
    url = emulator.start()
    emulator.latency_seconds = 120.0
    answers: list[int] = []
    waiter = threading.Thread(target=lambda: answers.append(requests.get(
        f"{url}{path}", headers={"Authorization": f"Bearer {token}"},
        timeout=scaled(60)).status_code), daemon=True)
    waiter.start()
    wait_until("the call is in the emulator's hands", lambda: emulator.total_calls() == 1)
    emulator.stop()
    waiter.join(timeout=scaled(30))
    assert answers and answers[0] < 500, answers
