"""Polling the Salesforce emulator turns admin clicks into canonical events."""

from __future__ import annotations

from core.model import (
    ConsentChanged,
    ConsentStatus,
    ErasureRequested,
    SubjectDeleted,
)
from tests.connectors.salesforce.conftest import MAPPING, later, ref

PURPOSES = set(MAPPING.consent.all_email)


def consent_events(result, record_id, sobject="Contact"):
    return [e for e in result.events
            if isinstance(e, ConsentChanged) and e.subject.ref == ref(record_id, sobject)]


def test_a_poll_after_an_opt_out_yields_a_withdrawal_for_that_contact(emulator, connector):
    contact = emulator.create_contact("ada@example.com")
    first = connector.poll(None, later(emulator))
    emulator.ui_set_opt_out(contact, True)

    second = connector.poll(first.cursor, later(emulator))

    [event] = consent_events(second, contact)
    assert event.subject.email == "ada@example.com"
    assert {(c.purpose, c.channel, c.status) for c in event.changes} == {
        (p, "email", ConsentStatus.WITHDRAWN) for p in PURPOSES}
    assert event.meta.occurred_at == emulator.record(contact)["SystemModstamp"]
    assert event.meta.source == "salesforce" and event.meta.kind == "Contact.updated"
    assert event.meta.source_event_id.startswith(f"Contact:{contact}:")
    assert second.full_resync is False


def test_a_second_poll_from_the_returned_cursor_yields_nothing_new(emulator, connector):
    emulator.create_contact("ada@example.com", opted_out=True)
    emulator.create_lead("bob@example.com")
    now = later(emulator)
    first = connector.poll(None, now)

    again = connector.poll(first.cursor, now)
    after_a_while = connector.poll(again.cursor, later(emulator))

    assert len(first.events) == 2 * 2  # consent and fields of each record
    # The SOQL path's 5 s overlap may return the last rows again: as the same events.
    assert set(again.events) <= set(first.events)
    assert set(after_a_while.events) <= set(first.events)
    assert after_a_while.cursor.updated_until > first.cursor.updated_until


def test_a_lead_that_never_opted_out_is_reported_as_an_unevidenced_grant(emulator, connector):
    lead = emulator.create_lead("bob@example.com")

    result = connector.poll(None, later(emulator))

    [event] = consent_events(result, lead, "Lead")
    assert {c.status for c in event.changes} == {ConsentStatus.GRANTED}
    assert event.evidence is None


def test_dont_solicit_on_the_individual_counts_as_a_withdrawal(emulator, connector):
    contact = emulator.create_contact("ada@example.com", with_individual=True)
    first = connector.poll(None, later(emulator))
    emulator.ui_set_solicit_opt_out(contact, True)

    second = connector.poll(first.cursor, later(emulator))

    [event] = consent_events(second, contact)
    assert {c.status for c in event.changes} == {ConsentStatus.WITHDRAWN}
    individual = emulator.record(contact)["IndividualId"]
    assert event.meta.occurred_at == emulator.record(individual)["SystemModstamp"]


def test_should_forget_on_the_individual_yields_an_erasure_request(emulator, connector):
    contact = emulator.create_contact("ada@example.com", with_individual=True)
    first = connector.poll(None, later(emulator))
    emulator.ui_set_should_forget(contact)

    second = connector.poll(first.cursor, later(emulator))

    [erasure] = [e for e in second.events if isinstance(e, ErasureRequested)]
    assert erasure.subject.ref == ref(contact)
    assert erasure.subject.email == "ada@example.com"
    assert erasure.meta.source_event_id.endswith(":forget")


def test_a_deleted_record_yields_subject_deleted(emulator, connector):
    lead = emulator.create_lead("bob@example.com")
    first = connector.poll(None, later(emulator))
    emulator.ui_delete(lead)

    second = connector.poll(first.cursor, later(emulator))

    [deleted] = second.events
    assert isinstance(deleted, SubjectDeleted)
    assert deleted.subject.ref == ref(lead, "Lead") and deleted.subject.email is None
    assert deleted.meta.source_event_id.startswith(f"Lead:{lead}:deleted:")
    assert deleted.meta.occurred_at == emulator.record(lead)["SystemModstamp"]


def test_an_emptied_recycle_bin_triggers_a_full_resync_of_every_opt_out(emulator, connector):
    out = emulator.create_contact("ada@example.com", opted_out=True)
    solicit = emulator.create_contact("cy@example.com", with_individual=True)
    emulator.ui_set_solicit_opt_out(solicit, True)
    lead_out = emulator.create_lead("bob@example.com", opted_out=True)
    emulator.create_contact("in@example.com")
    first = connector.poll(None, later(emulator))
    emulator.set_earliest_deleted_available(emulator.now())

    second = connector.poll(first.cursor, later(emulator))

    assert second.full_resync is True
    withdrawn = {e.subject.ref for e in second.events if isinstance(e, ConsentChanged)
                 and {c.status for c in e.changes} == {ConsentStatus.WITHDRAWN}}
    assert withdrawn == {ref(out), ref(solicit), ref(lead_out, "Lead")}


def test_a_poll_reads_each_type_with_one_query_however_many_records_changed(emulator, connector):
    for i in range(30):
        emulator.create_contact(f"c{i}@example.com", opted_out=i % 2 == 0)
        emulator.create_lead(f"l{i}@example.com")

    result = connector.poll(None, later(emulator))

    assert len(result.events) == 60 * 2  # consent and fields of each record
    assert emulator.total_calls("/services/data/v59.0/query") == 3 + 2
    assert emulator.total_calls() == 3 + 3 + 2 + 2  # updated, modstamp query, read, deleted


def test_a_poll_when_nothing_changed_makes_eight_calls(emulator, connector):
    emulator.create_contact("ada@example.com")
    first = connector.poll(None, later(emulator))
    before = emulator.total_calls()

    connector.poll(first.cursor, later(emulator))

    assert emulator.total_calls() - before == 8
