"""The HubSpot emulator and the official client, with client-side validation on, for the
contract tests; and the checks every answer goes through.

Tests import from here: ``from tests.contracts.hubspot.conftest import TOKEN, conforms``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, TypeVar

import pytest
import requests
from hubspot import HubSpot
from pydantic import BaseModel

from privasync.emulators.contracts.hubspot.common import Error
from privasync.emulators.hubspot import HubSpotEmulator
from tests.emulators.conftest import serve
from tests.timing import scaled

TOKEN, SECRET = "pat-contract", "contract-secret"
M = TypeVar("M", bound=BaseModel)


@pytest.fixture(scope="module")
def server() -> Iterator[HubSpotEmulator]:
    yield from serve(HubSpotEmulator(access_token=TOKEN, client_secret=SECRET))


@pytest.fixture
def hub(server: HubSpotEmulator) -> HubSpotEmulator:
    server.reset()
    return server


@pytest.fixture
def client(hub: HubSpotEmulator) -> HubSpot:
    """hubspot-api-client 12 with client-side validation on: it refuses to send a request
    its models find invalid, and to read an answer missing a required field or outside
    an enum."""
    return HubSpot(access_token=TOKEN, host=hub.url, client_side_validation=True)


def conforms(model: type[M], body: bytes | str | Any) -> M:
    """The answer as its contract model; fails the test if it breaks the contract."""
    data = json.loads(body) if isinstance(body, bytes | str) else body
    return model.model_validate(data)


def raw(hub: HubSpotEmulator, method: str, path: str, body: Any = None, *,
        params: dict[str, str] | None = None, headers: dict[str, str] | None = None,
        data: bytes | None = None) -> requests.Response:
    """A call over plain HTTP, for endpoints hubspot-api-client 12 lacks (v4 statuses, token
    info) and for requests its validation would not let out."""
    sent = {"Authorization": f"Bearer {TOKEN}"} | (headers or {})
    return requests.request(method, hub.url + path, json=body, data=data, params=params,
                            headers=sent, timeout=scaled(5))


def refused(response: requests.Response, status: int, category: str) -> Error:
    """A refusal: this status, HubSpot's ``Error`` body, this category."""
    assert response.status_code == status, response.text
    error = conforms(Error, response.content)
    assert error.category == category
    return error
