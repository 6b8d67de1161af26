"""export reads every field the emulator's org holds for a person, by its own field names."""

from __future__ import annotations

import pytest

from connectors.salesforce.client import Credentials, SalesforceClient
from connectors.salesforce.export import Exporter, column_groups, readable
from core.errors import TransientError
from core.model import PersonAt
from privasync.emulators.http import Fault
from privasync.emulators.salesforce_schema import FIELDS
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


def kinds(result) -> dict[str, str]:
    return {f.record: f.kind for f in result.fields}


def test_contact_moments_of_the_person_come_with_what_they_are(emulator, connector):
    ada = emulator.create_contact("ada@example.com", first_name="Ada")
    bob = emulator.create_contact("bob@example.com", first_name="Bob")
    call = emulator.add("Task", WhoId=ada, Subject="Called about the invoice",
                        TaskSubtype="Call", CallDurationInSeconds=95, OwnerId="005x")
    meeting = emulator.add("Event", WhoId=ada, Subject="Visit", Location="Ghent")
    case = emulator.add("Case", ContactId=ada, Subject="Broken meter", Origin="Phone",
                        Description="Meter stopped on Monday")
    mail = emulator.add("EmailMessage", ParentId=case, Subject="Re: Broken meter",
                        TextBody="We will come on Friday", ToAddress="ada@example.com",
                        CcAddress="colleague@example.com")
    direct = emulator.add("EmailMessage", Subject="Your offer", TextBody="Hello Ada")
    emulator.add("EmailMessageRelation", EmailMessageId=direct, RelationId=ada,
                 RelationType="ToAddress")
    emulator.add("Task", WhoId=bob, Subject="Bob's call")

    [result] = connector.export([person("s1", "ada@example.com")])

    records = by_record(result)
    assert kinds(result) == {f"Contact:{ada}": "contact", f"Task:{call}": "task or logged call",
                             f"Event:{meeting}": "meeting or event",
                             f"Case:{case}": "case (support request)",
                             f"EmailMessage:{mail}": "e-mail",
                             f"EmailMessage:{direct}": "e-mail"}
    assert records[f"Task:{call}"] == {"Subject": "Called about the invoice",
                                       "TaskSubtype": "Call", "CallDurationInSeconds": "95",
                                       "CreatedDate": records[f"Task:{call}"]["CreatedDate"]}
    assert records[f"Case:{case}"]["Description"] == "Meter stopped on Monday"
    assert records[f"EmailMessage:{mail}"]["TextBody"] == "We will come on Friday"
    # Minimised: no owners, links or other people's addresses.
    assert "CcAddress" not in records[f"EmailMessage:{mail}"]
    assert not {"OwnerId", "WhoId", "ParentId"} & {f.field for f in result.fields}
    assert result.note == "6 record(s)" and result.review == ()


def test_an_org_without_email_messages_still_answers_with_the_rest(emulator, connector):
    ada = emulator.create_contact("ada@example.com")
    task = emulator.add("Task", WhoId=ada, Subject="Call")
    emulator.withhold("EmailMessage:read", "EmailMessageRelation:read")

    [result] = connector.export([person("s1", "ada@example.com")])

    assert set(by_record(result)) == {f"Contact:{ada}", f"Task:{task}"}
    assert result.error is None


def test_a_record_merged_into_the_persons_comes_with_what_it_was_merged_into(emulator,
                                                                             connector):
    kept = emulator.create_contact("ada@example.com", first_name="Ada")
    gone = emulator.create_contact("a.lovelace@example.com", first_name="Ada")
    emulator.ui_edit(gone, MailingCity="Ockham")
    task = emulator.add("Task", WhoId=gone, Subject="Before the merge")
    emulator.merge(kept, gone)

    [result] = connector.export([person("s1", "ada@example.com")])

    assert kinds(result)[f"Contact:{gone}"] == f"contact merged into Contact:{kept}"
    assert by_record(result)[f"Contact:{gone}"]["MailingCity"] == "Ockham"
    assert kinds(result)[f"Task:{task}"] == "task or logged call"


def test_a_family_address_gives_only_the_requesters_record_the_others_held(emulator,
                                                                           connector):
    jan = emulator.create_contact("family@example.com", first_name="Jan", last_name="Peeters")
    an = emulator.create_contact("family@example.com", first_name="An", last_name="Peeters")
    ans_call = emulator.add("Task", WhoId=an, Subject="An asked about her loan")
    jans_call = emulator.add("Task", WhoId=jan, Subject="Jan's call")

    [result] = connector.export([person("s1", "family@example.com",
                                        refs=(f"Contact:{jan}",))])

    assert set(by_record(result)) == {f"Contact:{jan}", f"Task:{jans_call}"}
    assert "An asked about her loan" not in {f.value for f in result.fields}
    assert {h.record for h in result.review} == {f"Contact:{an}", f"Task:{ans_call}"}
    assert all("another record shares" in h.reason for h in result.review)
    held = {f.value for h in result.review for f in h.fields}
    assert "An asked about her loan" in held  # kept for the admin's review
    assert "held for review" in result.note


def test_a_shared_address_without_a_known_id_holds_every_record_it_reaches(emulator,
                                                                         connector):
    jan = emulator.create_contact("family@example.com", first_name="Jan", last_name="Peeters")
    an = emulator.create_contact("family@example.com", first_name="An", last_name="Peeters")

    [result] = connector.export([person("s1", "family@example.com")])

    assert result.fields == ()
    assert {h.record for h in result.review} == {f"Contact:{jan}", f"Contact:{an}"}


def test_refs_to_two_family_members_leave_both_records_for_review(emulator, connector):
    # privasync learns Salesforce refs by address, so one subject can come to name both.
    jan = emulator.create_contact("family@example.com", first_name="Jan", last_name="Peeters")
    an = emulator.create_contact("family@example.com", first_name="An", last_name="Peeters")

    [result] = connector.export([person("s1", "family@example.com",
                                        refs=(f"Contact:{jan}", f"Contact:{an}"))])

    assert result.fields == ()
    assert {h.record for h in result.review} == {f"Contact:{jan}", f"Contact:{an}"}
