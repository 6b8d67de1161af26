"""Mailchimp's refusals, as the emulator answers them: the status the documentation gives
and a problem document (type, title, status, detail, instance; ``errors`` naming fields
for an invalid resource)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from connectors.mailchimp import subscriber_hash
from privasync.emulators.contracts.mailchimp.common import PROBLEM_TYPE
from privasync.emulators.mailchimp import MailchimpEmulator
from tests.contracts.mailchimp.conftest import KEY, LIST, problem
from tests.timing import scaled


def url(mc: MailchimpEmulator, path: str) -> str:
    return f"{mc.url}/3.0{path}"


def test_a_wrong_or_missing_api_key_is_401_api_key_invalid(mc: MailchimpEmulator) -> None:
    for auth in (("anystring", "wrong-us6"), None):
        found = problem(requests.get(url(mc, "/ping"), auth=auth, timeout=scaled(5)), 401,
                        "API Key Invalid")
        assert found.type == PROBLEM_TYPE and found.instance
    assert requests.get(url(mc, "/ping"), headers={"Authorization": f"Bearer {KEY}"},
                        timeout=scaled(5)).status_code == 200


def test_an_unknown_list_member_or_path_is_404_resource_not_found(
        mc: MailchimpEmulator, api: requests.Session) -> None:
    for path in ("/lists/nosuchlist", f"/lists/{LIST}/members/{subscriber_hash('x@y.z')}",
                 f"/lists/{LIST}/members/nobody@example.com", "/no/such/resource"):
        problem(api.get(url(mc, path), timeout=scaled(5)), 404, "Resource Not Found")


def test_a_method_a_resource_does_not_take_is_405(mc: MailchimpEmulator,
                                                  api: requests.Session) -> None:
    problem(api.delete(url(mc, f"/lists/{LIST}/webhooks"), timeout=scaled(5)), 405,
            "Method Not Allowed")


@pytest.mark.parametrize(("path", "method", "body", "field"), [
    ("/lists/{list}", "POST", {"members": [{"email_address": "a@b.c", "status": "gone"}]},
     "members.0.status"),
    ("/lists/{list}", "POST", {"members": [{"email_address": "a@b.c", "tag": "x"}]},
     "members.0.tag"),
    ("/lists/{list}", "POST", {"update_existing": True}, "members"),
    ("/lists/{list}", "POST", {"members": [{"email_address": f"p{i}@b.c", "status": "pending"}
                                           for i in range(501)]}, "members"),
    ("/lists/{list}/members/{hash}", "PUT", {"status_if_new": "subscribed"}, "email_address"),
    ("/lists/{list}/members/{hash}", "PATCH", {"status": "archived"}, "status"),
    ("/lists/{list}/webhooks", "POST", {"url": "http://127.0.0.1:9/h", "sources": {"api": 1}},
     "sources.api"),
])
def test_a_body_outside_the_schema_is_400_invalid_resource_naming_the_field(
        mc: MailchimpEmulator, api: requests.Session, path: str, method: str,
        body: dict[str, Any], field: str) -> None:
    mc.add_member("a@b.c")
    target = url(mc, path.format(list=LIST, hash=subscriber_hash("a@b.c")))
    found = problem(api.request(method, target, json=body,
                                timeout=scaled(5)), 400, "Invalid Resource")
    assert found.errors is not None and field in [e.field for e in found.errors]
    assert mc.member("p0@b.c") is None


def test_a_body_that_is_not_a_json_object_is_400_json_parse_error(
        mc: MailchimpEmulator, api: requests.Session) -> None:
    target = url(mc, f"/lists/{LIST}")
    problem(api.post(target, data=b"{not json", headers={"Content-Type": "application/json"},
                     timeout=scaled(5)), 400, "JSON Parse Error")
    problem(api.post(target, json=[1, 2], timeout=scaled(5)), 400, "JSON Parse Error")
    problem(api.post(target, data=b'{"members": []}', headers={"Content-Type": "text/plain"},
                     timeout=scaled(5)), 400, "JSON Parse Error")


def test_more_simultaneous_requests_than_the_cap_get_a_429_problem(
        mc: MailchimpEmulator) -> None:
    mc.latency_seconds = 0.3

    def ping(_: int) -> requests.Response:
        return requests.get(url(mc, "/ping"), auth=("anystring", KEY), timeout=scaled(10))

    with ThreadPoolExecutor(max_workers=14) as pool:
        answers = list(pool.map(ping, range(14)))
    refused = [r for r in answers if r.status_code == 429]
    assert refused
    for response in refused:
        problem(response, 429, "Too Many Requests")
