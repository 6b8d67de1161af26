"""The HubSpot emulator speaks HubSpot well enough for the official client and requests."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from hubspot import HubSpot
from hubspot.crm.contacts import (
    BatchReadInputSimplePublicObjectId,
    PublicGdprDeleteInput,
    PublicMergeInput,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.contacts.exceptions import ApiException
from hubspot.utils.signature import Signature

from privasync.emulators.http import Fault
from privasync.emulators.hubspot import HubSpotEmulator
from tests.emulators.conftest import serve
from tests.timing import scaled

TOKEN, SECRET = "pat-test", "app-secret"
V4 = "/communication-preferences/v4/statuses"


@pytest.fixture(scope="module")
def server() -> Iterator[HubSpotEmulator]:
    yield from serve(HubSpotEmulator(access_token=TOKEN, client_secret=SECRET))


@pytest.fixture
def hub(server: HubSpotEmulator) -> HubSpotEmulator:
    server.reset()
    return server


@pytest.fixture
def client(hub: HubSpotEmulator) -> HubSpot:
    return HubSpot(access_token=TOKEN, host=hub.url)


def call(hub: HubSpotEmulator, method: str, path: str, body: Any = None,
         token: str = TOKEN) -> requests.Response:
    return requests.request(method, hub.url + path, json=body, timeout=scaled(5),
                            headers={"Authorization": f"Bearer {token}"})


@dataclass
class Receiver:
    """A tiny webhook endpoint: records each request, answers from a script of statuses."""

    url: str = ""
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    statuses: deque[int] = field(default_factory=deque)
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def events(self) -> list[dict[str, Any]]:
        return [e for _, _, body in self.requests for e in json.loads(body)]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    record = Receiver()
    record.release.set()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            record.requests.append((self.path, dict(self.headers), body))
            record.arrived.set()
            record.release.wait(timeout=scaled(5))
            self.send_response(record.statuses.popleft() if record.statuses else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                     daemon=True).start()
    record.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/hubspot?app=privasync"
    yield record
    server.shutdown()
    server.server_close()


# -- the official client --------------------------------------------------------------------
def test_official_client_creates_reads_and_batch_reads_contacts(hub: HubSpotEmulator,
                                                                client: HubSpot) -> None:
    created = client.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(
        properties={"email": "Ada@Example.org", "firstname": "Ada"}))
    by_email = client.crm.contacts.basic_api.get_by_id(
        "ada@example.org", id_property="email", properties=["email", "firstname"])
    batch = client.crm.contacts.batch_api.read(BatchReadInputSimplePublicObjectId(
        inputs=[{"id": created.id}, {"id": "999999"}], properties=["email"],
        properties_with_history=[]))

    assert created.id == "1001"
    assert by_email.properties["firstname"] == "Ada"
    assert [c.properties["email"] for c in batch.results] == ["ada@example.org"]
    assert batch.errors[0].context == {"ids": ["999999"]}


def test_a_second_contact_with_the_same_email_is_a_conflict(hub: HubSpotEmulator,
                                                            client: HubSpot) -> None:
    hub.create_contact("ada@example.org")
    with pytest.raises(ApiException) as caught:
        client.crm.contacts.basic_api.create(
            SimplePublicObjectInputForCreate(properties={"email": "ADA@example.org"}))
    assert caught.value.status == 409
    assert json.loads(caught.value.body)["category"] == "CONFLICT"


def test_purge_erases_the_contact_and_blocklists_an_unknown_address(hub: HubSpotEmulator,
                                                                    client: HubSpot) -> None:
    contact_id = hub.create_contact("ada@example.org")
    client.crm.contacts.basic_api.purge(
        PublicGdprDeleteInput(object_id="ada@example.org", id_property="email"))
    client.crm.contacts.basic_api.purge(
        PublicGdprDeleteInput(object_id="ghost@example.org", id_property="email"))

    assert hub.contact(contact_id) is None
    assert hub.is_blocklisted("ghost@example.org")
    assert call(hub, "POST", "/crm/v3/objects/contacts",
                {"properties": {"email": "ghost@example.org"}}).status_code == 400
    # A form submission is not stopped by the blocklist, as in HubSpot.
    assert hub.contact(hub.form_submission("ghost@example.org")) is not None


def test_merge_keeps_the_primary_and_removes_the_merged_contact(hub: HubSpotEmulator,
                                                               client: HubSpot) -> None:
    primary = hub.create_contact("ada@example.org")
    merged = hub.create_contact("ada.l@example.org", phone="123")
    result = client.crm.contacts.basic_api.merge(
        PublicMergeInput(primary_object_id=primary, object_id_to_merge=merged))

    assert result.id == primary
    assert hub.contact(merged) is None
    assert hub.contact(primary)["phone"] == "123"  # type: ignore[index]
    assert hub.contact(primary)["hs_additional_emails"] == "ada.l@example.org"  # type: ignore[index]


def test_archive_hides_the_contact_and_batch_update_changes_properties(
        hub: HubSpotEmulator) -> None:
    keep, drop = hub.create_contact("a@example.org"), hub.create_contact("b@example.org")
    updated = call(hub, "POST", "/crm/v3/objects/contacts/batch/update",
                   {"inputs": [{"id": keep, "properties": {"firstname": "Ann"}}]})
    archived = call(hub, "DELETE", f"/crm/v3/objects/contacts/{drop}")

    assert updated.status_code == 200
    assert archived.status_code == 204
    assert hub.contact(keep)["firstname"] == "Ann"  # type: ignore[index]
    assert call(hub, "GET", f"/crm/v3/objects/contacts/{drop}").status_code == 404


def test_opt_out_properties_are_read_only(hub: HubSpotEmulator) -> None:
    contact_id = hub.create_contact("a@example.org")
    answer = call(hub, "PATCH", f"/crm/v3/objects/contacts/{contact_id}",
                  {"properties": {"hs_email_optout": "true"}})
    assert answer.status_code == 400
    assert answer.json()["category"] == "VALIDATION_ERROR"


# -- auth, rate limit, faults -------------------------------------------------------------------
def test_a_missing_or_wrong_token_gets_hubspots_401_body(hub: HubSpotEmulator) -> None:
    wrong = call(hub, "GET", "/communication-preferences/v3/definitions", token="nope")
    missing = requests.get(hub.url + "/communication-preferences/v3/definitions", timeout=scaled(5))
    assert wrong.status_code == missing.status_code == 401
    assert wrong.json()["category"] == "INVALID_AUTHENTICATION"
    assert {"status", "message", "correlationId"} <= wrong.json().keys()


def test_the_rolling_window_answers_429_with_the_documented_body_and_headers(
        hub: HubSpotEmulator) -> None:
    hub.rate_limit = 3
    try:
        answers = [call(hub, "GET", "/communication-preferences/v3/definitions")
                   for _ in range(4)]
    finally:
        hub.rate_limit = 100
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[0].headers["X-HubSpot-RateLimit-Remaining"] == "2"
    limited = answers[3]
    assert limited.json()["errorType"] == "RATE_LIMIT"
    assert limited.json()["policyName"] == "TEN_SECONDLY_ROLLING"
    assert limited.headers["X-HubSpot-RateLimit-Max"] == "3"
    assert limited.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert limited.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert hub.total_calls() == 3
    assert (len(hub.admitted_at), hub.rate_limited) == (3, 1)  # what a bench reads


def test_injected_faults_answer_before_anything_else(hub: HubSpotEmulator) -> None:
    hub.inject(Fault(500, {"status": "error"}), Fault(429, {"errorType": "RATE_LIMIT"}))
    statuses = [call(hub, "GET", "/communication-preferences/v3/definitions").status_code
                for _ in range(3)]
    assert statuses == [500, 429, 200]


# -- communication preferences ---------------------------------------------------------------
def test_v3_cannot_resubscribe_someone_who_opted_out(hub: HubSpotEmulator) -> None:
    change = {"emailAddress": "a@example.org", "subscriptionId": "101",
              "legalBasis": "CONSENT_WITH_NOTICE", "legalBasisExplanation": "form v2"}
    unsubscribed = call(hub, "POST", "/communication-preferences/v3/unsubscribe", change)
    resubscribed = call(hub, "POST", "/communication-preferences/v3/subscribe", change)
    status = call(hub, "GET", "/communication-preferences/v3/status/email/a%40example.org")

    assert unsubscribed.json()["status"] == "NOT_SUBSCRIBED"
    assert resubscribed.status_code == 400
    assert status.json()["subscriptionStatuses"][0]["status"] == "NOT_SUBSCRIBED"


def test_v4_batch_write_applies_valid_rows_and_reports_the_rest_in_its_200(
        hub: HubSpotEmulator) -> None:
    contact_id = hub.create_contact("a@example.org")
    rows = [{"subscriberIdString": "a@example.org", "channel": "EMAIL",
             "statusState": "SUBSCRIBED", "subscriptionId": 101,
             "legalBasis": "CONSENT_WITH_NOTICE", "legalBasisExplanation": "form v2"},
            {"subscriberIdString": "a@example.org", "channel": "EMAIL",
             "statusState": "UNSUBSCRIBED", "subscriptionId": 999}]
    answer = call(hub, "POST", f"{V4}/batch/write", {"inputs": rows})

    assert answer.status_code == 200  # the v4 spec lists no 207 for batch/write
    assert answer.json()["numErrors"] == 1
    assert answer.json()["errors"][0]["context"]["subscriptionId"] == ["999"]
    assert answer.json()["results"][0]["setStatusSuccessReason"] == "REQUESTED_CHANGE_OCCURRED"
    assert hub.subscription_status("a@example.org", 101) == "SUBSCRIBED"
    assert hub.contact(contact_id)["hs_email_optout_101"] == "false"  # type: ignore[index]
    assert [c.status for c in hub.status_changes("a@example.org")] == ["SUBSCRIBED"]


def test_v4_batch_write_refuses_more_than_100_inputs(hub: HubSpotEmulator) -> None:
    rows = [{"subscriberIdString": f"p{i}@example.org", "channel": "EMAIL",
             "statusState": "UNSUBSCRIBED", "subscriptionId": 101} for i in range(101)]
    answer = call(hub, "POST", f"{V4}/batch/write", {"inputs": rows})
    assert answer.status_code == 400
    assert hub.subscription_status("p0@example.org", 101) is None


def test_v4_unsubscribe_all_opts_the_contact_out_of_everything(hub: HubSpotEmulator) -> None:
    contact_id = hub.create_contact("a@example.org")
    answer = call(hub, "POST", f"{V4}/a%40example.org/unsubscribe-all?channel=EMAIL")
    read = call(hub, "POST", f"{V4}/batch/read?channel=EMAIL", {"inputs": ["a@example.org"]})

    assert answer.status_code == 200
    assert hub.contact(contact_id)["hs_email_optout"] == "true"  # type: ignore[index]
    statuses = read.json()["results"][0]["statuses"]
    assert {s["subscriptionId"]: s["status"] for s in statuses} == {
        101: "UNSUBSCRIBED", 102: "UNSUBSCRIBED"}  # v4's spelling
    assert {s["setStatusSuccessReason"] for s in answer.json()["results"]} == {
        "UNSUBSCRIBE_FROM_ALL_OCCURRED"}


# -- webhooks -------------------------------------------------------------------------------------
def test_webhooks_arrive_signed_v3_and_verify_with_the_library(hub: HubSpotEmulator,
                                                              receiver: Receiver) -> None:
    hub.configure_webhooks(receiver.url)
    call(hub, "POST", "/crm/v3/objects/contacts", {"properties": {"email": "a@example.org"}})
    hub.flush_webhooks()

    path, headers, body = receiver.requests[0]
    # CRM object webhooks carry the legacy v1 signature beside v3 ("Validating requests").
    assert headers["X-HubSpot-Signature-Version"] == "v1"
    assert Signature.is_valid(signature=headers["X-HubSpot-Signature"], client_secret=SECRET,
                              request_body=body.decode(), signature_version="v1")
    assert Signature.is_valid(signature=headers["X-HubSpot-Signature-v3"], client_secret=SECRET,
                              request_body=body.decode(), http_uri=receiver.url,
                              http_method="POST", signature_version="v3",
                              timestamp=headers["X-HubSpot-Request-Timestamp"])
    event = json.loads(body)[0]
    assert (event["subscriptionType"], event["changeFlag"], event["changeSource"]) == (
        "contact.creation", "NEW", "API")
    assert (event["portalId"], event["appId"], event["objectId"]) == (62515, 54321, 1001)


def test_a_privacy_deletion_also_fires_a_deletion(hub: HubSpotEmulator,
                                                 receiver: Receiver) -> None:
    contact_id = hub.create_contact("a@example.org")
    hub.configure_webhooks(receiver.url)
    hub.ui_gdpr_delete(contact_id)
    hub.flush_webhooks()
    kinds = [e["subscriptionType"] for e in receiver.events()]
    assert kinds == ["contact.privacyDeletion", "contact.deletion"]


def test_ui_opt_outs_fire_property_changes_from_the_crm_ui(hub: HubSpotEmulator,
                                                          receiver: Receiver) -> None:
    contact_id = hub.create_contact("a@example.org")
    hub.configure_webhooks(receiver.url)
    hub.ui_set_subscription(contact_id, 101, subscribed=False)
    hub.ui_unsubscribe_all(contact_id)
    hub.flush_webhooks()
    changes = [(e["propertyName"], e["propertyValue"], e["changeSource"])
               for e in receiver.events()]
    assert changes == [("hs_email_optout_101", "true", "CRM_UI"),
                       ("hs_email_optout_102", "true", "CRM_UI"),
                       ("hs_email_optout", "true", "CRM_UI")]


def test_merge_events_name_the_primary_and_the_merged_contacts(hub: HubSpotEmulator,
                                                              receiver: Receiver) -> None:
    primary, merged = hub.create_contact("a@example.org"), hub.create_contact("b@example.org")
    hub.configure_webhooks(receiver.url)
    hub.ui_merge(primary, merged)
    hub.flush_webhooks()
    event = receiver.events()[0]
    assert (event["primaryObjectId"], event["mergedObjectIds"]) == (int(primary), [int(merged)])


def test_failed_deliveries_are_retried_with_a_growing_attempt_number(
        hub: HubSpotEmulator, receiver: Receiver) -> None:
    receiver.statuses.extend([500, 503])
    hub.configure_webhooks(receiver.url)
    hub.create_contact("a@example.org")
    hub.flush_webhooks()
    attempts = [json.loads(body)[0]["attemptNumber"] for _, _, body in receiver.requests]
    assert attempts == [0, 1, 2]
    assert hub.webhook_deliveries == [(500, 1), (503, 1), (200, 1)]


def test_queued_events_are_delivered_in_batches_of_at_most_100(hub: HubSpotEmulator,
                                                              receiver: Receiver) -> None:
    hub.configure_webhooks(receiver.url, subscriptions=("contact.creation",))
    receiver.release.clear()  # the first delivery hangs until 150 more events are queued
    hub.create_contact("first@example.org")
    assert receiver.arrived.wait(timeout=scaled(5))
    for i in range(150):
        hub.create_contact(f"p{i}@example.org")
    receiver.release.set()
    hub.flush_webhooks()
    assert hub.webhook_deliveries == [(200, 1), (200, 100), (200, 50)]
    assert len({e["eventId"] for e in receiver.events()}) == 151


def test_api_status_writes_fire_property_changes_from_the_api(hub: HubSpotEmulator,
                                                             receiver: Receiver) -> None:
    contact_id = hub.create_contact("a@example.org")
    hub.configure_webhooks(receiver.url)
    call(hub, "POST", f"{V4}/batch/write", {"inputs": [
        {"subscriberIdString": "a@example.org", "channel": "EMAIL",
         "statusState": "UNSUBSCRIBED", "subscriptionId": 102}]})
    hub.flush_webhooks()
    [change] = receiver.events()
    assert (change["objectId"], change["propertyName"], change["propertyValue"],
            change["changeSource"]) == (int(contact_id), "hs_email_optout_102", "true", "API")


def test_api_property_writes_fire_subscribed_property_changes_and_empty_clears(
        hub: HubSpotEmulator, receiver: Receiver) -> None:
    contact_id = hub.create_contact("a@example.org", firstname="Ann", city="York")
    hub.configure_webhooks(receiver.url, subscriptions=(
        "contact.propertyChange:firstname", "contact.propertyChange:city"))
    updated = call(hub, "POST", "/crm/v3/objects/contacts/batch/update", {"inputs": [
        {"id": contact_id, "properties": {"firstname": "Anne", "city": "", "phone": "1"}}]})
    hub.flush_webhooks()
    assert updated.status_code == 200
    held = hub.contact(contact_id) or {}
    assert (held["firstname"], "city" in held, held["phone"]) == ("Anne", False, "1")
    changes = [(e["objectId"], e["propertyName"], e["propertyValue"], e["changeSource"])
               for e in receiver.events()]
    assert changes == [(int(contact_id), "firstname", "Anne", "API"),
                       (int(contact_id), "city", "", "API")]


def test_batch_update_of_an_unknown_id_is_a_207_naming_it(hub: HubSpotEmulator) -> None:
    known = hub.create_contact("a@example.org")
    answer = call(hub, "POST", "/crm/v3/objects/contacts/batch/update", {"inputs": [
        {"id": known, "properties": {"firstname": "Ann"}},
        {"id": "999999", "properties": {"firstname": "Nobody"}}]})
    assert answer.status_code == 207
    [error] = answer.json()["errors"]
    assert (error["category"], error["context"]["ids"]) == ("OBJECT_NOT_FOUND", ["999999"])
    assert hub.find_by_email("a@example.org") == known


def test_batch_read_by_email_finds_contacts_case_insensitively(hub: HubSpotEmulator) -> None:
    known = hub.create_contact("a@example.org")
    answer = call(hub, "POST", "/crm/v3/objects/contacts/batch/read", {
        "idProperty": "email", "properties": ["email"], "propertiesWithHistory": [],
        "inputs": [{"id": "A@Example.org"}, {"id": "b@example.org"}]})
    assert answer.status_code == 207
    [found] = answer.json()["results"]
    assert (found["id"], found["properties"]["email"]) == (known, "a@example.org")


def test_a_marketer_editing_a_property_fires_a_crm_ui_change(hub: HubSpotEmulator,
                                                            receiver: Receiver) -> None:
    contact_id = hub.create_contact("a@example.org", lastname="Smith")
    hub.configure_webhooks(receiver.url, subscriptions=("contact.propertyChange:lastname",))
    hub.ui_set_property(contact_id, "lastname", "")
    hub.flush_webhooks()
    [change] = receiver.events()
    assert (change["propertyName"], change["propertyValue"], change["changeSource"]) == (
        "lastname", "", "CRM_UI")
    assert "lastname" not in (hub.contact(contact_id) or {})


# -- property definitions, reads of any property, GDPR delete ------------------------------
MAPPING_FILE = Path(__file__).parents[2] / "mappings" / "hubspot.yaml"


def test_property_definitions_list_every_property_a_contact_can_hold(
        hub: HubSpotEmulator, client: HubSpot) -> None:
    answer = client.crm.properties.core_api.get_all("contacts")
    by_name = {p.name: p for p in answer.results}
    mapped = yaml.safe_load(MAPPING_FILE.read_text())["fields"]

    assert set(mapped) <= set(by_name)
    assert {"hs_email_optout", "hs_email_optout_101", "hs_email_optout_102",
            "hs_object_id", "createdate", "lastmodifieddate"} <= set(by_name)
    assert (by_name["date_of_birth"].type, by_name["date_of_birth"].field_type) == ("date", "date")
    assert by_name["health_note"].label == "Health note"
    assert by_name["health_note"].hubspot_defined is False
    assert sorted(by_name) == sorted(hub.property_names())


def test_property_definitions_of_an_unknown_object_type_are_a_404(hub: HubSpotEmulator) -> None:
    answer = call(hub, "GET", "/crm/v3/properties/spaceships")
    assert answer.status_code == 404
    assert answer.json()["category"] == "OBJECT_NOT_FOUND"


def test_reads_return_any_requested_property_and_only_those(hub: HubSpotEmulator,
                                                           client: HubSpot) -> None:
    contact_id = hub.create_contact("ada@example.org", firstname="Ada", city="London",
                                    date_of_birth="1815-12-10", health_note="none")
    batch = client.crm.contacts.batch_api.read(BatchReadInputSimplePublicObjectId(
        inputs=[{"id": "ada@example.org"}], id_property="email",
        properties=["date_of_birth", "health_note", "phone"], properties_with_history=[]))
    one = client.crm.contacts.basic_api.get_by_id(contact_id, properties=["city"])

    [found] = batch.results
    assert (found.properties["date_of_birth"], found.properties["health_note"]) == (
        "1815-12-10", "none")
    assert found.properties["phone"] is None
    assert "firstname" not in found.properties and "email" not in found.properties
    assert one.properties["city"] == "London" and "firstname" not in one.properties


def test_a_contact_purged_by_id_is_gone_from_every_read(hub: HubSpotEmulator,
                                                        client: HubSpot) -> None:
    contact_id = hub.create_contact("ada@example.org", firstname="Ada")
    client.crm.contacts.basic_api.purge(PublicGdprDeleteInput(object_id=contact_id))

    for path in (f"/crm/v3/objects/contacts/{contact_id}",
                 f"/crm/v3/objects/contacts/{contact_id}?archived=true",
                 "/crm/v3/objects/contacts/ada%40example.org?idProperty=email"):
        assert call(hub, "GET", path).status_code == 404
    for id_property, key in ((None, contact_id), ("email", "ada@example.org")):
        answer = call(hub, "POST", "/crm/v3/objects/contacts/batch/read",
                      {"idProperty": id_property, "properties": [], "propertiesWithHistory": [],
                       "inputs": [{"id": key}]})
        assert (answer.status_code, answer.json()["results"]) == (207, [])
    with pytest.raises(ApiException) as again:
        client.crm.contacts.basic_api.purge(PublicGdprDeleteInput(object_id=contact_id))
    assert again.value.status == 404
    assert hub.contact(contact_id) is None


def test_answers_carry_hubspots_correlation_id(hub: HubSpotEmulator, client: HubSpot) -> None:
    _, status, headers = client.crm.contacts.basic_api.purge_with_http_info(
        PublicGdprDeleteInput(object_id="ghost@example.org", id_property="email"))
    refused = call(hub, "GET", "/crm/v3/objects/contacts/424242")

    assert status == 204 and headers["X-HubSpot-Correlation-Id"]
    assert refused.headers["X-HubSpot-Correlation-Id"] == refused.json()["correlationId"]


def test_token_info_tells_a_private_apps_scopes_from_the_token_in_the_body(hub: HubSpotEmulator):
    path = "/oauth/v2/private-apps/get/access-token-info"
    known = requests.post(hub.url + path, json={"tokenKey": TOKEN}, timeout=scaled(5))
    assert known.status_code == 200
    assert known.json()["hubId"] == hub.portal_id and known.json()["appId"] == hub.app_id
    assert "crm.objects.contacts.write" in known.json()["scopes"]
    unknown = requests.post(hub.url + path, json={"tokenKey": "pat-nobody"}, timeout=scaled(5))
    assert unknown.status_code == 400 and unknown.json()["category"] == "VALIDATION_ERROR"
