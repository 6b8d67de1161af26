"""Polling reports mapped Contact and Lead fields as RecordChanged, under canonical names."""

from __future__ import annotations

import pytest

from connectors.salesforce import SalesforceConnector
from connectors.salesforce.people import as_text
from core.mappings import FieldMapping, SystemMapping
from core.model import ConsentChanged, RecordChanged
from tests.connectors.salesforce.conftest import (
    MAPPING,
    QUERY,
    later,
    poll_by_both_paths,
    ref,
    stamp,
)


def field_events(events, record_id, sobject="Contact") -> list[RecordChanged]:
    return [e for e in events
            if isinstance(e, RecordChanged) and e.subject.ref == ref(record_id, sobject)]


def test_changed_fields_show_up_in_the_next_poll_under_canonical_names(emulator, connector):
    contact = emulator.create_contact("ada@example.com", last_name="Lovelace")
    first = connector.poll(None, later(emulator))
    emulator.ui_edit(contact, FirstName="Ada", Birthdate="1815-12-10",
                     Health_Note__c="asthma")
    before = emulator.total_calls()

    second = connector.poll(first.cursor, later(emulator))

    [event] = field_events(second.events, contact)
    changed_at = stamp(emulator, contact)
    assert dict((name, value.value) for name, value in event.fields) == {
        "email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace",
        "phone": None, "city": None, "date_of_birth": "1815-12-10",
        "health_note": "asthma", "customer_since": None}
    assert {value.collected_at for _, value in event.fields} == {changed_at}
    assert event.meta.occurred_at == changed_at and event.meta.kind == "Contact.fields"
    assert event.meta.source_event_id == f"Contact:{contact}:{changed_at.isoformat()}:record"
    [consent] = [e for e in second.events if isinstance(e, ConsentChanged)]
    assert event.subject == consent.subject
    assert event.meta.source_event_id != consent.meta.source_event_id
    # The fields ride along: 8 calls, plus the one read of the id getUpdated listed.
    assert emulator.total_calls() - before == 8 + 1


def test_a_lead_reports_only_the_fields_a_lead_has(emulator, connector):
    lead = emulator.create_lead("bob@example.com")
    emulator.ui_edit(lead, Phone="+33 1 23 45 67 89", Customer_Since__c="2021-03-04")

    result = connector.poll(None, later(emulator))

    [event] = field_events(result.events, lead, "Lead")
    values = dict((name, value.value) for name, value in event.fields)
    assert set(values) == {"email", "first_name", "last_name", "phone", "health_note",
                           "customer_since"}
    assert values["phone"] == "+33 1 23 45 67 89"
    assert values["customer_since"] == "2021-03-04"


def test_a_cleared_field_is_reported_as_none(emulator, connector):
    contact = emulator.create_contact("ada@example.com")
    emulator.ui_edit(contact, Phone="0123")
    first = connector.poll(None, later(emulator))
    emulator.ui_edit(contact, Phone=None)

    second = connector.poll(first.cursor, later(emulator))

    [before] = field_events(first.events, contact)
    [after] = field_events(second.events, contact)
    assert dict(before.fields)["phone"].value == "0123"
    assert dict(after.fields)["phone"].value is None


def test_both_paths_make_the_identical_record_changed_for_the_same_row(emulator, connector):
    contact, by_soql, by_get_updated, before = poll_by_both_paths(
        emulator, connector,
        lambda contact: emulator.ui_edit(contact, FirstName="Ada", Birthdate="1815-12-10"))

    assert emulator.total_calls(QUERY) - before == 3 + 1  # one read of what getUpdated listed
    [soql_event] = field_events(by_soql.events, contact)
    [read_event] = field_events(by_get_updated.events, contact)
    assert read_event == soql_event  # same id: intake keeps one
    assert dict(read_event.fields)["first_name"].value == "Ada"


def test_an_individual_change_repeats_the_record_event_with_the_same_id(emulator, connector):
    contact = emulator.create_contact("ada@example.com", with_individual=True)
    first = connector.poll(None, later(emulator))

    emulator.ui_set_solicit_opt_out(contact, True)  # the Contact's own modstamp stays
    second = connector.poll(first.cursor, later(emulator))

    assert field_events(second.events, contact) == field_events(first.events, contact)


def test_a_mapping_without_fields_polls_no_fields(emulator):
    bare = SystemMapping(system="salesforce", consent=MAPPING.consent)
    connector = SalesforceConnector(instance_url=emulator.url, session_id=emulator.session_id,
                                    mapping=bare)
    emulator.create_contact("ada@example.com")

    result = connector.poll(None, later(emulator))

    assert [type(e) for e in result.events] == [ConsentChanged]


@pytest.mark.parametrize(("value", "text"), [
    ("1815-12-10", "1815-12-10"), (True, "true"), (False, "false"), (42, "42"),
    (2.5, "2.5"), (None, None), ("", ""),
])
def test_field_values_become_canonical_text(value, text):
    assert as_text(value) == text


def test_a_mapped_field_neither_type_has_is_not_queried_and_is_named_in_a_warning(
        emulator, caplog):
    odd = FieldMapping(canonical="shoe_size", category="user.demographic", purposes=("service",))
    mapping = MAPPING.model_copy(update={"fields": {**MAPPING.fields, "ShoeSize": odd}})

    connector = SalesforceConnector(instance_url=emulator.url, session_id=emulator.session_id,
                                    mapping=mapping)
    result = connector.poll(None, later(emulator))

    assert result.events == ()  # the queries went through: no INVALID_FIELD
    assert "ShoeSize" in caplog.text
