"""sObject Collections PATCH and DELETE, single-record deletes, the Recycle Bin and
``emptyRecycleBin()``, held to the published shapes; and their refusals."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
import requests
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound

from privasync.emulators.contracts.salesforce import CollectionResults, DeletedResult, QueryResult
from privasync.emulators.salesforce import API, SalesforceEmulator
from tests.contracts.salesforce.conftest import client, empty_recycle_bin, holds, refusal
from tests.timing import scaled


def delete(emu: SalesforceEmulator, *ids: str, all_or_none: bool = False) -> list[dict]:
    return holds(CollectionResults, client(emu).restful(
        "composite/sobjects", method="DELETE",
        params={"ids": ",".join(ids), "allOrNone": str(all_or_none).lower()}))


def query_all(emu: SalesforceEmulator, soql: str) -> list[dict]:
    return holds(QueryResult, client(emu).query_all(soql, include_deleted=True))["records"]


def test_a_failed_delete_item_carries_no_id_and_results_keep_the_ids_order(emulator):
    contact = emulator.create_contact("a@example.com")
    refused = emulator.create_lead("b@example.com")
    emulator.reject_deletes(refused)

    results = delete(emulator, contact, refused, "003000000000999AAA")

    assert [r.get("id") for r in results] == [contact, None, None]
    assert [r["success"] for r in results] == [True, False, False]
    assert [e["statusCode"] for r in results[1:] for e in r["errors"]] == [
        "DELETE_FAILED", "INVALID_ID_FIELD"]


def test_a_failed_patch_item_carries_no_id(emulator):
    contact = emulator.create_contact("a@example.com")
    records = [{"attributes": {"type": "Contact"}, "id": contact, "HasOptedOutOfEmail": True},
               {"attributes": {"type": "Contact"}, "id": contact, "Nope__c": 1}]

    results = holds(CollectionResults, client(emulator).restful(
        "composite/sobjects", method="PATCH", json={"allOrNone": False, "records": records}))

    assert [(r.get("id"), r["success"]) for r in results] == [(contact, True), (None, False)]


def test_a_parent_deleted_in_the_call_of_its_children_is_refused(emulator):
    """The guide promises the results' order, not the deletion order: the emulator works
    last to first, so an Individual listed after its consent row is reached first."""
    contact = emulator.create_contact("a@example.com", with_individual=True)
    individual = emulator.record(contact)["IndividualId"]
    consent = emulator.add_consent(individual)

    mixed = delete(emulator, consent, contact, individual)
    afterwards = delete(emulator, individual)

    assert [r["success"] for r in mixed] == [True, True, False]
    assert mixed[2]["errors"][0]["statusCode"] == "DELETE_FAILED"
    assert afterwards[0]["success"] is True


def test_all_or_none_rolls_every_delete_back(emulator):
    contact = emulator.create_contact("a@example.com")

    results = delete(emulator, contact, "003000000000999AAA", all_or_none=True)

    assert [r["errors"][0]["statusCode"] for r in results] == [
        "ALL_OR_NONE_OPERATION_ROLLED_BACK", "INVALID_ID_FIELD"]
    assert emulator.record(contact)["IsDeleted"] is False


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
def test_a_collection_of_201_records_is_refused_whole(emulator, method):
    contact = emulator.create_contact("a@example.com")
    kwargs = ({"json": {"records": [{"attributes": {"type": "Contact"}, "id": contact}] * 201}}
              if method == "PATCH" else {"params": {"ids": ",".join([contact] * 201)}})

    with pytest.raises(SalesforceMalformedRequest) as caught:
        client(emulator).restful("composite/sobjects", method=method, **kwargs)

    assert caught.value.status == 400
    assert refusal(caught.value.content).errorCode == "EXCEEDED_ID_LIMIT"
    assert emulator.record(contact)["IsDeleted"] is False


def test_a_body_in_another_media_type_is_415_and_bad_json_is_400(emulator):
    url = f"{emulator.url}{API}/composite/sobjects"
    auth = {"Authorization": f"Bearer {emulator.session_id}"}

    as_text = requests.patch(url, data="records", timeout=scaled(5),
                             headers={**auth, "Content-Type": "text/plain"})
    not_json = requests.patch(url, data="{records", timeout=scaled(5),
                              headers={**auth, "Content-Type": "application/json"})
    no_type = requests.patch(url, json={"records": [{"id": "003000000000001AAA"}]},
                             timeout=scaled(5), headers=auth)

    assert (as_text.status_code, refusal(as_text).errorCode) == (415, "UNSUPPORTED_MEDIA_TYPE")
    assert (not_json.status_code, refusal(not_json).errorCode) == (400, "JSON_PARSER_ERROR")
    assert (no_type.status_code, refusal(no_type).errorCode) == (400, "JSON_PARSER_ERROR")


def test_a_deleted_record_waits_in_the_recycle_bin_and_can_be_restored(emulator):
    contact = emulator.create_contact("a@example.com")
    sf = client(emulator)

    sf.Contact.delete(contact)
    with pytest.raises(SalesforceResourceNotFound) as again:
        sf.Contact.delete(contact)
    binned = query_all(emulator, "SELECT Id, IsDeleted FROM Contact")
    emulator.undelete(contact)

    assert refusal(again.value.content).errorCode == "ENTITY_IS_DELETED"
    assert [(r["Id"], r["IsDeleted"]) for r in binned] == [(contact, True)]
    assert sf.Contact.get(contact)["IsDeleted"] is False


def test_after_15_days_the_bin_is_purged_and_get_deleted_forgets(emulator):
    contact = emulator.create_contact("a@example.com")
    start = emulator.now() - timedelta(minutes=1)
    delete(emulator, contact)
    emulator.advance(timedelta(days=16))
    end = emulator.now()

    rows = query_all(emulator, "SELECT Id FROM Contact")
    deleted = holds(DeletedResult, client(emulator).Contact.deleted(start, end))

    assert rows == [] and deleted["deletedRecords"] == []
    assert datetime.fromisoformat(deleted["earliestDateAvailable"]) > start
    assert emulator.record(contact) is None
    with pytest.raises(Exception, match="Recycle Bin"):
        emulator.undelete(contact)


def test_empty_recycle_bin_purges_now_yet_query_all_sees_the_record_for_a_day(emulator):
    gone, live = emulator.create_contact("a@example.com"), emulator.create_contact("b@x.org")
    delete(emulator, gone)
    used = emulator.api_used

    answer = empty_recycle_bin(emulator, [gone, live])
    assert emulator.api_used == used + 1  # one API call, like any other
    within_the_day = query_all(emulator, "SELECT Id FROM Contact WHERE IsDeleted = true")
    emulator.advance(timedelta(hours=25))
    next_day = query_all(emulator, "SELECT Id FROM Contact WHERE IsDeleted = true")

    results = re.findall(r"<result>(.*?)</result>", answer.text)
    assert answer.status_code == 200
    assert [("<success>true" in r, f"<id>{i}</id>" in r) for r, i in zip(
        results, (gone, live), strict=True)] == [(True, True), (False, True)]
    assert [r["Id"] for r in within_the_day] == [gone]
    assert next_day == []
    assert not emulator.in_recycle_bin(gone)


def test_empty_recycle_bin_needs_the_session_in_its_header(emulator):
    answer = empty_recycle_bin(emulator, ["003000000000001AAA"], session_id="00D!wrong")

    assert answer.status_code == 500 and "INVALID_SESSION_ID" in answer.text


def test_withheld_rights_show_in_describe_and_refuse_the_call():
    emu = SalesforceEmulator(withheld=("Lead:delete", "Contact.HasOptedOutOfEmail:edit",
                                       "Contact.Health_Note__c:read"))
    emu.start()
    try:
        lead, contact = emu.create_lead("a@example.com"), emu.create_contact("b@x.org")
        sf = client(emu)
        lead_describe, contact_describe = sf.Lead.describe(), sf.Contact.describe()
        deleted = delete(emu, lead)
        patched = sf.restful("composite/sobjects", method="PATCH", json={"records": [
            {"attributes": {"type": "Contact"}, "id": contact, "HasOptedOutOfEmail": True}]})
        with pytest.raises(SalesforceMalformedRequest) as hidden:
            sf.query("SELECT Health_Note__c FROM Contact")
    finally:
        emu.stop()

    fields = {f["name"]: f for f in contact_describe["fields"]}
    assert lead_describe["deletable"] is False
    assert fields["HasOptedOutOfEmail"]["updateable"] is False
    assert "Health_Note__c" not in fields
    assert deleted[0]["errors"][0]["statusCode"] == "INSUFFICIENT_ACCESS_OR_READONLY"
    assert patched[0]["errors"][0]["statusCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert refusal(hidden.value.content).errorCode == "INVALID_FIELD"
