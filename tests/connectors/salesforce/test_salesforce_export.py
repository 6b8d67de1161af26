"""export reads every field the emulator's org holds for a person, by its own field names."""

from __future__ import annotations

import pytest

from connectors.salesforce.client import Credentials, SalesforceClient
from connectors.salesforce.export import Exporter, column_groups, readable
from core.errors import TransientError
from core.model import PersonAt
from emulators.http import Fault
from emulators.salesforce_schema import FIELDS
from tests.connectors.salesforce.conftest import LIMIT_BODY, QUERY, SOBJECTS

DESCRIBE = "describe"


def person(subject_id: str, *emails: str, refs: tuple[str, ...] = ()) -> PersonAt:
    return PersonAt(subject_id, f"dsr-{subject_id}", emails, refs)


def by_record(result) -> dict[str, dict[str, str | None]]:
    out: dict[str, dict[str, str | None]] = {}
    for f in result.fields:
        out.setdefault(f.record, {})[f.field] = f.value
    return out


def describes(emulator) -> int:
    return sum(emulator.total_calls(f"{SOBJECTS}/{t}/describe") for t in FIELDS)


def test_every_field_of_the_contact_lead_and_individual_comes_with_its_value(emulator,
                                                                            connector):
    contact = emulator.create_contact("ada@example.com", first_name="Ada",
                                      with_individual=True)
    emulator.ui_edit(contact, Birthdate="1815-12-10", Health_Note__c="asthma",
                     MailingCity="London")
    emulator.ui_set_should_forget(contact)
    individual = emulator.record(contact)["IndividualId"]
    lead = emulator.create_lead("other@example.com", last_name="Lovelace")
    emulator.create_contact("bob@example.com", first_name="Bob")

    [result] = connector.export([person("s1", "ADA@example.com", refs=(f"Lead:{lead}",))])

    records = by_record(result)
    assert set(records) == {f"Contact:{contact}", f"Lead:{lead}", f"Individual:{individual}"}
    assert list(records[f"Contact:{contact}"]) == list(FIELDS["Contact"])
    assert list(records[f"Lead:{lead}"]) == list(FIELDS["Lead"])
    assert list(records[f"Individual:{individual}"]) == list(FIELDS["Individual"])
    ada = records[f"Contact:{contact}"]
    assert (ada["Email"], ada["FirstName"], ada["MailingCity"], ada["Birthdate"],
            ada["Health_Note__c"]) == ("ada@example.com", "Ada", "London", "1815-12-10",
                                       "asthma")
    assert (ada["HasOptedOutOfEmail"], ada["IndividualId"], ada["Phone"]) == (
        "false", individual, None)
    assert ada["SystemModstamp"].endswith("+0000")
    assert records[f"Individual:{individual}"]["ShouldForget"] == "true"
    assert records[f"Lead:{lead}"]["LastName"] == "Lovelace"
    assert result.error is None and result.note == "3 record(s)"


def test_each_person_gets_only_their_records_and_a_shared_individual_goes_to_both(
        emulator, connector):
    ada = emulator.create_contact("ada@example.com", with_individual=True)
    shared = emulator.record(ada)["IndividualId"]
    bob = emulator.create_lead("bob@example.com")
    emulator.ui_edit(bob, IndividualId=shared)
    emulator.create_contact("carol@example.com", with_individual=True)

    ada_result, bob_result = connector.export([person("s1", "ada@example.com"),
                                               person("s2", "bob@example.com")])

    assert set(by_record(ada_result)) == {f"Contact:{ada}", f"Individual:{shared}"}
    assert set(by_record(bob_result)) == {f"Lead:{bob}", f"Individual:{shared}"}


def test_a_person_salesforce_does_not_hold_has_no_fields(emulator, connector):
    emulator.create_contact("bob@example.com")

    [result] = connector.export([person("s1", "ada@example.com")])

    assert (result.fields, result.error, result.note) == ((), None, "not in salesforce")
    assert emulator.total_calls() == 4  # describe and query Contact and Lead


def test_a_batch_costs_a_describe_and_a_query_per_type_whoever_is_in_it(emulator, connector):
    people = []
    for n in range(25):
        email = f"p{n}@example.com"
        emulator.create_contact(email, with_individual=True)
        emulator.create_lead(email)
        people.append(person(f"s{n}", email))

    results = connector.export(people)

    assert [len(by_record(r)) for r in results] == [3] * 25
    # Contacts, Leads, Individuals; the merged records of both types (queryAll); Tasks,
    # Events, Cases and e-mail relations (no Task or Case found: no e-mail query).
    assert describes(emulator) == 3 and emulator.total_calls(QUERY) == 9
    assert emulator.total_calls() == 12  # under half a call per person
    assert connector.export_batch_size == 25


def test_without_individuals_no_individual_is_described(emulator, connector):
    contact = emulator.create_contact("ada@example.com")

    [result] = connector.export([person("s1", "ada@example.com")])

    assert set(by_record(result)) == {f"Contact:{contact}"}
    assert emulator.total_calls(f"{SOBJECTS}/Individual") == 0
    assert emulator.total_calls() == 9  # 2 describes, 2 look-ups, 1 merged, 4 moments


@pytest.mark.parametrize(("fault", "error_class"), [
    (Fault(403, LIMIT_BODY, path_pattern=DESCRIBE), "request_limit_exceeded"),
    (Fault(500, [{"errorCode": "UNKNOWN_EXCEPTION", "message": "boom"}],
           path_pattern="query"), "http_500"),
])
def test_a_failed_call_fails_the_export_as_a_transient_error(emulator, connector, fault,
                                                             error_class):
    emulator.create_contact("ada@example.com")
    emulator.inject(fault)

    with pytest.raises(TransientError) as caught:
        connector.export([person("s1", "ada@example.com")])

    assert caught.value.error_class == error_class
    assert "ada@" not in str(caught.value)


def test_compound_fields_are_left_to_their_parts():
    fields = [{"name": "Id", "type": "id"}, {"name": "MailingStreet", "type": "textarea"},
              {"name": "MailingAddress", "type": "address"},
              {"name": "MailingLatitude", "type": "double"},
              {"name": "Location__c", "type": "location"}]

    assert readable(fields) == ["Id", "MailingStreet", "MailingLatitude"]


def test_a_wide_type_is_read_in_column_groups_that_each_carry_the_id():
    columns = ["Id", *(f"Field_{n:03d}__c" for n in range(600))]

    groups = column_groups(columns, budget=4000)

    assert len(groups) > 1 and all(g[0] == "Id" for g in groups)
    assert all(len(", ".join(g)) <= 4000 for g in groups)
    assert [c for g in groups for c in g[1:]] == columns[1:]
    assert column_groups(["Id"], budget=4000) == [["Id"]]


def test_column_groups_are_joined_back_into_whole_records(emulator, connector):
    contact = emulator.create_contact("ada@example.com", first_name="Ada",
                                      with_individual=True)
    lead = emulator.create_lead("ada@example.com")
    narrow = Exporter(SalesforceClient(Credentials(emulator.url, emulator.session_id)),
                      column_budget=60)
    ada = [person("s1", "ada@example.com")]

    [whole] = connector.export(ada)
    queries = emulator.total_calls(QUERY)
    [joined] = narrow.export(ada)

    assert joined == whole and len(by_record(joined)) == 3
    assert by_record(joined)[f"Contact:{contact}"]["FirstName"] == "Ada"
    assert f"Lead:{lead}" in by_record(joined)
    assert emulator.total_calls(QUERY) - queries > queries  # several groups per type
