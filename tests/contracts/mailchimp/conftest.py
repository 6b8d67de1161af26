"""Mailchimp contract tests: the emulator, the connector privasync runs against it, and a
check that every request the connector sent and every answer it got is the shape Mailchimp
publishes (privasync.emulators.contracts.mailchimp).

Tests import the helpers: `from tests.contracts.mailchimp.conftest import conform, ...`."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from pydantic import BaseModel

from connectors.mailchimp import MailchimpConnector
from core.crypto import Keyring
from core.mappings import SystemMapping
from privasync.emulators.contracts.mailchimp.common import PROBLEM_CONTENT_TYPE, Problem
from privasync.emulators.contracts.mailchimp.lists import AudienceList, Ping, WebhookList
from privasync.emulators.contracts.mailchimp.members import (
    BatchAnswer,
    BatchRequest,
    Member,
    MembersPage,
)
from privasync.emulators.http import Emulator, Request, Response
from privasync.emulators.mailchimp import MailchimpEmulator
from tests.emulators.conftest import serve
from tests.timing import scaled

KEY = "contractkey-us6"
LIST = "c0n7rac7ed"
KEYS = Keyring(b"contract-test-secret-0123456789ab", [b"contract-kek-0123456789abcdefghij"])
MAPPING = SystemMapping.model_validate({
    "system": "mailchimp", "purposes": ["product_news", "offers"],
    "consent": {"all_email": ["product_news", "offers"]},
    "fields": {"FNAME": {"canonical": "first_name", "category": "user.name.first",
                         "purposes": ["offers"]}}})
_LIST = rf"/3\.0/lists/{LIST}"
# What each call privasync makes sends and gets back: (method, path) -> (request, answer).
ROUTES: list[tuple[str, re.Pattern[str], type[BaseModel] | None, type[BaseModel] | None]] = [
    ("GET", re.compile(r"/3\.0/ping"), None, Ping),
    ("GET", re.compile(_LIST), None, AudienceList),
    ("POST", re.compile(_LIST), BatchRequest, BatchAnswer),
    ("GET", re.compile(rf"{_LIST}/webhooks"), None, WebhookList),
    ("GET", re.compile(rf"{_LIST}/members"), None, MembersPage),
    ("GET", re.compile(rf"{_LIST}/members/[^/]+"), None, Member),
    ("PATCH", re.compile(rf"{_LIST}/members/[^/]+"), None, Member),
    ("PUT", re.compile(rf"{_LIST}/members/[^/]+"), None, Member),
    ("POST", re.compile(rf"{_LIST}/members/[^/]+/actions/delete-permanent"), None, None),
]


@pytest.fixture(scope="module")
def running() -> Iterator[MailchimpEmulator]:
    yield from serve(MailchimpEmulator(api_key=KEY, list_id=LIST))


@pytest.fixture
def mc(running: MailchimpEmulator) -> MailchimpEmulator:
    running.reset()
    return running


@pytest.fixture
def connector(mc: MailchimpEmulator) -> MailchimpConnector:
    return MailchimpConnector(base_url=f"{mc.url}/3.0", api_key=KEY, list_id=LIST,
                              mapping=MAPPING, keys=KEYS, timeout=scaled(5),
                              intake_path="/webhooks/mailchimp/contract-token")


@pytest.fixture
def exchanges(connector: MailchimpConnector) -> list[requests.Response]:
    """Every answer the connector's HTTP session gets (each holding its request), in order:
    recorded by a requests response hook on the connector's own session."""
    seen: list[requests.Response] = []

    def record(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        seen.append(response)

    connector._api._session.hooks["response"].append(record)
    return seen


@dataclass
class Intake:
    """privasync's intake as Mailchimp reaches it: ``url`` answers the validation GET and
    every POST with 200; ``bodies`` holds what was posted."""

    url: str
    bodies: list[bytes] = field(default_factory=list)


@pytest.fixture(scope="module")
def intake() -> Iterator[Intake]:
    receiver = Emulator()
    found = Intake("")

    def keep(request: Request, match: object) -> Response:
        found.bodies.append(request.body)
        return Response(200)

    receiver.route("GET", r"/.*", lambda request, match: Response(200))
    receiver.route("POST", r"/.*", keep)
    receiver.start()
    found.url = receiver.url
    yield found
    receiver.stop()


@pytest.fixture
def api(mc: MailchimpEmulator) -> requests.Session:
    session = requests.Session()
    session.auth = ("anystring", KEY)
    return session


def problem(response: requests.Response, status: int, title: str) -> Problem:
    """The refusal Mailchimp answers: ``status``, a problem document titled ``title``."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == PROBLEM_CONTENT_TYPE
    found = Problem.model_validate(response.json())
    assert (found.status, found.title) == (status, title)
    return found


def conform(response: requests.Response) -> str:
    """Check one exchange against its contract; return ``METHOD path`` for the record."""
    method = response.request.method or ""
    path = str(response.request.path_url).split("?")[0]
    matching = [(pattern, request_model, answer_model)
                for want, pattern, request_model, answer_model in ROUTES
                if want == method and pattern.fullmatch(path)]
    assert matching, f"no contract for {method} {path}"
    pattern, request_model, answer_model = matching[0]
    if request_model is not None:
        request_model.model_validate(json.loads(response.request.body or b"null"))
    if response.status_code // 100 != 2:
        problem(response, response.status_code, Problem.model_validate(response.json()).title)
    elif answer_model is None:
        assert response.status_code == 204 and not response.content
    else:
        answer_model.model_validate(response.json())
    return f"{method} {pattern.pattern}"
