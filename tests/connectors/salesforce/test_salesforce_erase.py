"""erase removes a person's Contacts, Leads, lone Individuals and consent rows from the
emulator, and proves it by reading back."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
import requests
import responses

from connectors.salesforce import SalesforceConnector
from connectors.salesforce.client import Credentials, SalesforceClient
from core.errors import AuthError, PermanentError, TransientError
from core.model import ErasureStatus, PersonAt
from privasync.emulators.http import Fault
from privasync.emulators.salesforce import SalesforceEmulator
from tests.connectors.salesforce.conftest import COMPOSITE, LIMIT_BODY, MAPPING, QUERY

EVERYTHING = "query Contact, Lead, Individual, ContactPointTypeConsent by address and id: 0 found"
NOTHING = "query Contact, Lead by address and id: 0 found"
PURGED = (" in Salesforce or its Recycle Bin; {purged} purged record(s) queryAll shows for "
          "about 24 h")
HARD_EVERYTHING = EVERYTHING.replace("query ", "queryAll ", 1) + PURGED
HARD_NOTHING = NOTHING.replace("query ", "queryAll ", 1) + PURGED
SOAP = "/services/Soap/u/59.0"


def person(subject_id: str, *emails: str, refs: tuple[str, ...] = ()) -> PersonAt:
    return PersonAt(subject_id, f"dsr-{subject_id}", emails, refs)


def deleted(emulator: SalesforceEmulator, *record_ids: str) -> list[bool]:
    return [emulator.record(i)["IsDeleted"] for i in record_ids]


def individual_of(emulator: SalesforceEmulator, record_id: str) -> str:
    return str(emulator.record(record_id)["IndividualId"])


def test_a_person_loses_contact_lead_individuals_and_consent_rows_in_twelve_calls(emulator,
                                                                                 connector):
    contact = emulator.create_contact("ada@example.com", with_individual=True)
    lead = emulator.create_lead("ADA@work.example", with_individual=True)
    consent = emulator.add_consent(individual_of(emulator, contact), "Email", "OptOut")
    by_ref = emulator.create_lead("old-address@example.com")
    bystander = emulator.create_contact("bob@example.com", with_individual=True)

    [receipt] = connector.erase([person("s1", "ada@example.com", "ada@work.example",
                                        refs=(f"salesforce:Lead:{by_ref}",))])

    assert (receipt.subject_id, receipt.status, receipt.error) == ("s1", ErasureStatus.DONE, None)
    assert receipt.records == 6 and receipt.vendor_status == 200
    assert receipt.verified == EVERYTHING
    assert all(deleted(emulator, contact, lead, by_ref, consent, individual_of(emulator, contact),
                       individual_of(emulator, lead)))
    assert not any(deleted(emulator, bystander, individual_of(emulator, bystander)))
    assert emulator.find_by_email("ada@example.com") == []
    # 2 lookups, 2 "who else uses these Individuals", 1 consent lookup, 3 DELETEs (consent
    # rows, Contacts and Leads, Individuals), the read-back: 2 lookups, Individuals and
    # consent rows by id.
    assert emulator.total_calls(COMPOSITE) == 3 and emulator.total_calls(QUERY) == 9
    assert emulator.total_calls() == 12
    assert connector.erase_batch_size == 50


def test_an_individual_someone_else_still_uses_is_kept_with_its_consent_rows(emulator,
                                                                            connector):
    contact = emulator.create_contact("ada@example.com", with_individual=True)
    shared = individual_of(emulator, contact)
    other = emulator.create_contact("bob@example.com")
    emulator.ui_edit(other, IndividualId=shared)
    consent = emulator.add_consent(shared, "Email", "OptOut")

    [receipt] = connector.erase([person("s1", "ada@example.com")])

    assert receipt.error is None and receipt.records == 1
    assert receipt.verified == ("query Contact, Lead by address and id: 0 found; "
                                "1 Individual(s) shared with other records kept")
    assert deleted(emulator, contact, shared, consent, other) == [True, False, False, False]


def test_people_sharing_an_individual_erased_together_take_it_with_them(emulator, connector):
    ada = emulator.create_contact("ada@example.com", with_individual=True)
    shared = individual_of(emulator, ada)
    bob = emulator.create_lead("bob@example.com")
    emulator.ui_edit(bob, IndividualId=shared)

    receipts = connector.erase([person("s1", "ada@example.com"),
                                person("s2", "bob@example.com")])

    assert [r.error for r in receipts] == [None, None]
    assert [r.records for r in receipts] == [2, 2]
    assert all(deleted(emulator, ada, bob, shared))


def test_an_org_without_consent_objects_has_no_consent_rows_to_erase():
    emulator = SalesforceEmulator(consent_objects=False)
    emulator.start()
    try:
        contact = emulator.create_contact("ada@example.com", with_individual=True)
        connector = SalesforceConnector(instance_url=emulator.url, mapping=MAPPING,
                                        session_id=emulator.session_id)

        [receipt] = connector.erase([person("s1", "ada@example.com")])
    finally:
        emulator.stop()

    assert receipt.error is None and receipt.records == 2
    assert receipt.verified == "query Contact, Lead, Individual by address and id: 0 found"
    assert all(deleted(emulator, contact, individual_of(emulator, contact)))
    assert ("GET", "/services/data/v59.0/query/", 400) in emulator.log  # its INVALID_TYPE


def test_a_second_erase_finds_nothing_and_is_done_in_two_lookups(emulator, connector):
    emulator.create_contact("ada@example.com", with_individual=True)
    connector.erase([person("s1", "ada@example.com")])
    before = emulator.total_calls()

    [again] = connector.erase([person("s1", "ada@example.com")])

    assert (again.status, again.error, again.records) == (ErasureStatus.DONE, None, 0)
    assert again.vendor_status is None and again.verified == NOTHING
    assert emulator.total_calls() - before == 2


def test_a_person_salesforce_never_held_is_done_verified_absent(emulator, connector):
    emulator.create_contact("bob@example.com")
    gone = emulator.create_lead("old@example.com")
    emulator.ui_delete(gone)

    [receipt] = connector.erase([person("s1", "ada@example.com", refs=(f"Lead:{gone}",))])

    assert (receipt.status, receipt.error, receipt.records) == (ErasureStatus.DONE, None, 0)
    assert receipt.verified == NOTHING
    assert emulator.total_calls() == 2 and emulator.total_calls(COMPOSITE) == 0


def test_the_request_limit_is_a_transient_error_and_the_retry_finishes(emulator, connector):
    contact = emulator.create_contact("ada@example.com")
    emulator.inject(Fault(403, LIMIT_BODY, path_pattern="composite"))

    with pytest.raises(TransientError) as caught:
        connector.erase([person("s1", "ada@example.com")])
    assert deleted(emulator, contact) == [False]
    [receipt] = connector.erase([person("s1", "ada@example.com")])

    assert caught.value.error_class == "request_limit_exceeded"
    assert caught.value.retry_after is not None and caught.value.retry_after > 0
    assert receipt.error is None and deleted(emulator, contact) == [True]


@pytest.mark.parametrize("path", ["query", "composite"])
def test_a_server_error_is_a_transient_error(emulator, connector, path):
    emulator.create_contact("ada@example.com")
    emulator.inject(Fault(500, [{"errorCode": "UNKNOWN_EXCEPTION", "message": "boom"}],
                          path_pattern=path))

    with pytest.raises(TransientError) as caught:
        connector.erase([person("s1", "ada@example.com")])

    assert caught.value.error_class == "http_500"


def test_a_record_still_readable_after_its_delete_is_not_done(emulator, connector):
    contact = emulator.create_contact("ada@example.com")
    # Salesforce answers success, yet the record is still there when read back.
    emulator.inject(Fault(200, [{"id": contact, "success": True, "errors": []}],
                          path_pattern="composite"))

    [receipt] = connector.erase([person("s1", "ada@example.com")])

    assert isinstance(receipt.error, TransientError)
    assert receipt.error.error_class == "still_readable"
    assert receipt.verified == "query Contact, Lead by address and id: 1 found"
    assert "ada@" not in str(receipt.error)


def test_a_refused_delete_fails_only_that_persons_receipt(emulator, connector):
    blocked = emulator.create_contact("ada@example.com")
    ada_lead = emulator.create_lead("ada@example.com")
    bob = emulator.create_contact("bob@example.com")
    emulator.reject_deletes(blocked, "DELETE_FAILED")

    ada, bob_receipt = connector.erase([person("s1", "ada@example.com"),
                                        person("s2", "bob@example.com")])

    assert type(ada.error) is PermanentError and ada.error.error_class == "delete_failed"
    assert blocked in str(ada.error) and "ada@" not in str(ada.error)
    assert ada.records == 1 and ada.vendor_status == 200
    assert bob_receipt.error is None and bob_receipt.verified == NOTHING
    assert deleted(emulator, blocked, ada_lead, bob) == [False, True, True]


def test_a_locked_record_is_worth_another_try(emulator, connector):
    contact = emulator.create_contact("ada@example.com")
    emulator.reject_deletes(contact, "UNABLE_TO_LOCK_ROW")

    [receipt] = connector.erase([person("s1", "ada@example.com")])

    assert isinstance(receipt.error, TransientError)
    assert receipt.error.error_class == "unable_to_lock_row"


def seed(emulator: SalesforceEmulator, count: int) -> tuple[list[PersonAt], dict[str, list]]:
    """People with a Contact, its Individual with a consent row, and a Lead: 4 records each."""
    people, records = [], {"consent": [], "Contact": [], "Lead": [], "Individual": []}
    for n in range(count):
        email = f"p{n}@example.com"
        contact = emulator.create_contact(email, with_individual=True)
        records["Contact"].append(contact)
        records["Individual"].append(individual_of(emulator, contact))
        records["consent"].append(emulator.add_consent(individual_of(emulator, contact)))
        records["Lead"].append(emulator.create_lead(email))
        people.append(person(f"s{n}", email))
    return people, records


def test_fifty_people_cost_the_calls_of_one(emulator, connector):
    people, records = seed(emulator, 50)

    receipts = connector.erase(people)

    assert [r.error for r in receipts] == [None] * 50
    assert {r.records for r in receipts} == {4}
    assert emulator.total_calls() == 12  # 0.24 per person: one DELETE per tier
    assert all(all(deleted(emulator, *ids)) for ids in records.values())


def test_past_200_records_deletes_take_turns_consent_rows_first_individuals_last(emulator,
                                                                               connector):
    people, records = seed(emulator, 110)

    receipts = connector.erase(people)

    assert [r.error for r in receipts] == [None] * 110
    # 110 consent rows, 220 Contacts and Leads (two calls), 110 Individuals.
    assert emulator.total_calls(COMPOSITE) == 4
    # Deleting stamps a record: each tier went after the tier before it.
    tiers = [records["consent"], records["Contact"] + records["Lead"], records["Individual"]]
    stamps = [[emulator.record(i)["SystemModstamp"] for i in ids] for ids in tiers]
    assert all(max(before) < min(after) for before, after in itertools.pairwise(stamps))
    assert all(all(deleted(emulator, *ids)) for ids in records.values())


@responses.activate
def test_a_record_already_gone_when_deleted_counts_as_erased():
    base = "https://acme.my.salesforce.com/services/data/v59.0/"
    empty = {"totalSize": 0, "done": True, "records": []}
    row = {"attributes": {"type": "Contact"}, "Id": "003000000000001AAA",
           "Email": "ada@example.com", "IndividualId": None}
    for body in ({"totalSize": 1, "done": True, "records": [row]}, empty, empty, empty):
        responses.add(responses.GET, base + "query/", json=body)
    responses.add(responses.DELETE, base + "composite/sobjects", json=[
        {"success": False, "errors": [
            {"statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted", "fields": []}]}])
    connector = SalesforceConnector(instance_url="https://acme.my.salesforce.com",
                                    session_id="00D!x", mapping=MAPPING)

    [receipt] = connector.erase([person("s1", "ada@example.com")])

    assert (receipt.error, receipt.records) == (None, 0)
    assert receipt.verified == NOTHING


def test_a_hard_delete_purges_every_erased_record_from_the_recycle_bin(emulator):
    """Each record erased is out of the Recycle Bin, so undelete cannot bring it back;
    queryAll still shows it, deleted, for about 24 h, and the receipt says so."""
    connector = hard(emulator)
    contact = emulator.create_contact("ada@example.com", with_individual=True)
    individual = individual_of(emulator, contact)
    consent = emulator.add_consent(individual)

    [receipt] = connector.erase([person("s1", "ada@example.com")])

    assert (receipt.error, receipt.records) == (None, 3)
    assert receipt.verified == HARD_EVERYTHING.format(purged=3)
    assert [emulator.in_recycle_bin(i) for i in (contact, individual, consent)] == [False] * 3
    assert query_all(emulator, f"SELECT Id, IsDeleted FROM Contact WHERE Id = '{contact}'") == [
        {"Id": contact, "IsDeleted": True}]
    # One emptyRecycleBin per tier: consent rows, Contacts and Leads, Individuals.
    assert emulator.total_calls(SOAP) == 3
    emulator.advance(timedelta(hours=25))
    assert [emulator.record(i) for i in (contact, individual, consent)] == [None] * 3


def test_without_hard_delete_erased_records_wait_in_the_recycle_bin(emulator, connector):
    """PRIVASYNC_SALESFORCE__HARD_DELETE=false: deleted, fields intact and restorable for
    15 days, and the receipt says its read-back used query."""
    contact = emulator.create_contact("ada@example.com", with_individual=True)
    consent = emulator.add_consent(individual_of(emulator, contact))

    [receipt] = connector.erase([person("s1", "ada@example.com")])
    binned = [i for i in (contact, individual_of(emulator, contact), consent)
              if emulator.in_recycle_bin(i)]

    assert receipt.error is None and receipt.verified == EVERYTHING
    assert len(binned) == 3 and emulator.total_calls(SOAP) == 0
    assert emulator.record(contact)["Email"] == "ada@example.com"


def test_a_record_left_in_the_bin_by_an_earlier_attempt_is_found_by_query_all_and_purged(
        emulator):
    contact = emulator.create_contact("ada@example.com")
    emulator.ui_delete(contact)  # deleted, its purge never happened

    [receipt] = hard(emulator).erase([person("s1", "ada@example.com")])

    assert receipt.error is None and not emulator.in_recycle_bin(contact)
    assert receipt.verified == HARD_NOTHING.format(purged=1)


def test_a_purged_record_queried_again_within_a_day_is_not_an_error(emulator):
    contact = emulator.create_contact("ada@example.com")
    connector = hard(emulator)
    connector.erase([person("s1", "ada@example.com")])

    [again] = connector.erase([person("s1", "ada@example.com")])

    assert again.error is None and again.records == 0
    assert again.verified == HARD_NOTHING.format(purged=1)
    assert emulator.record(contact)["IsDeleted"] is True


def test_a_live_record_found_by_query_all_fails_the_verification(emulator):
    contact = emulator.create_contact("ada@example.com")
    emulator.reject_deletes(contact, "UNABLE_TO_LOCK_ROW")

    [receipt] = hard(emulator).erase([person("s1", "ada@example.com")])

    assert isinstance(receipt.error, TransientError)
    assert receipt.error.error_class == "unable_to_lock_row"
    assert receipt.verified == "queryAll Contact, Lead by address and id: 1 found"


@responses.activate
@pytest.mark.parametrize(("code", "kind"), [("UNABLE_TO_LOCK_ROW", TransientError),
                                            ("INSUFFICIENT_ACCESS_OR_READONLY", PermanentError)])
def test_a_purge_refused_for_one_id_becomes_that_persons_error(code, kind):
    base = "https://acme.my.salesforce.com/services/data/v59.0/"
    row = {"attributes": {"type": "Contact"}, "Id": "003000000000001AAA",
           "Email": "ada@example.com", "IndividualId": None, "IsDeleted": False}
    empty = {"totalSize": 0, "done": True, "records": []}
    deleted_row = {**row, "IsDeleted": True}
    for body in ({"totalSize": 1, "done": True, "records": [row]}, empty,
                 {"totalSize": 1, "done": True, "records": [deleted_row]}, empty):
        responses.add(responses.GET, base + "queryAll/", json=body)
    responses.add(responses.DELETE, base + "composite/sobjects",
                  json=[{"id": row["Id"], "success": True, "errors": []}])
    responses.add(responses.POST, "https://acme.my.salesforce.com/services/Soap/u/59.0",
                  content_type="text/xml", body=soap_answer(
                      "<emptyRecycleBinResponse>"
                      f"<result><errors><message>no</message><statusCode>{code}</statusCode>"
                      f"</errors><id>{row['Id']}</id><success>false</success></result>"
                      "</emptyRecycleBinResponse>"))
    connector = SalesforceConnector(instance_url="https://acme.my.salesforce.com",
                                    session_id="00D!x", mapping=MAPPING, hard_delete=True)

    [receipt] = connector.erase([person("s1", "ada@example.com")])

    assert isinstance(receipt.error, kind) and receipt.error.error_class == code.lower()
    assert "purge from the Recycle Bin Contact 003000000000001AAA" in str(receipt.error)
    assert "ada@" not in str(receipt.error)
    assert receipt.verified == "queryAll Contact, Lead by address and id: 1 found"
    sent = responses.calls[3].request
    assert b"<urn:sessionId>00D!x</urn:sessionId>" in sent.body
    assert b"<urn:ids>003000000000001AAA</urn:ids>" in sent.body


@responses.activate
@pytest.mark.parametrize(("fault", "kind"), [("INVALID_SESSION_ID", AuthError),
                                             ("REQUEST_LIMIT_EXCEEDED", TransientError)])
def test_a_soap_fault_fails_the_whole_call(fault, kind):
    responses.add(responses.POST, "https://acme.my.salesforce.com/services/Soap/u/59.0",
                  status=500, content_type="text/xml", body=soap_answer(
                      f"<soapenv:Fault><faultcode>sf:{fault}</faultcode>"
                      f"<faultstring>{fault}: no</faultstring></soapenv:Fault>"))
    client = SalesforceClient(Credentials("https://acme.my.salesforce.com", session_id="x"))

    with pytest.raises(kind) as caught:
        client.empty_recycle_bin(["003000000000001AAA"])

    assert caught.value.error_class == fault.lower()


def test_more_than_200_records_are_purged_200_at_a_time(emulator):
    contacts = [emulator.create_contact(f"p{n}@example.com") for n in range(201)]

    receipts = hard(emulator).erase([person(f"s{n}", f"p{n}@example.com") for n in range(201)])

    assert [r.error for r in receipts] == [None] * 201
    assert emulator.total_calls(SOAP) == 2
    assert not any(emulator.in_recycle_bin(c) for c in contacts)


def hard(emulator: SalesforceEmulator) -> SalesforceConnector:
    return SalesforceConnector(instance_url=emulator.url, session_id=emulator.session_id,
                               mapping=MAPPING, hard_delete=True)


def query_all(emulator: SalesforceEmulator, soql: str) -> list[dict[str, object]]:
    answer = requests.get(f"{emulator.url}/services/data/v59.0/queryAll/", params={"q": soql},
                          headers={"Authorization": f"Bearer {emulator.session_id}"},
                          timeout=10)
    return [{k: v for k, v in r.items() if k != "attributes"}
            for r in answer.json()["records"]]


def soap_answer(inner: str) -> str:
    return ('<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
            'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns="urn:partner.soap.sforce.com"><soapenv:Body>'
            f"{inner}</soapenv:Body></soapenv:Envelope>")


def test_a_family_members_record_sharing_the_address_is_not_erased(emulator, connector):
    jan = emulator.create_contact("family@example.com", first_name="Jan", last_name="Peeters")
    an = emulator.create_contact("family@example.com", first_name="An", last_name="Peeters")

    [receipt] = connector.erase([person("s1", "family@example.com",
                                        refs=(f"Contact:{jan}",))])

    assert deleted(emulator, jan, an) == [True, False]
    assert receipt.error is None and receipt.records == 1
    assert "1 record(s) held for review, not erased" in receipt.verified
    assert f"Contact:{an}" in receipt.verified


def test_a_shared_address_alone_erases_nothing_and_asks_for_review(emulator, connector):
    jan = emulator.create_contact("family@example.com", first_name="Jan", last_name="Peeters")
    an = emulator.create_contact("family@example.com", first_name="An", last_name="Peeters")

    [receipt] = connector.erase([person("s1", "family@example.com")])

    assert deleted(emulator, jan, an) == [False, False]
    assert isinstance(receipt.error, PermanentError)
    assert receipt.error.error_class == "shared_address_review"
