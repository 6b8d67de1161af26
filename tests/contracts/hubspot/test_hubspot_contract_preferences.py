"""Communication preferences as privasync uses them: v4 batch write (raw HTTP: hubspot-api-
client 12 has no v4), v3 definitions (through the client, validation on), token info (raw:
not in the client); answers held to privasync.emulators.contracts.hubspot, refusals to HubSpot's."""

from __future__ import annotations

from typing import Any

import pytest
from hubspot import HubSpot

from privasync.emulators.contracts.hubspot.preferences import (
    ActionResponseWithResultsPublicStatus,
    BatchResponsePublicStatus,
    BatchResponsePublicStatusBulkResponse,
    PublicSubscriptionStatusesResponse,
    SubscriptionDefinitionsResponse,
)
from privasync.emulators.contracts.hubspot.scopes import MissingScopes
from privasync.emulators.contracts.hubspot.webhooks import AccessTokenInfo
from privasync.emulators.hubspot import HubSpotEmulator
from tests.contracts.hubspot.conftest import TOKEN, conforms, raw, refused

V4 = "/communication-preferences/v4/statuses"
BATCH_WRITE = "communication_preferences.statuses.batch.write"


def row(state: str, subscription: int = 101, **extra: Any) -> dict[str, Any]:
    return {"subscriberIdString": "ada@example.org", "channel": "EMAIL",
            "statusState": state, "subscriptionId": subscription, **extra}


GRANT = {"legalBasis": "CONSENT_WITH_NOTICE", "legalBasisExplanation": "signup form"}


def write(hub: HubSpotEmulator, *rows: dict[str, Any]) -> Any:
    return raw(hub, "POST", f"{V4}/batch/write", {"inputs": list(rows)})


def test_v4_batch_write_takes_unsubscribed_and_answers_the_contract(
        hub: HubSpotEmulator) -> None:
    answer = write(hub, row("UNSUBSCRIBED", 101), row("SUBSCRIBED", 102, **GRANT))
    assert answer.status_code == 200
    body = conforms(BatchResponsePublicStatus, answer.content)
    assert [(r.subscriptionId, r.status, r.setStatusSuccessReason) for r in body.results] == [
        (101, "UNSUBSCRIBED", "REQUESTED_CHANGE_OCCURRED"),
        (102, "SUBSCRIBED", "REQUESTED_CHANGE_OCCURRED")]


def test_v4_says_when_nothing_changed_and_when_a_resubscribe_occurred(
        hub: HubSpotEmulator) -> None:
    write(hub, row("UNSUBSCRIBED"))
    again = conforms(BatchResponsePublicStatus, write(hub, row("UNSUBSCRIBED")).content)
    back = conforms(BatchResponsePublicStatus, write(hub, row("SUBSCRIBED", **GRANT)).content)
    assert again.results[0].setStatusSuccessReason == "NO_STATUS_CHANGE"
    assert back.results[0].setStatusSuccessReason == "RESUBSCRIBE_OCCURRED"


def test_v4_refuses_v3s_not_subscribed_for_the_whole_call(hub: HubSpotEmulator) -> None:
    answer = write(hub, row("UNSUBSCRIBED", 101), row("NOT_SUBSCRIBED", 102))
    error = refused(answer, 400, "VALIDATION_ERROR")
    assert "NOT_SUBSCRIBED" in error.message and "UNSUBSCRIBED" in error.message
    assert hub.subscription_status("ada@example.org", 101) is None  # nothing applied


@pytest.mark.parametrize("broken", [
    {"channel": "EMAIL", "statusState": "UNSUBSCRIBED", "subscriptionId": 101},
    row("UNSUBSCRIBED", channel="SMS"),
    row("UNSUBSCRIBED", legalBasis="BECAUSE"),
    row("UNSUBSCRIBED", unknownField=True),
])
def test_v4_refuses_a_row_breaking_its_schema(hub: HubSpotEmulator,
                                              broken: dict[str, Any]) -> None:
    refused(write(hub, broken), 400, "VALIDATION_ERROR")


def test_v4_refuses_more_than_100_rows(hub: HubSpotEmulator) -> None:
    rows = [row("UNSUBSCRIBED") | {"subscriberIdString": f"p{i}@example.org"}
            for i in range(101)]
    refused(write(hub, *rows), 400, "VALIDATION_ERROR")


def test_a_row_hubspot_cannot_apply_comes_back_as_a_standard_error(
        hub: HubSpotEmulator) -> None:
    answer = write(hub, row("UNSUBSCRIBED", 101), row("UNSUBSCRIBED", 999),
                   row("SUBSCRIBED", 102))
    body = conforms(BatchResponsePublicStatus, answer.content)
    assert answer.status_code == 200 and body.numErrors == 2
    assert body.errors is not None
    assert [(e.category, e.context["subscriptionId"]) for e in body.errors] == [
        ("OBJECT_NOT_FOUND", ["999"]), ("VALIDATION_ERROR", ["102"])]
    assert body.errors[1].errors[0].in_ == "legalBasis"


def test_v4_batch_write_needs_its_own_scope_not_read_write(hub: HubSpotEmulator) -> None:
    hub.scopes = ("communication_preferences.read_write",)
    error = refused(write(hub, row("UNSUBSCRIBED")), 403, "MISSING_SCOPES")
    missing = conforms(MissingScopes, error.model_dump(by_alias=True, exclude_none=True))
    assert missing.errors and missing.errors[0].context == {"requiredGranularScopes": [BATCH_WRITE]}


def test_v4_reads_and_unsubscribe_all_speak_v4(hub: HubSpotEmulator) -> None:
    write(hub, row("UNSUBSCRIBED", 101))
    read = raw(hub, "POST", f"{V4}/batch/read", {"inputs": ["ada@example.org"]},
               params={"channel": "EMAIL"})
    body = conforms(BatchResponsePublicStatusBulkResponse, read.content)
    assert {s.subscriptionId: s.status for s in body.results[0].statuses} == {
        101: "UNSUBSCRIBED", 102: "NOT_SPECIFIED"}
    everything = raw(hub, "POST", f"{V4}/ada%40example.org/unsubscribe-all",
                     params={"channel": "EMAIL"})
    done = conforms(ActionResponseWithResultsPublicStatus, everything.content)
    assert {(s.status, s.setStatusSuccessReason) for s in done.results} == {
        ("UNSUBSCRIBED", "UNSUBSCRIBE_FROM_ALL_OCCURRED")}
    refused(raw(hub, "POST", f"{V4}/batch/read", {"inputs": []}), 400, "VALIDATION_ERROR")


def test_v3_keeps_v3s_spelling(hub: HubSpotEmulator) -> None:
    write(hub, row("UNSUBSCRIBED", 101))
    status = raw(hub, "GET", "/communication-preferences/v3/status/email/ada%40example.org")
    body = conforms(PublicSubscriptionStatusesResponse, status.content)
    assert [s.status for s in body.subscriptionStatuses] == ["NOT_SUBSCRIBED"]


def test_v3_definitions_through_the_client_answer_the_contract(hub: HubSpotEmulator,
                                                              client: HubSpot) -> None:
    api = client.communication_preferences.definition_api
    answer = api.get_page_with_http_info(_preload_content=False)
    body = conforms(SubscriptionDefinitionsResponse, answer.data)
    assert answer.status == 200
    assert [d.id for d in body.subscriptionDefinitions] == ["101", "102"]
    assert [d.id for d in api.get_page().subscription_definitions] == ["101", "102"]


def test_token_info_answers_the_tokens_scopes_and_refuses_an_unknown_token(
        hub: HubSpotEmulator) -> None:
    path = "/oauth/v2/private-apps/get/access-token-info"
    known = raw(hub, "POST", path, {"tokenKey": TOKEN}, headers={"Authorization": ""})
    assert BATCH_WRITE in conforms(AccessTokenInfo, known.content).scopes
    unknown = raw(hub, "POST", path, {"tokenKey": "pat-other"}, headers={"Authorization": ""})
    refused(unknown, 400, "VALIDATION_ERROR")
