"""The SOQL path: changes made seconds ago are polled without waiting for the minute."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.salesforce import SalesforceCursor
from connectors.salesforce import poller as poller_module
from connectors.salesforce.client import SalesforceClient
from core.model import ConsentChanged, ConsentStatus, ErasureRequested, RecordChanged
from tests.connectors.salesforce.conftest import (
    QUERY,
    at_a_minute_start,
    later,
    poll_by_both_paths,
    ref,
    stamp,
)


@pytest.fixture
def soql(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every SOQL query the connector sends, in order."""
    sent: list[str] = []
    original = SalesforceClient.query_all

    def spy(self: SalesforceClient, what: str, text: str) -> list[dict[str, object]]:
        sent.append(text)
        return original(self, what, text)

    monkeypatch.setattr(SalesforceClient, "query_all", spy)
    return sent


def consent_events(events, record_id, sobject="Contact"):
    return [e for e in events
            if isinstance(e, ConsentChanged) and e.subject.ref == ref(record_id, sobject)]


def test_an_opt_out_made_seconds_ago_is_found_by_the_next_poll(emulator, connector):
    at_a_minute_start(emulator)
    contact = emulator.create_contact("ada@example.com")
    first = connector.poll(None, emulator.now())
    emulator.ui_set_opt_out(contact, True)

    second = connector.poll(first.cursor, emulator.now())

    [event] = consent_events(second.events, contact)
    assert {c.status for c in event.changes} == {ConsentStatus.WITHDRAWN}
    assert event.meta.occurred_at == stamp(emulator, contact)
    assert event.meta.kind == "Contact.updated"
    # getUpdated covers only whole minutes: it cannot have reported this change.
    assert second.cursor.updated_until < stamp(emulator, contact)
    assert second.cursor.modstamp_until == stamp(emulator, contact)


def test_dont_solicit_and_forget_made_seconds_ago_are_found_through_the_individual(
        emulator, connector):
    at_a_minute_start(emulator)
    contact = emulator.create_contact("ada@example.com", with_individual=True)
    lead = emulator.create_lead("bob@example.com", with_individual=True)
    first = connector.poll(None, emulator.now())
    emulator.ui_set_solicit_opt_out(contact, True)
    emulator.ui_set_should_forget(lead)
    before = emulator.total_calls()

    second = connector.poll(first.cursor, emulator.now())

    [withdrawal] = consent_events(second.events, contact)
    assert {c.status for c in withdrawal.changes} == {ConsentStatus.WITHDRAWN}
    individual = (emulator.record(contact) or {})["IndividualId"]
    assert withdrawal.meta.occurred_at == stamp(emulator, individual)
    [erasure] = [e for e in second.events if isinstance(e, ErasureRequested)]
    assert erasure.subject.ref == ref(lead, "Lead")
    assert emulator.total_calls() - before == 8  # the Individuals rode along in the queries


def test_the_poll_sends_one_modstamp_query_per_type_with_an_unquoted_literal(
        emulator, connector, soql):
    at_a_minute_start(emulator)
    emulator.advance(timedelta(seconds=10))
    contact = emulator.create_contact("ada@example.com")
    first = connector.poll(None, emulator.now())
    assert first.cursor.modstamp_until == stamp(emulator, contact)
    soql.clear()

    connector.poll(first.cursor, emulator.now())

    since = (stamp(emulator, contact) - timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert soql == [
        f"SELECT Id, SystemModstamp FROM Individual WHERE SystemModstamp > {since} "
        "ORDER BY SystemModstamp LIMIT 2000",
        *(f"SELECT {poller_module.COLUMNS}, {fields} FROM {t} WHERE SystemModstamp > {since} "
          "ORDER BY SystemModstamp LIMIT 2000" for t, fields in [
              ("Contact", "FirstName, LastName, Phone, MailingCity, Birthdate, Health_Note__c, "
                          "Customer_Since__c"),
              ("Lead", "FirstName, LastName, Phone, Health_Note__c, Customer_Since__c")]),
    ]


def test_past_the_minute_boundary_the_soql_path_starts_where_get_updated_stopped(
        emulator, connector, soql):
    at_a_minute_start(emulator)
    contact = emulator.create_contact("ada@example.com")
    first = connector.poll(None, emulator.now())
    soql.clear()

    second = connector.poll(first.cursor, later(emulator))
    idle = connector.poll(second.cursor, emulator.now())

    covered = second.cursor.updated_until.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f"WHERE SystemModstamp > {covered} ORDER BY" in soql[0]
    # getUpdated reports the contact once, as the very event the SOQL path made;
    # after that the overlap no longer returns it.
    assert second.events == first.events
    assert idle.events == ()
    assert second.cursor.modstamp_until == stamp(emulator, contact)


def test_a_change_seen_by_both_paths_in_one_poll_yields_one_event_and_no_extra_read(
        emulator, connector):
    contact = emulator.create_contact("ada@example.com", with_individual=True)
    first = connector.poll(None, later(emulator))
    emulator.ui_set_opt_out(contact, True)
    emulator.ui_set_solicit_opt_out(contact, True)
    before = emulator.total_calls(QUERY)

    # getUpdated reports the Contact and its Individual; the SOQL Contact query
    # returns the Contact through its IndividualId. It is not read again.
    second = connector.poll(first.cursor, later(emulator))

    [event, fields] = second.events  # its consent, and its mapped fields as they stand
    assert event.subject.ref == fields.subject.ref == ref(contact)
    assert {c.status for c in event.changes} == {ConsentStatus.WITHDRAWN}
    assert isinstance(fields, RecordChanged)
    assert emulator.total_calls(QUERY) - before == 3


def test_both_paths_make_the_identical_event_for_the_same_row(emulator, connector):
    contact, by_soql, by_get_updated, before = poll_by_both_paths(
        emulator, connector, lambda contact: emulator.ui_set_opt_out(contact, True))

    assert emulator.total_calls(QUERY) - before == 3 + 1  # one read of what getUpdated listed
    [soql_event] = consent_events(by_soql.events, contact)
    [read_event] = consent_events(by_get_updated.events, contact)
    assert read_event == soql_event  # same id: intake keeps one


def test_the_overlap_returns_only_identical_events_with_unchanged_ids(emulator, connector):
    at_a_minute_start(emulator)
    contact = emulator.create_contact("ada@example.com")
    first = connector.poll(None, emulator.now())
    emulator.ui_set_opt_out(contact, True)
    second = connector.poll(first.cursor, emulator.now())

    third = connector.poll(second.cursor, emulator.now())
    fourth = connector.poll(third.cursor, emulator.now() + timedelta(seconds=30))

    [event, fields] = second.events
    assert third.events in ((), second.events) and fourth.events in ((), second.events)
    assert event.meta.source_event_id == f"Contact:{contact}:{stamp(emulator, contact).isoformat()}"
    assert fields.meta.source_event_id == event.meta.source_event_id + ":record"
    assert third.cursor.modstamp_until == fourth.cursor.modstamp_until == stamp(emulator, contact)


def test_the_modstamp_cursor_never_moves_past_now(emulator, connector):
    contact = emulator.create_contact("ada@example.com")
    early = emulator.now() - timedelta(minutes=1)  # our clock behind the org's

    first = connector.poll(None, early)
    second = connector.poll(first.cursor, emulator.now())

    assert first.cursor.modstamp_until == early < stamp(emulator, contact)
    assert second.cursor.modstamp_until == stamp(emulator, contact)


@pytest.mark.parametrize("previous, seen, now, expected", [
    (None, None, 30, None),
    (None, 10, 30, 10),
    (None, 40, 30, 30),
    (20, None, 30, 20),
    (20, 10, 30, 20),
    (20, 25, 30, 25),
    (20, 40, 30, 30),
    (50, 40, 30, 50),
])
def test_the_next_modstamp_is_the_latest_seen_capped_at_now_and_never_earlier(
        previous, seen, now, expected):
    base = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)

    def at(seconds):
        return None if seconds is None else base + timedelta(seconds=seconds)

    assert poller_module._next_modstamp(at(previous), at(seen), at(now)) == at(expected)


def test_a_cursor_ahead_of_the_org_never_moves_back_and_get_updated_still_reports(
        emulator, connector):
    first = connector.poll(None, later(emulator))
    contact = emulator.create_contact("ada@example.com", opted_out=True)
    ahead = emulator.now() + timedelta(hours=1)  # say, stored while the org's clock ran fast
    pinned = SalesforceCursor(first.cursor.updated_until, first.cursor.deleted_until, ahead)

    result = connector.poll(pinned, later(emulator))

    [event] = consent_events(result.events, contact)
    assert {c.status for c in event.changes} == {ConsentStatus.WITHDRAWN}
    assert result.cursor.modstamp_until == ahead


def test_a_poll_with_nothing_seen_keeps_the_previous_modstamp(emulator, connector):
    at_a_minute_start(emulator)
    first = connector.poll(None, emulator.now())
    assert first.cursor.modstamp_until is None  # nothing in the org yet
    contact = emulator.create_contact("ada@example.com")
    second = connector.poll(first.cursor, emulator.now())

    third = connector.poll(second.cursor, later(emulator))

    assert second.cursor.modstamp_until == stamp(emulator, contact)
    assert third.cursor.modstamp_until == stamp(emulator, contact)


def test_a_cursor_from_before_the_modstamp_path_starts_where_get_updated_stopped(
        emulator, connector, soql):
    at_a_minute_start(emulator)
    old = SalesforceCursor.from_json(SalesforceCursor(
        emulator.now() - timedelta(minutes=1), emulator.now() - timedelta(minutes=1),
    ).to_json().replace(', "modstamp_until": null', ""))
    contact = emulator.create_contact("ada@example.com", opted_out=True)

    result = connector.poll(old, emulator.now())

    [event] = consent_events(result.events, contact)
    assert {c.status for c in event.changes} == {ConsentStatus.WITHDRAWN}
    assert old.modstamp_until is None
    literal = result.cursor.updated_until.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f"WHERE SystemModstamp > {literal} ORDER BY" in soql[0]
    assert result.cursor.updated_until < stamp(emulator, contact)
    assert result.cursor.modstamp_until == stamp(emulator, contact)


def test_a_query_that_hits_its_limit_holds_the_cursor_and_the_next_poll_pages_on(
        emulator, connector, monkeypatch):
    monkeypatch.setattr(poller_module, "MODSTAMP_LIMIT", 3)
    at_a_minute_start(emulator)
    first = connector.poll(None, emulator.now())
    contacts = []
    for i in range(5):
        emulator.advance(timedelta(seconds=6))
        contacts.append(emulator.create_contact(f"c{i}@example.com", opted_out=True))
    lead = emulator.create_lead("lead@example.com", opted_out=True)

    second = connector.poll(first.cursor, emulator.now())
    third = connector.poll(second.cursor, emulator.now())
    fourth = connector.poll(third.cursor, emulator.now())

    # Held at the last row of the Contact query, though the Lead query saw later rows.
    assert second.cursor.modstamp_until == stamp(emulator, contacts[2])
    assert {e.subject.ref for e in second.events} == {
        *(ref(c) for c in contacts[:3]), ref(lead, "Lead")}
    assert {e.subject.ref for e in third.events} == {
        *(ref(c) for c in contacts[2:]), ref(lead, "Lead")}
    # Three rows again fill the limit: held at the last, then released once under it.
    assert third.cursor.modstamp_until == stamp(emulator, contacts[4])
    assert fourth.cursor.modstamp_until == stamp(emulator, lead)


def test_a_burst_past_the_limit_within_the_overlap_is_finished_by_get_updated(
        emulator, connector, monkeypatch):
    monkeypatch.setattr(poller_module, "MODSTAMP_LIMIT", 3)
    at_a_minute_start(emulator)
    first = connector.poll(None, emulator.now())
    burst = [emulator.create_contact(f"c{i}@example.com", opted_out=True) for i in range(8)]

    stuck = connector.poll(first.cursor, emulator.now() + timedelta(seconds=1))
    again = connector.poll(stuck.cursor, emulator.now() + timedelta(seconds=1))
    done = connector.poll(again.cursor, later(emulator))
    idle = connector.poll(done.cursor, later(emulator))

    # Eight rows in 5 s never page past a limit of 3 through the overlap...
    assert {e.subject.ref for e in again.events} == {ref(c) for c in burst[:3]}
    # ...but past the minute boundary getUpdated reports them all, and it is over.
    assert {e.subject.ref for e in done.events} == {ref(c) for c in burst}
    assert idle.events == ()
