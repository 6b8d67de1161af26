"""The contact moments an access answer reads (Task, Event, Case, EmailMessage and its
relations) and records merged away, held to the Object Reference; and their refusals."""

from __future__ import annotations

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from connectors.salesforce.export import MOMENT_FIELDS
from privasync.emulators.contracts.salesforce import (
    MOMENT_OBJECTS,
    Describe,
    MergedRecord,
    QueryResult,
)
from tests.contracts.salesforce.conftest import client, holds, refusal


@pytest.mark.parametrize("sobject", sorted(MOMENT_OBJECTS))
def test_each_moment_object_is_described_with_its_key_prefix_and_fields(emulator, sobject):
    answer = holds(Describe, getattr(client(emulator), sobject).describe())

    prefix, fields = MOMENT_OBJECTS[sobject]
    assert answer["keyPrefix"] == prefix and answer["queryable"] is True
    assert set(fields) <= {f["name"] for f in answer["fields"]}


def test_who_id_names_a_contact_or_a_lead(emulator):
    who = next(f for f in client(emulator).Task.describe()["fields"] if f["name"] == "WhoId")

    assert (who["type"], who["referenceTo"]) == ("reference", ["Contact", "Lead"])


def test_privasync_reads_only_fields_the_reference_lists():
    for sobject, names in MOMENT_FIELDS.items():
        assert set(names) <= set(MOMENT_OBJECTS[sobject][1]), sobject


def test_tasks_of_a_contact_come_back_by_who_id_with_their_prefix(emulator):
    contact = emulator.create_contact("ada@example.com")
    task = emulator.add("Task", WhoId=contact, Subject="Call back", TaskSubtype="Call")
    emulator.add("Task", WhoId=emulator.create_contact("bob@example.com"), Subject="Other")

    answer = holds(QueryResult, client(emulator).query_all(
        f"SELECT Id, WhoId, Subject, TaskSubtype FROM Task WHERE WhoId IN ('{contact}')"))

    assert [(r["Id"], r["Subject"], r["TaskSubtype"]) for r in answer["records"]] == [
        (task, "Call back", "Call")]
    assert task.startswith("00T")


def test_a_field_the_object_lacks_is_refused_as_invalid_field(emulator):
    with pytest.raises(SalesforceMalformedRequest) as caught:
        client(emulator).query("SELECT Id, Email FROM Task WHERE Subject = 'x'")

    assert refusal(caught.value.content).errorCode == "INVALID_FIELD"


def test_a_task_subtype_outside_the_picklist_is_refused(emulator):
    contact = emulator.create_contact("ada@example.com")

    with pytest.raises(Exception, match="restricted picklist"):
        emulator.add("Task", WhoId=contact, TaskSubtype="Fax")


def test_without_email_messages_soql_answers_invalid_type(emulator):
    emulator.withhold("EmailMessage:read")

    with pytest.raises(SalesforceMalformedRequest) as caught:
        client(emulator).query("SELECT Id FROM EmailMessage WHERE ParentId = '500x'")

    assert refusal(caught.value.content).errorCode == "INVALID_TYPE"


def test_a_merged_away_record_is_found_by_query_all_naming_the_one_kept(emulator):
    kept = emulator.create_contact("ada@example.com", first_name="Ada")
    gone = emulator.create_contact("ada.l@example.com", first_name="Ada")
    task = emulator.add("Task", WhoId=gone, Subject="Visit")
    emulator.merge(kept, gone)
    sf = client(emulator)
    soql = f"SELECT Id, IsDeleted, MasterRecordId FROM Contact WHERE MasterRecordId = '{kept}'"

    live = holds(QueryResult, sf.query_all(soql))
    every = holds(QueryResult, sf.query_all(soql, include_deleted=True))

    assert live["records"] == []
    assert [holds(MergedRecord, r)["Id"] for r in every["records"]] == [gone]
    assert emulator.record(task)["WhoId"] == kept  # the merge moved its activities
