"""The Salesforce emulator, driven through simple-salesforce 1.12.10 over loopback."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from privasync.emulators.http import Fault
from privasync.emulators.salesforce import SalesforceEmulator, render
from privasync.emulators.salesforce_soql import Refused
from tests.emulators.conftest import serve
from tests.timing import scaled


class HttpSession(requests.Session):
    """VENDOR_APIS.md B1, way 1: simple-salesforce hard-codes https://."""

    def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> requests.Response:
        return super().request(method, url.replace("https://", "http://", 1), *args, **kwargs)


@pytest.fixture
def emulator() -> Iterator[SalesforceEmulator]:
    yield from serve(SalesforceEmulator(page_size=2))


def client(emu: SalesforceEmulator, session_id: str | None = None) -> Salesforce:
    return Salesforce(instance_url=emu.url, session_id=session_id or emu.session_id,
                      session=HttpSession())


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_updated_lists_records_changed_in_the_window_with_aware_datetimes(emulator):
    old = emulator.create_contact("old@example.com")
    emulator.advance(timedelta(minutes=5))
    start = emulator.now()
    emulator.advance(timedelta(minutes=1))
    fresh = emulator.create_contact("new@example.com")
    lead = emulator.create_lead("lead@example.com")
    end = emulator.now() + timedelta(minutes=1)
    sf = client(emulator)

    contacts = sf.Contact.updated(start, end)
    leads = sf.Lead.updated(start, end)

    assert contacts["ids"] == [fresh] and old not in contacts["ids"]
    assert leads["ids"] == [lead]
    assert parse(contacts["latestDateCovered"]) == end.replace(second=0, microsecond=0)


def test_updated_truncates_seconds_of_the_window_like_the_real_api(emulator):
    end = datetime(2024, 1, 2, 10, 30, 45, tzinfo=UTC)

    answer = client(emulator).Contact.updated(end - timedelta(hours=1), end)

    assert answer == {"ids": [], "latestDateCovered": "2024-01-02T10:30:00.000+0000"}


def test_a_naive_window_is_refused_with_a_list_error_body(emulator):
    with pytest.raises(SalesforceMalformedRequest) as caught:
        client(emulator).Contact.updated(datetime(2024, 1, 1), datetime(2024, 1, 2))  # noqa: DTZ001

    assert caught.value.content[0]["errorCode"] == "INVALID_QUERY_PARAMETER_VALUE"


def test_deleted_lists_recycle_bin_records_until_the_bin_is_emptied(emulator):
    gone = emulator.create_contact("gone@example.com")
    start = emulator.now() - timedelta(minutes=1)
    emulator.ui_delete(gone)
    end = (emulator.now() + timedelta(minutes=1)).replace(second=0, microsecond=0)
    sf = client(emulator)

    before = sf.Contact.deleted(start, end)
    emulator.set_earliest_deleted_available(end)
    after = sf.Contact.deleted(start, end)

    assert [r["id"] for r in before["deletedRecords"]] == [gone]
    deleted_date = parse(before["deletedRecords"][0]["deletedDate"])
    assert deleted_date == emulator.record(gone)["SystemModstamp"]
    assert after["deletedRecords"] == []
    assert parse(after["earliestDateAvailable"]) == end
    assert emulator.record(gone)["IsDeleted"] is True
    assert emulator.find_by_email("gone@example.com") == []


def test_query_all_follows_next_records_url_across_small_pages(emulator):
    ids = [emulator.create_contact(f"p{i}@example.com", opted_out=True) for i in range(5)]
    sf = client(emulator)

    first = sf.query("SELECT Id FROM Contact WHERE HasOptedOutOfEmail = true")
    everything = sf.query_all("SELECT Id FROM Contact WHERE HasOptedOutOfEmail = true ORDER BY Id")

    assert first["done"] is False and len(first["records"]) == 2
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/01g")
    assert [r["Id"] for r in everything["records"]] == ids
    assert emulator.total_calls("/services/data/v59.0/query/01g") == 2


def test_query_filters_by_escaped_email_in_any_case_and_nests_individual_fields(emulator):
    contact = emulator.create_contact("o'neil@example.com", with_individual=True)
    emulator.create_contact("other@example.com")
    emulator.ui_set_should_forget(contact)
    soql = ("SELECT Id, Email, Individual.ShouldForget, Individual.HasOptedOutSolicit "
            "FROM Contact WHERE Email IN ('O\\'Neil@example.com', 'nobody@example.com')")

    rows = client(emulator).query_all(soql)["records"]

    assert [r["Id"] for r in rows] == [contact]
    assert rows[0]["Individual"]["ShouldForget"] is True
    assert rows[0]["Individual"]["HasOptedOutSolicit"] is False
    assert rows[0]["attributes"]["type"] == "Contact"


def test_query_all_includes_deleted_records_and_query_does_not(emulator):
    gone = emulator.create_lead("gone@example.com")
    emulator.ui_delete(gone)
    sf = client(emulator)
    soql = "SELECT Id, IsDeleted FROM Lead WHERE Email = 'gone@example.com'"

    assert sf.query(soql)["records"] == []
    assert [r["Id"] for r in sf.query(soql, include_deleted=True)["records"]] == [gone]


def soql_literal(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_query_filters_on_system_modstamp_with_datetime_literals_ordered_and_limited(emulator):
    first = emulator.create_contact("a@example.com")
    emulator.advance(timedelta(seconds=2))
    cut = emulator.now()
    emulator.advance(timedelta(seconds=2))
    second = emulator.create_contact("b@example.com")
    third = emulator.create_contact("c@example.com")
    emulator.ui_set_opt_out(second, True)  # now the newest
    sf = client(emulator)
    after = f"SELECT Id, SystemModstamp FROM Contact WHERE SystemModstamp > {soql_literal(cut)}"

    newer = sf.query_all(after + " ORDER BY SystemModstamp")["records"]
    newest_first = sf.query_all(after + " ORDER BY SystemModstamp DESC LIMIT 1")["records"]
    older = sf.query_all("SELECT Id FROM Contact WHERE SystemModstamp < "
                         f"{soql_literal(cut)}")["records"]
    from_cut = sf.query_all("SELECT Id FROM Contact WHERE SystemModstamp >= "
                            f"{soql_literal(cut)} AND SystemModstamp <= "
                            f"{soql_literal(emulator.now() + timedelta(seconds=1))}")["records"]

    assert [r["Id"] for r in newer] == [third, second]
    assert [parse(r["SystemModstamp"]) for r in newer] == sorted(
        emulator.record(i)["SystemModstamp"] for i in (second, third))
    assert [r["Id"] for r in newest_first] == [second]
    assert [r["Id"] for r in older] == [first]
    assert {r["Id"] for r in from_cut} == {second, third}


def test_datetime_literals_take_a_zone_offset_and_compare_across_relationships(emulator):
    contact = emulator.create_contact("a@example.com", with_individual=True)
    cut = emulator.now() - timedelta(seconds=2)
    emulator.ui_set_solicit_opt_out(contact, True)
    offset = cut.astimezone(timezone(timedelta(hours=2))).strftime("%Y-%m-%dT%H:%M:%S+02:00")
    sf = client(emulator)

    by_individual = sf.query_all("SELECT Id FROM Contact WHERE Individual.SystemModstamp > "
                                 f"{offset} OR Id = '003000000000999AAA'")["records"]
    without_individual = sf.query_all(f"SELECT Id FROM Contact WHERE SystemModstamp > {offset} "
                              "AND IndividualId = null")["records"]

    assert [r["Id"] for r in by_individual] == [contact]
    assert without_individual == []


@pytest.mark.parametrize("soql, code", [
    ("SELECT Id FROM Contact WHERE SystemModstamp > 2024-01-02T10:00:00.000Z", "MALFORMED_QUERY"),
    ("SELECT Id FROM Contact WHERE SystemModstamp > 2024-01-02T10:00:00", "MALFORMED_QUERY"),
    ("SELECT Id FROM Contact WHERE SystemModstamp > '2024-01-02T10:00:00Z'", "INVALID_FIELD"),
    ("SELECT Id FROM Contact WHERE SystemModstamp = true", "INVALID_FIELD"),
    ("SELECT Id FROM Contact WHERE Email = 2024-01-02T10:00:00Z", "INVALID_FIELD"),
    ("SELECT Id FROM Contact WHERE Email > 'a'", "MALFORMED_QUERY"),
    ("SELECT Id FROM Contact WHERE SystemModstamp > null", "INVALID_FIELD"),
    ("SELECT Id FROM Contact ORDER BY SystemModstamp LIMIT 2024-01-02T10:00:00Z",
     "MALFORMED_QUERY"),
    ("SELECT Id FROM Contact WHERE Email LIKE 'a%'", "MALFORMED_QUERY"),
    ("SELECT Id FROM Contact GROUP BY Email", "MALFORMED_QUERY"),
    ("SELECT Foo FROM Contact", "INVALID_FIELD"),
    ("SELECT Id FROM Contact WHERE Individual.Nope = true", "INVALID_FIELD"),
])
def test_unsupported_soql_is_refused_with_a_list_error_body(emulator, soql, code):
    with pytest.raises(SalesforceMalformedRequest) as caught:
        client(emulator).query(soql)

    assert caught.value.content[0]["errorCode"] == code


def test_composite_patch_writes_mixed_types_and_reports_a_failing_record(emulator):
    contact = emulator.create_contact("a@example.com", with_individual=True)
    lead = emulator.create_lead("b@example.com")
    blocked = emulator.create_contact("c@example.com")
    emulator.reject_writes(blocked)
    individual = emulator.record(contact)["IndividualId"]
    records = [
        {"attributes": {"type": "Contact"}, "id": contact, "HasOptedOutOfEmail": True},
        {"attributes": {"type": "Lead"}, "id": lead, "HasOptedOutOfEmail": True},
        {"attributes": {"type": "Individual"}, "id": individual, "HasOptedOutSolicit": True},
        {"attributes": {"type": "Contact"}, "id": blocked, "HasOptedOutOfEmail": True},
    ]

    results = client(emulator).restful("composite/sobjects", method="PATCH",
                                       json={"allOrNone": False, "records": records})

    assert [r["success"] for r in results] == [True, True, True, False]
    assert results[3]["errors"][0]["statusCode"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert emulator.record(contact)["HasOptedOutOfEmail"] is True
    assert emulator.record(lead)["HasOptedOutOfEmail"] is True
    assert emulator.record(individual)["HasOptedOutSolicit"] is True
    assert emulator.record(blocked)["HasOptedOutOfEmail"] is False


def test_person_fields_are_patched_read_back_as_json_and_bump_the_modstamp(emulator):
    contact = emulator.create_contact("a@example.com")
    lead = emulator.create_lead("b@example.com")
    stamped = emulator.record(contact)["SystemModstamp"]
    records = [
        {"attributes": {"type": "Contact"}, "id": contact, "FirstName": "Ada", "Phone": "0123",
         "MailingCity": "London", "Birthdate": "1815-12-10", "Health_Note__c": "asthma",
         "Customer_Since__c": "2020-01-31"},
        {"attributes": {"type": "Lead"}, "id": lead, "City": "Paris", "Health_Note__c": None},
    ]
    sf = client(emulator)

    results = sf.restful("composite/sobjects", method="PATCH",
                         json={"allOrNone": False, "records": records})
    [row] = sf.query_all("SELECT FirstName, Phone, MailingCity, Birthdate, Health_Note__c, "
                         f"Customer_Since__c FROM Contact WHERE Id = '{contact}'")["records"]

    assert [r["success"] for r in results] == [True, True]
    assert {k: v for k, v in row.items() if k != "attributes"} == {
        "FirstName": "Ada", "Phone": "0123", "MailingCity": "London", "Birthdate": "1815-12-10",
        "Health_Note__c": "asthma", "Customer_Since__c": "2020-01-31"}
    assert emulator.record(contact)["SystemModstamp"] > stamped
    assert emulator.record(lead)["City"] == "Paris"


def test_a_lead_has_no_mailing_city_or_birthdate(emulator):
    lead = emulator.create_lead("b@example.com")
    sf = client(emulator)

    records = [{"attributes": {"type": "Lead"}, "id": lead, "Birthdate": "1990-01-01"}]
    results = sf.restful("composite/sobjects", method="PATCH",
                         json={"allOrNone": False, "records": records})
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query("SELECT Id, MailingCity FROM Lead")

    assert results[0]["errors"][0]["statusCode"] == "INVALID_FIELD"
    assert caught.value.content[0]["errorCode"] == "INVALID_FIELD"


def test_a_date_that_is_not_yyyy_mm_dd_fails_the_whole_request(emulator):
    contact = emulator.create_contact("a@example.com")
    records = [{"attributes": {"type": "Contact"}, "id": contact, "FirstName": "Ada"},
               {"attributes": {"type": "Contact"}, "id": contact, "Birthdate": "10/12/1815"}]

    with pytest.raises(SalesforceMalformedRequest) as caught:
        client(emulator).restful("composite/sobjects", method="PATCH",
                                 json={"allOrNone": False, "records": records})

    assert caught.value.content[0]["errorCode"] == "JSON_PARSER_ERROR"
    assert emulator.record(contact)["FirstName"] is None


def test_a_ui_edit_bumps_the_modstamp_and_refuses_a_field_the_type_lacks(emulator):
    lead = emulator.create_lead("b@example.com")
    stamped = emulator.record(lead)["SystemModstamp"]

    emulator.ui_edit(lead, Phone="0123", Customer_Since__c="2021-03-04")
    with pytest.raises(Refused) as caught:
        emulator.ui_edit(lead, MailingCity="Paris")

    assert caught.value.code == "INVALID_FIELD"
    assert emulator.record(lead)["Phone"] == "0123"
    assert emulator.record(lead)["SystemModstamp"] > stamped


def test_composite_patch_with_all_or_none_rolls_everything_back(emulator):
    contact = emulator.create_contact("a@example.com")
    records = [{"attributes": {"type": "Contact"}, "id": contact, "HasOptedOutOfEmail": True},
               {"attributes": {"type": "Contact"}, "id": contact, "Nope": 1}]

    results = client(emulator).restful("composite/sobjects", method="PATCH",
                                       json={"allOrNone": True, "records": records})

    assert [r["errors"][0]["statusCode"] for r in results] == [
        "ALL_OR_NONE_OPERATION_ROLLED_BACK", "INVALID_FIELD"]
    assert emulator.record(contact)["HasOptedOutOfEmail"] is False


def test_composite_patch_refuses_more_than_200_records(emulator):
    contact = emulator.create_contact("a@example.com")
    records = [{"attributes": {"type": "Contact"}, "id": contact}] * 201

    with pytest.raises(SalesforceMalformedRequest) as caught:
        client(emulator).restful("composite/sobjects", method="PATCH",
                                 json={"allOrNone": False, "records": records})

    assert caught.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"


def test_composite_delete_moves_records_to_the_recycle_bin(emulator):
    contact = emulator.create_contact("a@example.com")

    results = client(emulator).restful("composite/sobjects", method="DELETE",
                                       params={"ids": f"{contact},003000000000999AAA",
                                               "allOrNone": "false"})

    assert [r["success"] for r in results] == [True, False]
    assert emulator.record(contact)["IsDeleted"] is True


def test_single_records_are_created_read_patched_and_deleted(emulator):
    sf = client(emulator)

    created = sf.Contact.create({"LastName": "Doe", "Email": "d@example.com"})
    status = sf.Contact.update(created["id"], {"HasOptedOutOfEmail": True})
    fetched = sf.Contact.get(created["id"])
    sf.Contact.delete(created["id"])

    assert created["id"].startswith("003") and len(created["id"]) == 18
    assert status == 204
    assert fetched["HasOptedOutOfEmail"] is True
    assert parse(fetched["SystemModstamp"]).tzinfo is not None
    assert emulator.record(created["id"])["IsDeleted"] is True


def test_patching_an_unknown_field_or_id_gives_salesforce_error_lists(emulator):
    contact = emulator.create_contact("a@example.com")
    sf = client(emulator)

    with pytest.raises(SalesforceMalformedRequest) as bad_field:
        sf.Contact.update(contact, {"Nope": True})
    with pytest.raises(SalesforceResourceNotFound) as bad_id:
        sf.Contact.update("003000000000999AAA", {"HasOptedOutOfEmail": True})

    assert bad_field.value.content == [{"message": "No such column 'Nope' on sobject of type "
                                        "Contact", "errorCode": "INVALID_FIELD"}]
    assert bad_id.value.content[0]["errorCode"] == "NOT_FOUND"


def test_a_bad_session_gets_401_invalid_session_id(emulator):
    with pytest.raises(SalesforceExpiredSession) as caught:
        client(emulator, session_id="00Dstale!session").limits()

    assert caught.value.content == [{"message": "Session expired or invalid",
                                     "errorCode": "INVALID_SESSION_ID"}]


def test_past_the_daily_limit_every_call_is_refused_with_request_limit_exceeded():
    emu = SalesforceEmulator(api_limit=2)
    emu.start()
    try:
        sf = client(emu)
        first = sf.limits()
        sf.query("SELECT Id FROM Contact")
        with pytest.raises(SalesforceRefusedRequest) as caught:
            sf.limits()
    finally:
        emu.stop()

    assert first["DailyApiRequests"] == {"Max": 2, "Remaining": 1}
    assert sf.api_usage["api-usage"].used == 2
    assert caught.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


def test_modstamps_are_distinct_rendered_with_milliseconds_and_increase(emulator):
    ids = [emulator.create_contact(f"p{i}@example.com") for i in range(20)]
    stamps = [emulator.record(i)["SystemModstamp"] for i in ids]

    assert stamps == sorted(set(stamps))
    assert all(s.tzinfo is not None for s in stamps)
    assert render(datetime(2024, 1, 2, 10, 0, 0, 123456, tzinfo=UTC)) == \
        "2024-01-02T10:00:00.123+0000"


def test_an_injected_fault_answers_the_next_matching_call_only(emulator):
    emulator.inject(Fault(503, [{"errorCode": "SERVER_UNAVAILABLE", "message": "down"}],
                          path_pattern="/limits"))
    sf = client(emulator)

    with pytest.raises(Exception) as caught:
        sf.limits()
    recovered = sf.limits()

    assert caught.value.status == 503
    assert recovered["DailyApiRequests"]["Max"] == 15000


def test_consent_rows_are_queried_by_party_and_deleted_before_their_individual(emulator):
    contact = emulator.create_contact("a@example.com", with_individual=True)
    individual = emulator.record(contact)["IndividualId"]
    consent = emulator.add_consent(individual, "Email", "OptOut")
    other = emulator.add_consent(emulator.record(emulator.create_lead(
        "b@example.com", with_individual=True))["IndividualId"])
    sf = client(emulator)
    soql = ("SELECT Id, PartyId, ContactPointType, PrivacyConsentStatus, CaptureDate "
            f"FROM ContactPointTypeConsent WHERE PartyId IN ('{individual}')")

    rows = sf.query_all(soql)["records"]
    results = [sf.restful("composite/sobjects", method="DELETE",
                          params={"ids": ids, "allOrNone": "false"})[0]
               for ids in (consent, contact, individual)]  # children first, one call each
    after = sf.query_all("SELECT Id FROM ContactPointTypeConsent")["records"]

    assert [(r["Id"], r["PartyId"], r["ContactPointType"], r["PrivacyConsentStatus"])
            for r in rows] == [(consent, individual, "Email", "OptOut")]
    assert consent.startswith("0ZY") and parse(rows[0]["CaptureDate"]).tzinfo is not None
    assert [r["success"] for r in results] == [True, True, True]
    assert emulator.record(individual)["IsDeleted"] is True
    assert [r["Id"] for r in after] == [other]


def test_a_consent_row_needs_a_live_individual_and_a_known_status(emulator):
    contact = emulator.create_contact("a@example.com")
    individual = emulator.record(emulator.create_lead("b@example.com",
                                                      with_individual=True))["IndividualId"]
    sf = client(emulator)

    with pytest.raises(Refused):
        emulator.add_consent(contact)
    with pytest.raises(SalesforceMalformedRequest) as bad_status:
        sf.ContactPointTypeConsent.create({"Name": "x", "PartyId": individual,
                                           "PrivacyConsentStatus": "Maybe"})

    assert bad_status.value.content[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"


def test_an_org_without_the_consent_object_refuses_it_like_salesforce():
    emu = SalesforceEmulator(consent_objects=False)
    emu.start()
    try:
        individual = emu.record(emu.create_contact("a@example.com",
                                                   with_individual=True))["IndividualId"]
        sf = client(emu)
        with pytest.raises(SalesforceMalformedRequest) as by_soql:
            sf.query("SELECT Id FROM ContactPointTypeConsent")
        with pytest.raises(SalesforceResourceNotFound) as by_rest:
            sf.ContactPointTypeConsent.describe()
        with pytest.raises(Refused):
            emu.add_consent(individual)
    finally:
        emu.stop()

    assert by_soql.value.content[0]["errorCode"] == "INVALID_TYPE"
    assert by_rest.value.content[0]["errorCode"] == "NOT_FOUND"


def test_soql_on_a_type_the_org_lacks_is_invalid_type(emulator):
    with pytest.raises(SalesforceMalformedRequest) as caught:
        client(emulator).query("SELECT Id FROM Accountx")

    assert caught.value.content[0]["errorCode"] == "INVALID_TYPE"


@pytest.mark.parametrize("sobject", ["Contact", "Lead", "Individual", "ContactPointTypeConsent"])
def test_describe_lists_every_field_a_query_can_select(emulator, sobject):
    sf = client(emulator)

    answer = getattr(sf, sobject).describe()
    names = [f["name"] for f in answer["fields"]]
    sf.query(f"SELECT {', '.join(names)} FROM {sobject}")

    assert answer["name"] == sobject and names[0] == "Id"
    assert {f["name"]: f["type"] for f in answer["fields"]}["Id"] == "id"
    assert emulator.total_calls(f"/services/data/v59.0/sobjects/{sobject}/describe") == 1


def test_describe_gives_salesforce_field_types(emulator):
    fields = {f["name"]: f for f in client(emulator).Contact.describe()["fields"]}

    assert {n: fields[n]["type"] for n in ("Email", "HasOptedOutOfEmail", "Birthdate",
                                           "SystemModstamp", "IndividualId", "Health_Note__c")} \
        == {"Email": "email", "HasOptedOutOfEmail": "boolean", "Birthdate": "date",
            "SystemModstamp": "datetime", "IndividualId": "reference",
            "Health_Note__c": "string"}
    assert fields["IndividualId"]["referenceTo"] == ["Individual"]
    assert fields["Health_Note__c"]["custom"] is True


def test_composite_delete_reports_a_refused_record_and_deletes_the_rest(emulator):
    kept = emulator.create_contact("a@example.com")
    gone = emulator.create_lead("b@example.com")
    emulator.reject_deletes(kept)

    sf = client(emulator)

    first = sf.restful("composite/sobjects", method="DELETE",
                       params={"ids": f"{kept},{gone}", "allOrNone": "false"})
    again = sf.restful("composite/sobjects", method="DELETE",
                       params={"ids": gone, "allOrNone": "false"})

    assert [(r["success"], [e["statusCode"] for e in r["errors"]]) for r in first + again] == [
        (False, ["DELETE_FAILED"]), (True, []), (False, ["ENTITY_IS_DELETED"])]
    assert emulator.record(kept)["IsDeleted"] is False
    assert emulator.record(gone)["IsDeleted"] is True


def test_the_version_list_needs_no_session_and_costs_no_api_call(emulator):
    answer = requests.get(f"{emulator.url}/services/data/", timeout=scaled(5))
    assert answer.status_code == 200
    assert [v["version"] for v in answer.json()] == ["59.0"]
    assert emulator.api_used == 0
