"""push_fields against the HubSpot emulator: what contacts hold at the end, and what it cost."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.hubspot import HubSpotConnector
from core.errors import PermanentError, TransientError
from core.model import DestinationRecord, RecordChanged
from privasync.emulators.http import Emulator, Fault, Request, Response
from privasync.emulators.hubspot import HubSpotEmulator
from tests.connectors.hubspot.conftest import MAPPING, TOKEN
from tests.timing import scaled

CONTACTS = "/crm/v3/objects/contacts"
UPDATE, READ = f"{CONTACTS}/batch/update", f"{CONTACTS}/batch/read"


def connector(hub: HubSpotEmulator) -> HubSpotConnector:
    return HubSpotConnector(base_url=hub.url, access_token=TOKEN, client_secret="s",
                            mapping=MAPPING, timeout=scaled(5))


def record(sid: str, address: str | None = None, contact: str | None = None, /,
           **fields: str | None) -> DestinationRecord:
    """A record as the core hands it over: canonical field names, already minimised."""
    refs = (f"contact:{contact}",) if contact else ()
    return DestinationRecord(subject_id=sid, email=address, refs=refs, fields=fields)


def test_fields_are_written_under_hubspot_names_in_one_call(hub: HubSpotEmulator) -> None:
    ada, bob = hub.create_contact("ada@example.org"), hub.create_contact("bob@example.org")
    outcomes = connector(hub).push_fields([
        record("s1", "ada@example.org", ada, first_name="Ada", last_name="Lovelace"),
        record("s2", "bob@example.org", bob, city="Leeds", customer_since="2024-01-31"),
    ])
    assert [(o.subject_id, o.error, o.learned_refs) for o in outcomes] == [
        ("s1", None, ()), ("s2", None, ())]
    assert outcomes[0].note == "wrote 2 field(s)"
    assert hub.contact(ada) is not None and hub.contact(bob) is not None
    assert (hub.contact(ada) or {})["firstname"] == "Ada"
    assert (hub.contact(ada) or {})["lastname"] == "Lovelace"
    assert (hub.contact(bob) or {})["city"] == "Leeds"
    assert (hub.contact(bob) or {})["hs_lifecyclestage_customer_date"] == "2024-01-31"
    assert hub.total_calls() == hub.total_calls(UPDATE) == 1


def test_a_cleared_field_is_emptied_in_hubspot(hub: HubSpotEmulator) -> None:
    ada = hub.create_contact("ada@example.org", city="York", phone="+44 1904 000000")
    [outcome] = connector(hub).push_fields([record("s1", None, ada, city=None)])
    held = hub.contact(ada) or {}
    assert outcome.error is None
    assert "city" not in held and held["phone"] == "+44 1904 000000"


def test_unmapped_fields_are_ignored_and_the_email_is_never_written(
        hub: HubSpotEmulator) -> None:
    ada = hub.create_contact("ada@example.org")
    [outcome] = connector(hub).push_fields([record(
        "s1", "ada@example.org", ada, email="other@example.org", shoe_size="41",
        first_name="Ada")])
    held = hub.contact(ada) or {}
    assert outcome.error is None and outcome.note == "wrote 1 field(s)"
    assert held["email"] == "ada@example.org" and "shoe_size" not in held


def test_a_record_with_nothing_hubspot_holds_costs_no_call(hub: HubSpotEmulator) -> None:
    [outcome] = connector(hub).push_fields([record("s1", "ada@example.org", None,
                                                   email="ada@example.org", shoe_size="41")])
    assert outcome.error is None and "no field" in outcome.note
    assert hub.total_calls() == 0


def test_contacts_without_a_ref_are_found_by_email_and_their_ref_is_learned(
        hub: HubSpotEmulator) -> None:
    ada = hub.create_contact("ada@example.org")
    outcomes = connector(hub).push_fields([
        record("s1", "Ada@Example.org", first_name="Ada"),
        record("s2", "nobody@example.org", first_name="Nobody"),
    ])
    assert outcomes[0].error is None and outcomes[0].learned_refs == (f"contact:{ada}",)
    assert (outcomes[1].error, outcomes[1].note, outcomes[1].learned_refs) == (
        None, "not in hubspot", ())
    assert (hub.contact(ada) or {})["firstname"] == "Ada"
    assert hub.total_calls(READ) == 1 and hub.total_calls(UPDATE) == 1


def test_a_contact_hubspot_does_not_hold_is_never_created(hub: HubSpotEmulator) -> None:
    [outcome] = connector(hub).push_fields([record("s1", "new@example.org", first_name="New")])
    assert outcome.error is None and outcome.note == "not in hubspot"
    assert hub.find_by_email("new@example.org") is None
    assert hub.total_calls(CONTACTS) == hub.total_calls(READ) == 1


def test_a_record_without_any_identifier_fails_alone(hub: HubSpotEmulator) -> None:
    ada = hub.create_contact("ada@example.org")
    bad, good = connector(hub).push_fields([record("s1", first_name="X"),
                                            record("s2", None, ada, first_name="Ada")])
    assert isinstance(bad.error, PermanentError) and bad.error.error_class == "no_identifier"
    assert good.error is None
    assert hub.total_calls(READ) == 0


def test_refusals_in_a_207_fail_only_their_record(hub: HubSpotEmulator) -> None:
    ada = hub.create_contact("ada@example.org")
    gone, ok = connector(hub).push_fields([
        record("s1", "gone@example.org", "424242", first_name="Gone"),
        record("s2", "ada@example.org", ada, first_name="Ada"),
    ])
    assert ok.error is None and (hub.contact(ada) or {})["firstname"] == "Ada"
    assert isinstance(gone.error, PermanentError)
    assert gone.error.error_class == "hubspot_object_not_found"
    assert "gone@example.org" not in str(gone.error) and "Gone" not in str(gone.error)
    assert hub.total_calls(UPDATE) == 1


def test_two_subjects_naming_one_contact_do_not_spoil_the_batch(hub: HubSpotEmulator) -> None:
    ada = hub.create_contact("ada@example.org")
    first, second = connector(hub).push_fields([record("s1", None, ada, first_name="Ada"),
                                                record("s2", None, ada, first_name="Eve")])
    assert first.error is None and (hub.contact(ada) or {})["firstname"] == "Ada"
    assert isinstance(second.error, PermanentError)
    assert second.error.error_class == "hubspot_shared_contact"


def test_a_full_batch_is_one_update_call(hub: HubSpotEmulator) -> None:
    hs = connector(hub)
    ids = [hub.create_contact(f"p{i}@example.org") for i in range(hs.record_batch_size)]
    outcomes = hs.push_fields([record(f"s{i}", None, c, first_name=f"P{i}")
                               for i, c in enumerate(ids)])
    assert hs.record_batch_size == 100
    assert all(o.error is None for o in outcomes)
    assert hub.total_calls() == hub.total_calls(UPDATE) == 1
    assert (hub.contact(ids[-1]) or {})["firstname"] == "P99"


def test_a_rate_limit_is_transient_and_writes_nothing(hub: HubSpotEmulator) -> None:
    ada = hub.create_contact("ada@example.org")
    hub.inject(Fault(429, {"errorType": "RATE_LIMIT"}, headers={"Retry-After": "3"}))
    with pytest.raises(TransientError) as caught:
        connector(hub).push_fields([record("s1", "ada@example.org", ada, first_name="Ada")])
    assert caught.value.retry_after == 3.0
    assert "ada" not in str(caught.value).lower()
    assert "firstname" not in (hub.contact(ada) or {})


def test_a_server_error_during_the_email_lookup_is_transient(hub: HubSpotEmulator) -> None:
    hub.inject(Fault(500, {"status": "error"}, path_pattern="batch/read"))
    with pytest.raises(TransientError, match="HTTP 500"):
        connector(hub).push_fields([record("s1", "ada@example.org", first_name="Ada")])


def test_our_own_write_echoes_back_as_an_api_change_of_the_canonical_field(
        hub: HubSpotEmulator) -> None:
    bodies: list[bytes] = []

    def receive(request: Request, match: object) -> Response:
        bodies.append(request.body)
        return Response(204)

    hook = Emulator()
    hook.route("POST", "/hooks/hubspot", receive)
    hook.start()
    try:
        ada = hub.create_contact("ada@example.org")
        hub.configure_webhooks(f"{hook.url}/hooks/hubspot",
                               subscriptions=("contact.propertyChange:firstname",))
        connector(hub).push_fields([record("s1", None, ada, first_name="Ada", city="Leeds")])
        hub.flush_webhooks()
    finally:
        hook.stop()
    events = [e for body in bodies for e in connector(hub).parse_events(body)]
    [echo] = events
    assert isinstance(echo, RecordChanged)
    assert [(n, v.value) for n, v in echo.fields] == [("first_name", "Ada")]
    assert echo.meta.occurred_at <= datetime.now(UTC)
