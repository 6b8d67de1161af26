"""The thin Mailchimp client translates HTTP outcomes into privasync's error tree."""

from __future__ import annotations

import pytest
import requests
import responses

from connectors.mailchimp import MailchimpConnector, base_url_for, subscriber_hash
from connectors.mailchimp.client import MailchimpApi
from core.errors import AuthError, ConfigError, PermanentError, TransientError
from core.mappings import SystemMapping
from tests.connectors.mailchimp.conftest import KEYS

BASE = "https://us6.api.mailchimp.com/3.0"


def problem(status: int, title: str) -> dict[str, object]:
    return {"type": "https://mailchimp.com/developer/marketing/docs/errors/", "title": title,
            "status": status, "detail": "d", "instance": "i"}


def test_the_subscriber_hash_is_the_md5_of_the_lowercased_address() -> None:
    assert subscriber_hash("A@B.com") == "357a20e8c56e69d6f9734d23ef9517e8"


def test_an_empty_base_url_is_derived_from_the_keys_data_centre() -> None:
    connector = MailchimpConnector(base_url="", api_key="abc123-us6", list_id="l1",
                                   mapping=SystemMapping(system="mailchimp"), keys=KEYS)
    assert connector.base_url == BASE
    assert connector.name == "mailchimp" and connector.batch_size == 500


@pytest.mark.parametrize("key", ["abc123", "abc-us6.evil.example/", "abc-"])
def test_a_key_without_a_data_centre_is_a_config_error(key: str) -> None:
    with pytest.raises(ConfigError) as refused:
        base_url_for(key)
    assert key not in str(refused.value)


@responses.activate
def test_a_problem_title_becomes_the_error_class() -> None:
    responses.add(responses.PATCH, f"{BASE}/lists/l1/members/h", status=400,
                  json=problem(400, "Member In Compliance State"),
                  content_type="application/problem+json")
    api = MailchimpApi(base_url=BASE, api_key="k-us6", timeout=5)
    with pytest.raises(PermanentError) as refused:
        api.call("PATCH", "/lists/l1/members/h", "update member", body={"status": "subscribed"})
    assert refused.value.error_class == "member_in_compliance_state"
    assert not isinstance(refused.value, TransientError)


@responses.activate
def test_a_forbidden_answer_is_an_auth_error_and_basic_auth_is_sent() -> None:
    responses.add(responses.GET, f"{BASE}/ping", status=403,
                  json=problem(403, "Forbidden"), content_type="application/problem+json")
    api = MailchimpApi(base_url=BASE, api_key="k-us6", timeout=5)
    with pytest.raises(AuthError):
        api.call("GET", "/ping", "ping")
    assert responses.calls[0].request.headers["Authorization"].startswith("Basic ")


@responses.activate
def test_a_429_carries_its_retry_after_and_is_not_retried_inside_the_call() -> None:
    responses.add(responses.GET, f"{BASE}/ping", status=429, headers={"Retry-After": "30"},
                  json=problem(429, "Too Many Requests"), content_type="application/problem+json")
    api = MailchimpApi(base_url=BASE, api_key="k-us6", timeout=5)
    with pytest.raises(TransientError) as limited:
        api.call("GET", "/ping", "ping")
    assert limited.value.retry_after == 30.0
    assert limited.value.error_class == "http_429"
    assert len(responses.calls) == 1


@responses.activate
def test_a_dropped_connection_is_retried_then_reported_as_a_network_error() -> None:
    responses.add(responses.GET, f"{BASE}/ping", body=requests.ConnectionError("reset"))
    api = MailchimpApi(base_url=BASE, api_key="k-us6", timeout=5)
    with pytest.raises(TransientError) as failed:
        api.call("GET", "/ping", "ping")
    assert failed.value.error_class == "network"
    assert len(responses.calls) == 3


@responses.activate
def test_a_missing_member_is_none_when_absence_is_expected() -> None:
    responses.add(responses.GET, f"{BASE}/lists/l1/members/h", status=404,
                  json=problem(404, "Resource Not Found"), content_type="application/problem+json")
    api = MailchimpApi(base_url=BASE, api_key="k-us6", timeout=5)
    assert api.call("GET", "/lists/l1/members/h", "look up", missing_ok=True) is None
    with pytest.raises(PermanentError) as missing:
        api.call("GET", "/lists/l1/members/h", "look up")
    assert missing.value.error_class == "resource_not_found"


@responses.activate
def test_an_action_answers_with_its_status_and_absence_is_an_answer_not_an_error() -> None:
    path = "/lists/l1/members/h/actions/delete-permanent"
    responses.add(responses.POST, f"{BASE}{path}", status=204)
    responses.add(responses.POST, f"{BASE}{path}", status=404,
                  json=problem(404, "Resource Not Found"), content_type="application/problem+json")
    responses.add(responses.POST, f"{BASE}{path}", status=405,
                  json=problem(405, "Method Not Allowed"), content_type="application/problem+json")
    api = MailchimpApi(base_url=BASE, api_key="k-us6", timeout=5)
    assert api.status("POST", path, "forget member") == 204
    assert api.status("POST", path, "forget member") == 404
    with pytest.raises(PermanentError) as refused:
        api.status("POST", path, "forget member")
    assert refused.value.error_class == "method_not_allowed"
