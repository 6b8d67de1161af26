"""lookup_emails through hubspot-api-client against the emulator."""

from __future__ import annotations

import pytest

from connectors.hubspot import HubSpotConnector
from core.errors import AuthError, TransientError
from core.mappings import SystemMapping
from core.model import SystemRef
from privasync.emulators.http import Fault
from privasync.emulators.hubspot import HubSpotEmulator
from tests.connectors.hubspot.conftest import TOKEN
from tests.timing import scaled

READ = "/crm/v3/objects/contacts/batch/read"


def connector(base_url: str, token: str = TOKEN) -> HubSpotConnector:
    return HubSpotConnector(base_url=base_url, access_token=token, client_secret="s",
                            mapping=SystemMapping(system="hubspot"), timeout=scaled(5))


def ref(contact_id: str) -> SystemRef:
    return SystemRef("hubspot", f"contact:{contact_id}")


def test_found_contacts_come_back_and_unknown_ones_are_absent(hub: HubSpotEmulator) -> None:
    ada = hub.create_contact("ada@example.org")
    found = connector(hub.url).lookup_emails(
        [ref(ada), ref("424242"), SystemRef("salesforce", "contact:003A"),
         SystemRef("hubspot", "company:7")])
    assert found == {ref(ada): "ada@example.org"}
    assert hub.total_calls() == hub.total_calls(READ) == 1


def test_more_than_100_refs_are_read_100_at_a_time(hub: HubSpotEmulator) -> None:
    ids = [hub.create_contact(f"p{i}@example.org") for i in range(150)]
    found = connector(hub.url).lookup_emails([ref(i) for i in ids])
    assert len(found) == 150
    assert found[ref(ids[149])] == "p149@example.org"
    assert hub.total_calls(READ) == 2


def test_no_hubspot_refs_means_no_call(hub: HubSpotEmulator) -> None:
    assert connector(hub.url).lookup_emails([SystemRef("mailchimp", "member:x")]) == {}
    assert hub.total_calls() == 0


def test_a_rejected_token_is_an_auth_error(hub: HubSpotEmulator) -> None:
    with pytest.raises(AuthError):
        connector(hub.url, token="wrong").lookup_emails([ref("1001")])


def test_a_rate_limit_is_transient_with_the_window_as_retry_after(hub: HubSpotEmulator) -> None:
    hub.inject(Fault(429, {"errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING"}))
    with pytest.raises(TransientError) as caught:
        connector(hub.url).lookup_emails([ref("1001")])
    assert caught.value.retry_after == 10.0


def test_a_single_bad_gateway_is_retried_within_the_call(hub: HubSpotEmulator) -> None:
    ada = hub.create_contact("ada@example.org")
    hub.inject(Fault(503, {"status": "error"}))
    assert connector(hub.url).lookup_emails([ref(ada)]) == {ref(ada): "ada@example.org"}
    assert hub.total_calls(READ) == 1


def test_a_server_error_is_transient(hub: HubSpotEmulator) -> None:
    hub.inject(Fault(500, {"status": "error"}))
    with pytest.raises(TransientError, match="HTTP 500"):
        connector(hub.url).lookup_emails([ref("1001")])


def test_an_unreachable_hubspot_is_a_transient_network_error() -> None:
    with pytest.raises(TransientError) as caught:
        connector("http://127.0.0.1:9").lookup_emails([ref("1001")])
    assert caught.value.error_class == "network"
