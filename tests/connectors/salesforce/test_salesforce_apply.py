"""apply_consent makes the emulator's Contacts, Leads and their Individuals hold each
subject's opt-out."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.errors import PermanentError
from core.model import (
    Channel,
    ConsentChanged,
    ConsentState,
    ConsentStatus,
    DestinationSubject,
)
from tests.connectors.salesforce.conftest import COMPOSITE, QUERY, later, ref

WHEN = datetime(2024, 1, 2, 10, 0, tzinfo=UTC)


def subject(subject_id: str, *, refs: tuple[str, ...] = (), email: str | None = None,
            **statuses: ConsentStatus) -> DestinationSubject:
    consents = tuple(ConsentState(p, Channel.EMAIL, s, WHEN, "test") for p, s in statuses.items())
    return DestinationSubject(subject_id, email, refs, consents)


W, G = ConsentStatus.WITHDRAWN, ConsentStatus.GRANTED


def consent_statuses(result, record_id):
    return {c.status for e in result.events if isinstance(e, ConsentChanged)
            and e.subject.ref == ref(record_id) for c in e.changes}


def test_withdrawals_are_written_in_one_lookup_per_type_and_one_composite_call(emulator,
                                                                              connector):
    contact = emulator.create_contact("ada@example.com")
    lead = emulator.create_lead("bob@example.com")

    outcomes = connector.apply_consent([
        subject("s1", refs=(f"Contact:{contact}",), offers=W),
        subject("s2", refs=(f"salesforce:Lead:{lead}",), product_news=W, offers=W),
    ])

    assert [o.error for o in outcomes] == [None, None]
    assert [o.note for o in outcomes] == ["opted out on 1 record(s)"] * 2
    assert emulator.record(contact)["HasOptedOutOfEmail"] is True
    assert emulator.record(lead)["HasOptedOutOfEmail"] is True
    # The lookups find the records' Individuals; this org has none, and pays for asking.
    assert emulator.total_calls(QUERY) == 2 and emulator.total_calls(COMPOSITE) == 1
    assert emulator.total_calls() == 3


@pytest.mark.parametrize("sobject", ["Contact", "Lead"])
def test_a_withdrawal_sets_dont_solicit_on_the_individual_in_the_same_composite_call(
        emulator, connector, sobject):
    create = emulator.create_contact if sobject == "Contact" else emulator.create_lead
    record = create("ada@example.com", with_individual=True)
    individual = emulator.record(record)["IndividualId"]

    [outcome] = connector.apply_consent([subject("s1", refs=(f"{sobject}:{record}",),
                                                 offers=W)])

    assert outcome.error is None
    assert outcome.note == "opted out on 1 record(s) and 1 Individual(s)"
    assert emulator.record(record)["HasOptedOutOfEmail"] is True
    assert emulator.record(individual)["HasOptedOutSolicit"] is True
    assert emulator.total_calls() == 2  # one lookup, one PATCH carrying both records
    assert emulator.total_calls(QUERY) == 1 and emulator.total_calls(COMPOSITE) == 1


def test_a_contact_without_an_individual_gets_only_the_email_opt_out(emulator, connector):
    contact = emulator.create_contact("ada@example.com")
    other = emulator.create_contact("bob@example.com", with_individual=True)
    untouched = emulator.record(emulator.record(other)["IndividualId"])

    [outcome] = connector.apply_consent([subject("s1", refs=(f"Contact:{contact}",),
                                                 offers=W)])

    assert outcome.error is None and outcome.note == "opted out on 1 record(s)"
    assert emulator.record(contact)["HasOptedOutOfEmail"] is True
    assert emulator.record(contact)["IndividualId"] is None
    assert emulator.record(untouched["Id"]) == untouched
    assert emulator.total_calls(QUERY) == 1 and emulator.total_calls(COMPOSITE) == 1


def test_a_withdrawal_found_by_email_reaches_the_individual_without_another_query(emulator,
                                                                                connector):
    contact = emulator.create_contact("ada@example.com", with_individual=True)
    individual = emulator.record(contact)["IndividualId"]

    [outcome] = connector.apply_consent([subject("s1", email="ada@example.com", offers=W)])

    assert outcome.error is None and outcome.learned_refs == (f"Contact:{contact}",)
    assert emulator.record(individual)["HasOptedOutSolicit"] is True
    assert emulator.total_calls(QUERY) == 2 and emulator.total_calls(COMPOSITE) == 1


def test_after_a_withdrawal_the_poller_reads_the_record_as_withdrawn(emulator, connector):
    contact = emulator.create_contact("ada@example.com", with_individual=True)
    first = connector.poll(None, later(emulator))

    connector.apply_consent([subject("s1", refs=(f"Contact:{contact}",), offers=W)])
    by_soql = connector.poll(first.cursor, emulator.now())
    by_get_updated = connector.poll(by_soql.cursor, later(emulator))

    assert consent_statuses(by_soql, contact) == {ConsentStatus.WITHDRAWN}
    for result in (by_soql, by_get_updated):
        assert all(c.status is ConsentStatus.WITHDRAWN for e in result.events
                   if isinstance(e, ConsentChanged) for c in e.changes)


@pytest.mark.parametrize("withdrawal_first", [True, False])
def test_a_withdrawal_beats_a_grant_on_a_shared_individual(emulator, connector,
                                                           withdrawal_first):
    leaving = emulator.create_contact("ada@example.com", with_individual=True)
    individual = emulator.record(leaving)["IndividualId"]
    staying = emulator.create_contact("ada@work.example.com")
    emulator.ui_edit(staying, IndividualId=individual)
    batch = [subject("s1", refs=(f"Contact:{leaving}",), offers=W),
             subject("s2", refs=(f"Contact:{staying}",), offers=G)]

    outcomes = connector.apply_consent(batch if withdrawal_first else batch[::-1])

    assert [o.error for o in outcomes] == [None, None]
    assert emulator.record(individual)["HasOptedOutSolicit"] is True
    assert emulator.record(leaving)["HasOptedOutOfEmail"] is True
    assert emulator.record(staying)["HasOptedOutOfEmail"] is False
    assert emulator.total_calls(QUERY) == 1 and emulator.total_calls(COMPOSITE) == 1


def test_a_rejected_individual_fails_only_the_subjects_it_was_written_for(emulator, connector):
    blocked = emulator.create_contact("ada@example.com", with_individual=True)
    individual = emulator.record(blocked)["IndividualId"]
    emulator.reject_writes(individual)
    fine = emulator.create_contact("bob@example.com", with_individual=True)

    failed, ok = connector.apply_consent([
        subject("s1", refs=(f"Contact:{blocked}",), offers=W),
        subject("s2", refs=(f"Contact:{fine}",), offers=W),
    ])

    assert isinstance(failed.error, PermanentError)
    assert failed.error.error_class == "field_custom_validation_exception"
    assert individual in str(failed.error) and "ada@" not in str(failed.error)
    assert emulator.record(blocked)["HasOptedOutOfEmail"] is True
    assert emulator.record(individual)["HasOptedOutSolicit"] is False
    assert ok.error is None
    assert emulator.record(emulator.record(fine)["IndividualId"])["HasOptedOutSolicit"] is True


def test_a_withdrawal_of_any_covered_purpose_wins_over_a_grant(emulator, connector):
    contact = emulator.create_contact("ada@example.com")

    connector.apply_consent([subject("s1", refs=(f"Contact:{contact}",),
                                     product_news=G, offers=W)])

    assert emulator.record(contact)["HasOptedOutOfEmail"] is True


def test_a_grant_clears_the_opt_out_and_dont_solicit_on_the_individual(emulator, connector):
    contact = emulator.create_contact("ada@example.com", opted_out=True, with_individual=True)
    emulator.ui_set_solicit_opt_out(contact, True)
    individual = emulator.record(contact)["IndividualId"]

    [outcome] = connector.apply_consent([subject("s1", refs=(f"Contact:{contact}",),
                                                 product_news=G, offers=G)])

    assert outcome.error is None
    assert emulator.record(contact)["HasOptedOutOfEmail"] is False
    assert emulator.record(individual)["HasOptedOutSolicit"] is False
    assert emulator.total_calls(QUERY) == 1 and emulator.total_calls(COMPOSITE) == 1


def test_subjects_without_refs_are_found_by_email_and_their_refs_learned(emulator, connector):
    contact = emulator.create_contact("Ada@Example.com")
    lead = emulator.create_lead("ada@example.com")
    other = emulator.create_contact("cy@example.com")

    found, missing = connector.apply_consent([
        subject("s1", email="ada@example.com", offers=W),
        subject("s2", email="nobody@example.com", offers=W),
    ])

    assert set(found.learned_refs) == {f"Contact:{contact}", f"Lead:{lead}"}
    assert found.error is None
    assert emulator.record(contact)["HasOptedOutOfEmail"] is True
    assert emulator.record(lead)["HasOptedOutOfEmail"] is True
    assert emulator.record(other)["HasOptedOutOfEmail"] is False
    assert (missing.error, missing.learned_refs, missing.note) == (None, (), "not in salesforce")
    assert emulator.total_calls(QUERY) == 2 and emulator.total_calls(COMPOSITE) == 1


def test_a_record_rejected_by_a_validation_rule_fails_only_its_subject(emulator, connector):
    fine = emulator.create_contact("ada@example.com")
    blocked = emulator.create_contact("bob@example.com")
    emulator.reject_writes(blocked)

    ok, failed = connector.apply_consent([
        subject("s1", refs=(f"Contact:{fine}",), offers=W),
        subject("s2", refs=(f"Contact:{blocked}",), offers=W),
    ])

    assert ok.error is None and emulator.record(fine)["HasOptedOutOfEmail"] is True
    assert isinstance(failed.error, PermanentError)
    assert failed.error.error_class == "field_custom_validation_exception"
    assert blocked in str(failed.error) and "bob@" not in str(failed.error)
    assert emulator.record(blocked)["HasOptedOutOfEmail"] is False


def test_subjects_with_no_known_email_consent_cost_no_call(emulator, connector):
    contact = emulator.create_contact("ada@example.com", opted_out=True)

    [outcome] = connector.apply_consent([subject("s1", refs=(f"Contact:{contact}",),
                                                 email="ada@example.com")])

    assert outcome.error is None and outcome.note == "no e-mail consent to write"
    assert emulator.record(contact)["HasOptedOutOfEmail"] is True
    assert emulator.total_calls() == 0


def test_a_full_batch_of_200_subjects_fits_one_lookup_per_type_and_one_write(emulator,
                                                                            connector):
    for i in range(200):
        emulator.create_contact(f"p{i}@example.com")

    outcomes = connector.apply_consent(
        [subject(f"s{i}", email=f"p{i}@example.com", offers=W) for i in range(200)])

    assert all(o.error is None and len(o.learned_refs) == 1 for o in outcomes)
    assert emulator.total_calls(QUERY) == 2 and emulator.total_calls(COMPOSITE) == 1
    assert all(emulator.record(emulator.find_by_email(f"p{i}@example.com")[0])
               ["HasOptedOutOfEmail"] for i in range(200))
