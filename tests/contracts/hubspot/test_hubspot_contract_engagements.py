"""Engagement batch reads and associations v4, as the official client and plain HTTP see
them, held to contracts.hubspot.engagements; and the refusals the spec names."""

from __future__ import annotations

import pytest
from hubspot import HubSpot
from hubspot.crm.associations.v4 import BatchInputPublicFetchAssociationsBatchRequest
from hubspot.crm.objects.calls import BatchReadInputSimplePublicObjectId

from connectors.hubspot.engagements import MOMENT_PROPERTIES
from privasync.emulators.contracts.hubspot.contacts import (
    BatchResponseSimplePublicObject,
    BatchResponseSimplePublicObjectWithErrors,
)
from privasync.emulators.contracts.hubspot.engagements import (
    ENGAGEMENT_PROPERTIES,
    NO_ASSOCIATIONS,
    BatchResponsePublicAssociationMultiWithLabel,
)
from privasync.emulators.contracts.hubspot.scopes import MissingScopes
from privasync.emulators.hubspot import HubSpotEmulator, HubSpotError
from tests.contracts.hubspot.conftest import conforms, raw, refused


def test_privasync_reads_only_properties_the_guides_list() -> None:
    for object_type, (_, _, names) in MOMENT_PROPERTIES.items():
        assert set(names) <= set(ENGAGEMENT_PROPERTIES[object_type]), object_type


def test_associations_answer_each_contacts_engagements(hub: HubSpotEmulator,
                                                       client: HubSpot) -> None:
    ada = hub.create_contact("ada@example.org")
    call = hub.log_engagement("calls", ada, hs_call_title="Hello")
    request = BatchInputPublicFetchAssociationsBatchRequest(inputs=[{"id": ada}])

    data, status, _ = client.crm.associations.v4.batch_api.get_page_with_http_info(
        "contacts", "calls", request)

    body = raw(hub, "POST", "/crm/v4/associations/contacts/calls/batch/read",
               {"inputs": [{"id": ada}]})
    answer = conforms(BatchResponsePublicAssociationMultiWithLabel, body.content)
    assert status == 200 and data.results[0].to[0].to_object_id == call
    assert [t.toObjectId for t in answer.results[0].to] == [call]
    assert answer.results[0].to[0].associationTypes[0].typeId == 193


def test_a_contact_without_associations_is_a_207_error_saying_so(hub: HubSpotEmulator) -> None:
    ada = hub.create_contact("ada@example.org")

    body = raw(hub, "POST", "/crm/v4/associations/contacts/notes/batch/read",
               {"inputs": [{"id": ada}]})

    answer = conforms(BatchResponsePublicAssociationMultiWithLabel, body.content)
    assert body.status_code == 207 and answer.results == []
    assert answer.errors and answer.errors[0].subCategory == NO_ASSOCIATIONS
    assert answer.errors[0].context == {"fromObjectId": [ada]}


def test_a_long_association_list_pages_with_after(hub: HubSpotEmulator) -> None:
    ada = hub.create_contact("ada@example.org")
    notes = [hub.log_engagement("notes", ada, hs_note_body=str(i)) for i in range(3)]
    hub.association_page = 2
    path = "/crm/v4/associations/contacts/notes/batch/read"

    first = conforms(BatchResponsePublicAssociationMultiWithLabel,
                     raw(hub, "POST", path, {"inputs": [{"id": ada}]}).content)
    after = first.results[0].paging.next.after  # type: ignore[union-attr]
    second = conforms(BatchResponsePublicAssociationMultiWithLabel,
                      raw(hub, "POST", path, {"inputs": [{"id": ada, "after": after}]}).content)

    assert [t.toObjectId for r in (first, second) for t in r.results[0].to] == notes
    assert second.results[0].paging is None


def test_engagements_read_in_a_batch_hold_to_simple_public_object(hub: HubSpotEmulator,
                                                                  client: HubSpot) -> None:
    ada = hub.create_contact("ada@example.org")
    call = hub.log_engagement("calls", ada, hs_call_body="Hello")
    request = BatchReadInputSimplePublicObjectId(inputs=[{"id": call}],
                                                 properties=["hs_call_body"],
                                                 properties_with_history=[])

    data, status, _ = client.crm.objects.calls.batch_api.read_with_http_info(request)

    body = raw(hub, "POST", "/crm/v3/objects/calls/batch/read",
               {"inputs": [{"id": call}, {"id": "999"}], "properties": ["hs_call_body"],
                "propertiesWithHistory": []})
    assert status == 200 and data.results[0].properties["hs_call_body"] == "Hello"
    assert body.status_code == 207
    conforms(BatchResponseSimplePublicObjectWithErrors, body.content)
    conforms(BatchResponseSimplePublicObject, {k: v for k, v in body.json().items()
                                               if k not in ("errors", "numErrors")})


def test_a_read_without_properties_with_history_is_refused(hub: HubSpotEmulator) -> None:
    body = raw(hub, "POST", "/crm/v3/objects/notes/batch/read",
               {"inputs": [{"id": "1"}], "properties": []})

    refused(body, 400, "VALIDATION_ERROR")


def test_an_unknown_field_in_an_association_read_is_refused(hub: HubSpotEmulator) -> None:
    body = raw(hub, "POST", "/crm/v4/associations/contacts/notes/batch/read",
               {"inputs": [{"id": "1"}], "limit": 5})

    refused(body, 400, "VALIDATION_ERROR")


@pytest.mark.parametrize("path", ["/crm/v3/objects/calls/batch/read",
                                  "/crm/v4/associations/contacts/calls/batch/read"])
def test_without_the_contacts_read_scope_engagements_are_403(hub: HubSpotEmulator,
                                                             path: str) -> None:
    hub.scopes = ("oauth", "communication_preferences.read_write")
    body = {"inputs": [{"id": "1"}], "properties": [], "propertiesWithHistory": []} \
        if "objects" in path else {"inputs": [{"id": "1"}]}

    conforms(MissingScopes, refused(raw(hub, "POST", path, body), 403, "MISSING_SCOPES")
             .model_dump(by_alias=True, exclude_none=True))


def test_emails_also_answer_to_sales_email_read(hub: HubSpotEmulator) -> None:
    hub.scopes = ("sales-email-read",)

    body = raw(hub, "POST", "/crm/v3/objects/emails/batch/read",
               {"inputs": [{"id": "1"}], "properties": [], "propertiesWithHistory": []})

    assert body.status_code == 207  # admitted; the id is unknown


def test_logging_a_property_an_engagement_lacks_is_refused(hub: HubSpotEmulator) -> None:
    ada = hub.create_contact("ada@example.org")

    with pytest.raises(HubSpotError, match="does not exist"):
        hub.log_engagement("notes", ada, hs_call_body="wrong object")
