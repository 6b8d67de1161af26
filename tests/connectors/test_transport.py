"""The one way a connector sends a raw request: a vendor's table decides what a refusal is,
and a blip (a dropped connection, a bare 502/503, an unreadable answer) is tried again
within the call."""

from __future__ import annotations

import pytest
import requests
import responses

from connectors.transport import PLAIN, ErrorTable, TimeoutSession, error_for_status, send
from core.errors import AuthError, DeliveryError, PermanentError, Throttled, TransientError

URL = "https://vendor.example/api"


def table() -> ErrorTable:
    return ErrorTable(quiet_429=lambda headers: float(headers.get("x-window", "7")),
                      error_class=lambda status, body: body.get("code"),
                      refusal=lambda status, body, what: AuthError(f"{what}: scopes")
                      if body.get("code") == "SCOPES" else None)


@responses.activate
@pytest.mark.parametrize(("status", "headers", "body", "error", "error_class", "wait"), [
    (429, {}, {}, Throttled, "http_429", 7.0),
    (429, {"X-Window": "2"}, {}, Throttled, "http_429", 2.0),
    (429, {"Retry-After": "30", "X-Window": "2"}, {}, Throttled, "http_429", 30.0),
    (400, {}, {"code": "bad_field"}, PermanentError, "bad_field", None),
    (403, {}, {"code": "SCOPES"}, AuthError, "auth", None),
    (503, {"Retry-After": "5"}, {}, TransientError, "http_503", 5.0),
])
def test_a_refusal_is_what_the_vendors_table_says(
        status: int, headers: dict[str, str], body: dict[str, str],
        error: type[DeliveryError], error_class: str, wait: float | None) -> None:
    responses.add(responses.GET, URL, status=status, headers=headers, json=body)
    with pytest.raises(error) as refused:
        send(TimeoutSession(5), "GET", URL, what="vendor read", errors=table())
    assert type(refused.value) is error and refused.value.error_class == error_class
    assert getattr(refused.value, "retry_after", None) == wait
    assert "vendor read" in str(refused.value)


@responses.activate
def test_a_table_may_leave_retry_after_unread() -> None:
    responses.add(responses.GET, URL, status=429, headers={"Retry-After": "30"})
    with pytest.raises(Throttled) as limited:
        send(TimeoutSession(5), "GET", URL, what="certificate",
             errors=ErrorTable(retry_after_header=False), blips=False)
    assert limited.value.retry_after is None


@responses.activate
def test_an_unreadable_answer_read_as_a_bare_502_is_tried_again_within_the_call() -> None:
    responses.add(responses.GET, URL, body="<html>")
    responses.add(responses.GET, URL, json={"ok": True})

    def read(response: requests.Response) -> object:
        try:
            return response.json()
        except ValueError:
            raise error_for_status(502, "vendor read: not JSON") from None

    assert send(TimeoutSession(5), "GET", URL, what="vendor read", errors=PLAIN,
                read=read) == {"ok": True}
    assert len(responses.calls) == 2


@responses.activate
def test_without_blips_a_dropped_connection_is_reported_at_once() -> None:
    responses.add(responses.GET, URL, body=requests.ConnectionError("reset"))
    with pytest.raises(TransientError) as failed:
        send(TimeoutSession(5), "GET", URL, what="vendor read", errors=PLAIN, blips=False)
    assert failed.value.error_class == "network" and len(responses.calls) == 1
