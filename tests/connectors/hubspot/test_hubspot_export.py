"""export against the HubSpot emulator: every property HubSpot holds, for whom, at what cost."""

from __future__ import annotations

import pytest

from connectors.hubspot import HubSpotConnector
from core.errors import AuthError, PermanentError, TransientError
from core.model import PersonAt
from privasync.emulators.http import Fault
from privasync.emulators.hubspot import HubSpotEmulator
from tests.connectors.hubspot.conftest import MAPPING, TOKEN
from tests.timing import scaled

CONTACTS = "/crm/v3/objects/contacts"
READ, PROPERTIES = f"{CONTACTS}/batch/read", "/crm/v3/properties/contacts"
ASSOCIATIONS = "/crm/v4/associations/contacts"


def connector(hub: HubSpotEmulator) -> HubSpotConnector:
    return HubSpotConnector(base_url=hub.url, access_token=TOKEN, client_secret="s",
                            mapping=MAPPING, timeout=scaled(5))


def person(sid: str, *emails: str, refs: tuple[str, ...] = ()) -> PersonAt:
    return PersonAt(subject_id=sid, request_id=f"dsr-{sid}", emails=emails,
                    refs=tuple(f"contact:{r}" for r in refs))


def test_every_property_of_every_contact_comes_back(hub: HubSpotEmulator) -> None:
    held = {"firstname": "Ada", "lastname": "Lovelace", "phone": "+44 20 0000 0000",
            "city": "London", "date_of_birth": "1815-12-10", "health_note": "none",
            "product_interests": "engines"}
    home = hub.create_contact("ada@example.org", **held)
    other = hub.create_contact("countess@example.net", city="Ockham")  # known to us by ref
    hub.ui_set_subscription(home, 101, subscribed=False)
    [result] = connector(hub).export([person("ada", "ADA@example.org", refs=(other,))])

    values = {(f.record, f.field): f.value for f in result.fields}
    assert (result.error, result.note) == (None, "2 contact(s)")
    assert {(f"contact:{home}", k): v for k, v in held.items()}.items() <= values.items()
    assert values[(f"contact:{home}", "email")] == "ada@example.org"
    assert values[(f"contact:{home}", "hs_email_optout_101")] == "true"
    assert values[(f"contact:{home}", "hs_object_id")] == home
    assert values[(f"contact:{other}", "city")] == "Ockham"
    assert values[(f"contact:{other}", "email")] == "countess@example.net"
    assert (f"contact:{other}", "firstname") not in values  # unset: nothing held
    assert all(v for v in values.values())
    assert {field for _, field in values} <= set(hub.property_names())


def test_a_contact_reached_by_address_and_ref_comes_back_once(hub: HubSpotEmulator) -> None:
    ada = hub.create_contact("ada@example.org", firstname="Ada")
    [result] = connector(hub).export([person("ada", "ada@example.org", refs=(ada,))])
    names = [f.field for f in result.fields]
    assert result.note == "1 contact(s)" and len(names) == len(set(names))


def test_an_unknown_person_gets_no_fields_and_a_note(hub: HubSpotEmulator) -> None:
    hub.create_contact("bob@example.net", firstname="Bob")
    unknown, known = connector(hub).export([person("x", "nobody@example.org", refs=("999",)),
                                            person("bob", "bob@example.net")])
    assert (unknown.fields, unknown.note, unknown.error) == ((), "not in hubspot", None)
    assert known.note == "1 contact(s)" and known.fields


def test_a_person_without_address_or_ref_is_refused(hub: HubSpotEmulator) -> None:
    [result] = connector(hub).export([PersonAt("s1", "dsr-1", (), ())])
    assert isinstance(result.error, PermanentError)
    assert result.error.error_class == "no_identifier"
    assert hub.total_calls() == 0


def test_a_full_batch_costs_eight_calls(hub: HubSpotEmulator) -> None:
    exporter = connector(hub)
    size = exporter.export_batch_size
    ids = [hub.create_contact(f"p{i}@example.org", city="York") for i in range(size)]
    results = exporter.export([person(f"s{i}", f"p{i}@example.org", refs=(c,))
                               for i, c in enumerate(ids)])

    assert all(r.note == "1 contact(s)" for r in results)
    assert results[7].fields[0].record == f"contact:{ids[7]}"
    assert (hub.total_calls(PROPERTIES), hub.total_calls(READ)) == (1, 2)
    # Properties, two contact reads, one association read per engagement type (none found:
    # no engagement read).
    assert hub.total_calls(ASSOCIATIONS) == 5
    assert hub.total_calls() == 8


def test_a_rate_limit_fails_the_export_with_its_retry_after(hub: HubSpotEmulator) -> None:
    hub.inject(Fault(429, {"status": "error", "errorType": "RATE_LIMIT"},
                     headers={"Retry-After": "4"}, path_pattern="batch/read"))
    with pytest.raises(TransientError) as caught:
        connector(hub).export([person("ada", "ada@example.org")])
    assert caught.value.retry_after == 4.0


def test_a_server_error_on_the_property_list_is_transient(hub: HubSpotEmulator) -> None:
    hub.inject(Fault(500, {"status": "error"}, path_pattern="properties"))
    with pytest.raises(TransientError, match="HTTP 500"):
        connector(hub).export([person("ada", "ada@example.org")])


def test_a_forbidden_property_list_is_an_auth_error(hub: HubSpotEmulator) -> None:
    hub.inject(Fault(403, {"status": "error", "category": "MISSING_SCOPES"},
                     path_pattern="properties"))
    with pytest.raises(AuthError):
        connector(hub).export([person("ada", "ada@example.org")])


def test_a_read_hubspot_answers_with_an_error_is_no_proof_of_absence(
        hub: HubSpotEmulator) -> None:
    hub.create_contact("bob@example.net", firstname="Bob")
    hub.inject(Fault(207, {"status": "COMPLETE", "results": [], "numErrors": 1, "errors": [
        {"status": "error", "category": "VALIDATION_ERROR", "message": "invalid",
         "context": {"ids": ["ada@example.org"]}}]}, path_pattern="batch/read"))
    ada, bob = connector(hub).export([person("ada", "ada@example.org"),
                                      person("bob", "bob@example.net")])

    assert isinstance(ada.error, TransientError)
    assert (ada.error.error_class, ada.fields) == ("hubspot_incomplete_read", ())
    assert (bob.error, bob.fields) == (None, ())  # the faked answer held nobody else either


def test_contact_moments_come_with_what_they_are_and_only_what_they_say(
        hub: HubSpotEmulator) -> None:
    ada = hub.create_contact("ada@example.org", firstname="Ada")
    bob = hub.create_contact("bob@example.org", firstname="Bob")
    mail = hub.log_engagement("emails", ada, hs_email_subject="Your meter",
                              hs_email_text="We will come on Friday", hs_email_direction="EMAIL",
                              hubspot_owner_id="77", hs_email_headers='{"cc": "x@y.z"}')
    call = hub.log_engagement("calls", ada, hs_call_title="Complaint",
                              hs_call_body="Angry about the bill", hs_call_duration="95000")
    note = hub.log_engagement("notes", [ada, bob], hs_note_body="Prefers phone")
    task = hub.log_engagement("tasks", ada, hs_task_subject="Call back",
                              hs_task_status="NOT_STARTED")
    meeting = hub.log_engagement("meetings", ada, hs_meeting_title="Visit")
    hub.log_engagement("calls", bob, hs_call_title="Bob's call")

    [result] = connector(hub).export([person("ada", "ada@example.org")])

    kinds = {f.record: f.kind for f in result.fields}
    assert {r: k for r, k in kinds.items() if not r.startswith("contact:")} == {
        f"email:{mail}": "logged e-mail", f"call:{call}": "call", f"note:{note}": "note",
        f"task:{task}": "task", f"meeting:{meeting}": "meeting"}
    values = {(f.record, f.field): f.value for f in result.fields}
    assert values[(f"email:{mail}", "hs_email_text")] == "We will come on Friday"
    assert values[(f"call:{call}", "hs_call_body")] == "Angry about the bill"
    assert values[(f"note:{note}", "hs_note_body")] == "Prefers phone"
    assert "Bob's call" not in values.values()
    # Minimised: no owner, no raw headers naming other people.
    assert not {"hubspot_owner_id", "hs_email_headers"} & {f.field for f in result.fields}
    assert result.note == "1 contact(s), 5 contact moment(s)"


def test_associations_past_a_page_are_followed(hub: HubSpotEmulator) -> None:
    ada = hub.create_contact("ada@example.org")
    notes = [hub.log_engagement("notes", ada, hs_note_body=f"note {i}") for i in range(5)]
    hub.association_page = 2

    [result] = connector(hub).export([person("ada", "ada@example.org")])

    assert {f.record for f in result.fields if f.kind == "note"} == {f"note:{n}" for n in notes}
    assert hub.total_calls(f"{ASSOCIATIONS}/notes/batch/read") == 3


def test_a_contact_merged_into_the_persons_brings_its_moments(hub: HubSpotEmulator) -> None:
    kept = hub.create_contact("ada@example.org", firstname="Ada")
    gone = hub.create_contact("a.lovelace@example.org", city="Ockham")
    call = hub.log_engagement("calls", gone, hs_call_title="Before the merge")
    hub.ui_merge(kept, gone)

    # Known to privasync only by the merged-away contact's id.
    [result] = connector(hub).export([person("ada", refs=(gone,))])

    values = {(f.record, f.field): f.value for f in result.fields}
    assert values[(f"contact:{kept}", "city")] == "Ockham"
    assert values[(f"contact:{kept}", "hs_merged_object_ids")] == gone
    assert values[(f"call:{call}", "hs_call_title")] == "Before the merge"
    assert {f.kind for f in result.fields if f.record == f"contact:{kept}"} == {
        f"contact (merged with contact {gone})"}


def test_a_refused_association_read_leaves_the_answer_incomplete(hub: HubSpotEmulator) -> None:
    hub.create_contact("ada@example.org")
    hub.inject(Fault(403, body={"status": "error", "message": "no", "correlationId": "c",
                                "category": "MISSING_SCOPES"},
                     path_pattern="/associations/contacts/tasks/"))

    with pytest.raises(AuthError):
        connector(hub).export([person("ada", "ada@example.org")])
