"""The reads privasync makes of Salesforce, held to the published shapes: versions,
limits, query/queryAll with nextRecordsUrl, describe, getUpdated/getDeleted and the
current user's permissions; and their refusals."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from connectors.salesforce.client import PlainHttpSession
from privasync.emulators.contracts.salesforce import (
    REFUSALS,
    DeletedResult,
    Describe,
    Limits,
    QueryResult,
    UpdatedResult,
    UserPermissionRow,
    VersionList,
)
from privasync.emulators.salesforce import API, SalesforceEmulator
from tests.contracts.salesforce.conftest import client, holds, refusal
from tests.timing import scaled


def test_the_version_list_names_the_pinned_version(emulator):
    answer = requests.get(f"{emulator.url}/services/data/", timeout=scaled(5))

    assert [v["version"] for v in holds(VersionList, answer.json())] == ["59.0"]


def test_limits_give_the_daily_allocation(emulator):
    answer = holds(Limits, client(emulator).limits())

    assert answer["DailyApiRequests"]["Max"] == emulator.api_limit


def test_query_pages_follow_next_records_url_and_each_page_holds(emulator):
    ids = [emulator.create_contact(f"p{i}@example.com") for i in range(5)]
    sf = client(emulator)

    first = holds(QueryResult, sf.query("SELECT Id FROM Contact ORDER BY Id"))
    pages = [first]
    while not pages[-1]["done"]:
        pages.append(holds(QueryResult, sf.query_more(pages[-1]["nextRecordsUrl"], True)))

    assert [r["Id"] for p in pages for r in p["records"]] == ids
    assert first["nextRecordsUrl"].startswith(f"{API}/query/")


def test_query_all_sees_the_recycle_bin_and_query_does_not(emulator):
    gone = emulator.create_contact("gone@example.com")
    emulator.ui_delete(gone)
    sf = client(emulator)
    soql = "SELECT Id, IsDeleted FROM Contact"

    live = holds(QueryResult, sf.query(soql))
    everything = holds(QueryResult, sf.query_all(soql, include_deleted=True))

    assert live["records"] == []
    assert [(r["Id"], r["IsDeleted"]) for r in everything["records"]] == [(gone, True)]


@pytest.mark.parametrize("sobject", ["Contact", "Lead", "Individual", "ContactPointTypeConsent"])
def test_describe_tells_the_users_rights_on_the_object(emulator, sobject):
    answer = holds(Describe, getattr(client(emulator), sobject).describe())

    assert (answer["queryable"], answer["updateable"], answer["deletable"]) == (True,) * 3


def test_get_updated_and_get_deleted_answer_their_shapes(emulator):
    start = emulator.now() - timedelta(minutes=2)
    kept, gone = emulator.create_contact("a@example.com"), emulator.create_contact("b@x.org")
    emulator.ui_delete(gone)
    end = emulator.now() + timedelta(minutes=2)
    sf = client(emulator)

    updated = holds(UpdatedResult, sf.Contact.updated(start, end))
    deleted = holds(DeletedResult, sf.Contact.deleted(start, end))

    assert updated["ids"] == [kept]
    assert [d["id"] for d in deleted["deletedRecords"]] == [gone]


def test_the_user_reads_its_own_hard_delete_permission():
    emu = SalesforceEmulator(withheld=("PermissionsBulkApiHardDelete",))
    emu.start()
    try:
        answer = client(emu).query("SELECT PermissionsBulkApiHardDelete FROM UserPermissionAccess")
    finally:
        emu.stop()

    [row] = holds(QueryResult, answer)["records"]
    assert holds(UserPermissionRow, row)["PermissionsBulkApiHardDelete"] is False


@pytest.mark.parametrize(("soql", "code"), [
    ("SELECT Id FROM", "MALFORMED_QUERY"),
    ("SELECT Nope__c FROM Contact", "INVALID_FIELD"),
    ("SELECT Id FROM Account", "INVALID_TYPE"),
])
def test_a_bad_query_is_refused_with_400_and_a_list_of_errors(emulator, soql, code):
    with pytest.raises(SalesforceMalformedRequest) as caught:
        client(emulator).query(soql)

    assert caught.value.status == REFUSALS[code] == 400
    assert refusal(caught.value.content).errorCode == code


def test_a_wrong_session_is_refused_with_401_invalid_session_id(emulator):
    sf = Salesforce(instance_url=emulator.url, session_id="00D!expired",
                    session=PlainHttpSession(5.0))

    with pytest.raises(SalesforceExpiredSession) as caught:
        sf.query("SELECT Id FROM Contact")

    assert caught.value.status == 401
    assert refusal(caught.value.content).errorCode == "INVALID_SESSION_ID"


def test_a_spent_allocation_is_refused_with_403_request_limit_exceeded():
    emu = SalesforceEmulator(api_limit=1)
    emu.start()
    try:
        sf = client(emu)
        sf.limits()
        with pytest.raises(SalesforceRefusedRequest) as caught:
            sf.limits()
    finally:
        emu.stop()

    assert caught.value.status == 403
    assert refusal(caught.value.content).errorCode == "REQUEST_LIMIT_EXCEEDED"


def test_an_unknown_object_is_404_not_found(emulator):
    with pytest.raises(SalesforceResourceNotFound) as caught:
        client(emulator).Accountx.describe()

    assert caught.value.status == 404
    assert refusal(caught.value.content).errorCode == "NOT_FOUND"


def test_a_known_resource_asked_with_another_method_is_405(emulator):
    answer = requests.put(f"{emulator.url}{API}/composite/sobjects", json={}, timeout=scaled(5),
                          headers={"Authorization": f"Bearer {emulator.session_id}"})

    assert (answer.status_code, refusal(answer).errorCode) == (405, "METHOD_NOT_ALLOWED")
