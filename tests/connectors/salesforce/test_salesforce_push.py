"""push_fields makes existing Contacts and Leads hold subjects' minimised fields."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.errors import PermanentError, TransientError
from core.model import DestinationRecord, RecordChanged
from privasync.emulators.http import Fault
from tests.connectors.salesforce.conftest import COMPOSITE, LIMIT_BODY, QUERY, SOBJECTS


def record(subject_id: str, *, refs: tuple[str, ...] = (), email: str | None = None,
           **fields: str | None) -> DestinationRecord:
    return DestinationRecord(subject_id, email, refs, fields)


def test_fields_are_written_under_salesforce_names_in_one_composite_call(emulator, connector):
    contact = emulator.create_contact("ada@example.com")
    lead = emulator.create_lead("bob@example.com")
    stamped = emulator.record(contact)["SystemModstamp"]

    ada, bob = connector.push_fields([
        record("s1", refs=(f"Contact:{contact}",), first_name="Ada", city="London",
               date_of_birth="1815-12-10", health_note="asthma"),
        record("s2", refs=(f"salesforce:Lead:{lead}",), first_name="Bob", city="Paris",
               date_of_birth="1990-01-01"),
    ])

    assert (ada.error, bob.error) == (None, None)
    written = emulator.record(contact)
    assert (written["FirstName"], written["MailingCity"], written["Birthdate"],
            written["Health_Note__c"]) == ("Ada", "London", "1815-12-10", "asthma")
    assert written["SystemModstamp"] > stamped
    assert emulator.record(lead)["FirstName"] == "Bob"
    # A Lead has no MailingCity or Birthdate: those are skipped, not sent.
    assert "Birthdate" not in emulator.record(lead) and emulator.record(lead)["City"] is None
    assert bob.detail == {"sent": "first_name", "skipped": "city,date_of_birth"}
    assert emulator.total_calls() == 1 and emulator.total_calls(COMPOSITE) == 1
    assert connector.record_batch_size == 200


def test_email_and_fields_salesforce_does_not_map_are_never_written(emulator, connector):
    contact = emulator.create_contact("ada@example.com")

    written, nothing = connector.push_fields([
        record("s1", refs=(f"Contact:{contact}",), email="ada@example.com",
               first_name="Ada", favourite_colour="blue"),
        record("s2", refs=(f"Contact:{contact}",), email="new@example.com"),
    ])

    assert written.error is None and written.note == "1 field(s) on 1 record(s)"
    assert emulator.record(contact)["Email"] == "ada@example.com"
    assert emulator.record(contact)["FirstName"] == "Ada"
    assert (nothing.error, nothing.note) == (None, "no field salesforce holds")
    assert emulator.total_calls() == 1


def test_a_none_value_clears_the_field(emulator, connector):
    contact = emulator.create_contact("ada@example.com")
    emulator.ui_edit(contact, Phone="0123")

    [outcome] = connector.push_fields([record("s1", refs=(f"Contact:{contact}",), phone=None)])

    assert outcome.error is None and emulator.record(contact)["Phone"] is None


def test_records_without_refs_are_found_by_email_and_never_created(emulator, connector):
    contact = emulator.create_contact("Ada@Example.com")
    lead = emulator.create_lead("ada@example.com")

    found, missing = connector.push_fields([
        record("s1", email="ada@example.com", first_name="Ada", date_of_birth="1815-12-10"),
        record("s2", email="nobody@example.com", first_name="Nobody"),
    ])

    assert set(found.learned_refs) == {f"Contact:{contact}", f"Lead:{lead}"}
    assert found.error is None and found.note == "2 field(s) on 2 record(s)"
    assert emulator.record(contact)["Birthdate"] == "1815-12-10"
    assert emulator.record(lead)["FirstName"] == "Ada" and "Birthdate" not in emulator.record(lead)
    assert (missing.error, missing.learned_refs, missing.note) == (None, (), "not in salesforce")
    assert emulator.find_by_email("nobody@example.com") == []
    assert emulator.total_calls(SOBJECTS) == 0  # no create
    assert emulator.total_calls(QUERY) == 2 and emulator.total_calls(COMPOSITE) == 1


def test_no_lookup_is_made_of_a_type_that_takes_none_of_the_fields(emulator, connector):
    contact = emulator.create_contact("ada@example.com")

    [outcome] = connector.push_fields([record("s1", email="ada@example.com",
                                              date_of_birth="1815-12-10")])

    assert outcome.learned_refs == (f"Contact:{contact}",)
    assert emulator.total_calls(QUERY) == 1 and emulator.total_calls(COMPOSITE) == 1


def test_a_record_rejected_by_a_validation_rule_fails_only_its_subject(emulator, connector):
    fine = emulator.create_contact("ada@example.com")
    blocked = emulator.create_contact("bob@example.com")
    emulator.reject_writes(blocked)

    ok, failed = connector.push_fields([
        record("s1", refs=(f"Contact:{fine}",), first_name="Ada"),
        record("s2", refs=(f"Contact:{blocked}",), first_name="Robert", health_note="private"),
    ])

    assert ok.error is None and emulator.record(fine)["FirstName"] == "Ada"
    assert isinstance(failed.error, PermanentError)
    assert failed.error.error_class == "field_custom_validation_exception"
    assert blocked in str(failed.error)
    assert not any(data in str(failed.error) for data in ("bob@", "Robert", "private"))
    assert emulator.record(blocked)["FirstName"] is None


def test_a_deleted_record_is_a_per_record_failure(emulator, connector):
    gone = emulator.create_contact("ada@example.com")
    emulator.ui_delete(gone)

    [outcome] = connector.push_fields([record("s1", refs=(f"Contact:{gone}",), first_name="A")])

    assert isinstance(outcome.error, PermanentError)
    assert outcome.error.error_class == "entity_is_deleted"


def test_the_request_limit_is_a_transient_error_for_the_whole_batch(emulator, connector):
    contact = emulator.create_contact("ada@example.com")
    emulator.inject(Fault(403, LIMIT_BODY, path_pattern="composite"))

    with pytest.raises(TransientError) as caught:
        connector.push_fields([record("s1", refs=(f"Contact:{contact}",), first_name="Ada")])

    assert caught.value.error_class == "request_limit_exceeded"
    assert caught.value.retry_after is not None and caught.value.retry_after > 0
    assert emulator.record(contact)["FirstName"] is None


def test_a_full_batch_of_200_takes_one_lookup_per_type_and_one_write(emulator, connector):
    for i in range(200):
        emulator.create_contact(f"p{i}@example.com")

    outcomes = connector.push_fields(
        [record(f"s{i}", email=f"p{i}@example.com", first_name=f"P{i}") for i in range(200)])

    assert all(o.error is None and len(o.learned_refs) == 1 for o in outcomes)
    assert emulator.total_calls(QUERY) == 2 and emulator.total_calls(COMPOSITE) == 1
    assert emulator.record(emulator.find_by_email("p7@example.com")[0])["FirstName"] == "P7"


def test_a_pushed_value_comes_back_in_the_next_poll_as_the_same_value(emulator, connector):
    contact = emulator.create_contact("ada@example.com")
    emulator.advance(timedelta(minutes=2))
    first = connector.poll(None, emulator.now())

    connector.push_fields([record("s1", refs=(f"Contact:{contact}",), first_name="Ada")])
    emulator.advance(timedelta(minutes=2))
    echo = connector.poll(first.cursor, emulator.now())

    [event] = [e for e in echo.events if isinstance(e, RecordChanged)]
    assert dict(event.fields)["first_name"].value == "Ada"  # intake's hash drops it as unchanged
    assert event.meta.occurred_at == emulator.record(contact)["SystemModstamp"]
