"""Contacts v3 and Properties v3 as privasync calls them, driven through hubspot-api-client
(client-side validation on), every answer held to privasync.emulators.contracts.hubspot.contacts and
every refusal to the spec's Error."""

from __future__ import annotations

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInput,
    BatchReadInputSimplePublicObjectId,
    PublicGdprDeleteInput,
    PublicMergeInput,
    SimplePublicObjectBatchInput,
)
from hubspot.crm.contacts.exceptions import ApiException

from privasync.emulators.contracts.hubspot.common import RATE_LIMIT_HEADERS, Error, RateLimited
from privasync.emulators.contracts.hubspot.contacts import (
    BatchResponseSimplePublicObject,
    BatchResponseSimplePublicObjectWithErrors,
    CollectionResponsePropertyNoPaging,
    SimplePublicObject,
)
from privasync.emulators.contracts.hubspot.scopes import MissingScopes
from privasync.emulators.hubspot import HubSpotEmulator
from tests.contracts.hubspot.conftest import conforms, raw, refused

CONTACTS = "/crm/v3/objects/contacts"


def _config(client: HubSpot) -> object:
    """The configuration (validation on) that request models are built and checked with."""
    return client.crm.contacts.batch_api.api_client.configuration


def read_input(client: HubSpot, ids: list[str], **kwargs: object) -> object:
    return BatchReadInputSimplePublicObjectId(
        inputs=[{"id": i} for i in ids], properties=["email"], properties_with_history=[],
        local_vars_configuration=_config(client), **kwargs)


def test_batch_read_by_id_and_by_email_answers_the_contract(hub: HubSpotEmulator,
                                                            client: HubSpot) -> None:
    known = hub.create_contact("ada@example.org")
    batch_api = client.crm.contacts.batch_api
    by_id = batch_api.read_with_http_info(read_input(client, [known]), _preload_content=False)
    by_email = batch_api.read_with_http_info(
        read_input(client, ["ADA@example.org", "nobody@example.org"], id_property="email"),
        _preload_content=False)

    assert (by_id.status, by_email.status) == (200, 207)
    assert conforms(BatchResponseSimplePublicObject, by_id.data).results[0].id == known
    partial = conforms(BatchResponseSimplePublicObjectWithErrors, by_email.data)
    assert [r.id for r in partial.results] == [known]
    assert partial.errors and partial.errors[0].context["ids"] == ["nobody@example.org"]
    # and the client reads it with its own validation on
    model = batch_api.read(read_input(client, [known]))
    assert model.results[0].properties["email"] == "ada@example.org"


def test_a_batch_read_without_properties_with_history_is_refused(hub: HubSpotEmulator) -> None:
    # Raw HTTP: with validation on, the client itself refuses to build this request.
    answer = raw(hub, "POST", f"{CONTACTS}/batch/read",
                 {"properties": ["email"], "inputs": [{"id": "1"}]})
    error = refused(answer, 400, "VALIDATION_ERROR")
    assert "propertiesWithHistory" in error.message


def test_the_client_itself_will_not_send_a_batch_read_without_it(client: HubSpot) -> None:
    with pytest.raises(ValueError, match="properties_with_history"):
        BatchReadInputSimplePublicObjectId(inputs=[{"id": "1"}], properties=["email"],
                                           local_vars_configuration=_config(client))


def test_batch_update_answers_the_contract_and_names_unknown_ids(hub: HubSpotEmulator,
                                                                  client: HubSpot) -> None:
    known = hub.create_contact("ada@example.org")
    config = _config(client)
    inputs = [SimplePublicObjectBatchInput(id=i, properties={"firstname": "Ada"},
                                           local_vars_configuration=config)
              for i in (known, "999999")]
    answer = client.crm.contacts.batch_api.update_with_http_info(
        BatchInputSimplePublicObjectBatchInput(inputs=inputs, local_vars_configuration=config),
        _preload_content=False)
    assert answer.status == 207
    body = conforms(BatchResponseSimplePublicObjectWithErrors, answer.data)
    assert [r.properties["firstname"] for r in body.results] == ["Ada"]
    assert body.errors and (body.errors[0].category, body.errors[0].context["ids"]) == (
        "OBJECT_NOT_FOUND", ["999999"])


@pytest.mark.parametrize(("name", "code"), [("frstname", "PROPERTY_DOESNT_EXIST"),
                                            ("hs_email_optout", "READ_ONLY_VALUE"),
                                            ("hs_object_id", "READ_ONLY_VALUE")])
def test_batch_update_refuses_unknown_and_read_only_properties_whole(
        hub: HubSpotEmulator, name: str, code: str) -> None:
    known = hub.create_contact("ada@example.org", firstname="Ada")
    answer = raw(hub, "POST", f"{CONTACTS}/batch/update", {"inputs": [
        {"id": known, "properties": {"firstname": "Changed", name: "x"}}]})
    error = refused(answer, 400, "VALIDATION_ERROR")
    assert error.errors and (error.errors[0].code, error.errors[0].context) == (
        code, {"propertyName": [name]})
    assert (hub.contact(known) or {})["firstname"] == "Ada"  # nothing of the call applied


def test_more_than_100_inputs_are_refused(hub: HubSpotEmulator) -> None:
    answer = raw(hub, "POST", f"{CONTACTS}/batch/update", {"inputs": [
        {"id": str(i), "properties": {"firstname": "A"}} for i in range(101)]})
    refused(answer, 400, "VALIDATION_ERROR")


def test_gdpr_delete_answers_204_by_email_and_by_id(hub: HubSpotEmulator,
                                                   client: HubSpot) -> None:
    ada = hub.create_contact("ada@example.org")
    hub.create_contact("bob@example.org")
    config = _config(client)
    basic = client.crm.contacts.basic_api
    _, by_id, _ = basic.purge_with_http_info(PublicGdprDeleteInput(
        object_id=ada, local_vars_configuration=config))
    _, by_email, _ = basic.purge_with_http_info(PublicGdprDeleteInput(
        object_id="bob@example.org", id_property="email", local_vars_configuration=config))
    _, unknown_email, _ = basic.purge_with_http_info(PublicGdprDeleteInput(
        object_id="cy@example.org", id_property="email", local_vars_configuration=config))
    assert (by_id, by_email, unknown_email) == (204, 204, 204)
    assert hub.is_blocklisted("cy@example.org")  # the spec: an unknown address is blocklisted


def test_gdpr_delete_of_an_unknown_id_is_a_404_in_hubspots_shape(client: HubSpot) -> None:
    with pytest.raises(ApiException) as caught:
        client.crm.contacts.basic_api.purge(PublicGdprDeleteInput(
            object_id="424242", local_vars_configuration=_config(client)))
    assert caught.value.status == 404
    assert conforms(Error, caught.value.body).category == "OBJECT_NOT_FOUND"


def test_merge_answers_the_merged_contact(hub: HubSpotEmulator, client: HubSpot) -> None:
    primary = hub.create_contact("ada@example.org")
    other = hub.create_contact("ada.l@example.org")
    answer = client.crm.contacts.basic_api.merge_with_http_info(PublicMergeInput(
        primary_object_id=primary, object_id_to_merge=other,
        local_vars_configuration=_config(client)), _preload_content=False)
    assert answer.status == 200
    assert conforms(SimplePublicObject, answer.data).id == primary


def test_contact_properties_answer_the_contract_and_say_what_is_read_only(
        client: HubSpot) -> None:
    answer = client.crm.properties.core_api.get_all_with_http_info(
        "contacts", _preload_content=False)
    body = conforms(CollectionResponsePropertyNoPaging, answer.data)
    read_only = {p.name for p in body.results
                 if p.modificationMetadata and p.modificationMetadata.readOnlyValue}
    assert answer.status == 200
    assert {"hs_email_optout", "hs_object_id"} <= read_only
    assert "firstname" not in read_only
    assert client.crm.properties.core_api.get_all("contacts").results  # the client's own read


@pytest.mark.parametrize(("method", "path", "body", "scope"), [
    ("POST", f"{CONTACTS}/batch/read", {"properties": [], "propertiesWithHistory": [],
                                        "inputs": []}, "crm.objects.contacts.read"),
    ("POST", f"{CONTACTS}/batch/update", {"inputs": []}, "crm.objects.contacts.write"),
    ("POST", f"{CONTACTS}/gdpr-delete", {"objectId": "1"}, "crm.objects.contacts.write"),
    ("POST", f"{CONTACTS}/merge", {"primaryObjectId": "1", "objectIdToMerge": "2"},
     "crm.objects.contacts.write"),
])
def test_a_call_without_its_scope_is_403_missing_scopes(
        hub: HubSpotEmulator, method: str, path: str, body: object, scope: str) -> None:
    hub.scopes = tuple(s for s in hub.scopes if s != scope)
    error = conforms(MissingScopes, refused(raw(hub, method, path, body), 403,
                                            "MISSING_SCOPES").model_dump(by_alias=True,
                                                                         exclude_none=True))
    assert error.errors and error.errors[0].context == {"requiredGranularScopes": [scope]}


def test_properties_answer_any_of_the_specs_scopes(hub: HubSpotEmulator) -> None:
    hub.scopes = ("crm.schemas.contacts.read",)
    assert raw(hub, "GET", "/crm/v3/properties/contacts").status_code == 200
    hub.scopes = ("oauth",)
    refused(raw(hub, "GET", "/crm/v3/properties/contacts"), 403, "MISSING_SCOPES")


def test_a_body_not_sent_as_json_is_refused(hub: HubSpotEmulator) -> None:
    answer = raw(hub, "POST", f"{CONTACTS}/gdpr-delete", data=b"objectId=1",
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    refused(answer, 415, "VALIDATION_ERROR")


def test_a_rate_limited_call_is_a_429_in_the_documented_shape(
        hub: HubSpotEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub, "rate_limit", 0)
    answer = raw(hub, "POST", f"{CONTACTS}/gdpr-delete", {"objectId": "1"})
    assert answer.status_code == 429 and "Retry-After" not in answer.headers
    assert conforms(RateLimited, answer.content).policyName == "TEN_SECONDLY_ROLLING"
    assert all(name in answer.headers for name in RATE_LIMIT_HEADERS)
