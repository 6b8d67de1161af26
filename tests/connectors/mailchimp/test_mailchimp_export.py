"""Access requests at Mailchimp: every field a member holds, under the list, never the hash."""

from __future__ import annotations

import pytest
import requests

from connectors.mailchimp import MailchimpConnector, subscriber_hash
from connectors.mailchimp.export import member_fields
from core.errors import PermanentError, TransientError
from core.model import ExportedField, ExportResult, PersonAt
from privasync.emulators.http import Fault
from privasync.emulators.mailchimp import MailchimpEmulator
from tests.connectors.mailchimp.conftest import CONSENT_ONLY, KEY, KEYS, LIST, connect
from tests.timing import scaled

RECORD = f"member:{LIST}"


@pytest.fixture
def connector(mc: MailchimpEmulator) -> MailchimpConnector:
    return connect(mc, CONSENT_ONLY)


def person(sid: str, *emails: str, refs: tuple[str, ...] = ()) -> PersonAt:
    return PersonAt(subject_id=sid, request_id=f"dsr-{sid}", emails=emails, refs=refs)


def values(result: ExportResult) -> dict[str, str | None]:
    return {f.field: f.value for f in result.fields}


def test_a_members_fields_come_back_under_the_list(mc: MailchimpEmulator,
                                                   connector: MailchimpConnector) -> None:
    mc.add_member("ann@example.com", merge_fields={"FNAME": "Ann", "LNAME": ""},
                  tags=("vip", "fair 2026"), language="fr")
    [result] = connector.export([person("s1", "Ann@Example.com", "never@example.com")])
    held = values(result)
    assert result.error is None and "activity feed" in result.note
    assert {f.record for f in result.fields} == {RECORD}
    assert held["status"] == "subscribed" and held["email_address"] == "ann@example.com"
    assert held["merge_fields.FNAME"] == "Ann" and "merge_fields.LNAME" not in held
    assert held["marketing_permissions.c0d2b0d3f1"] == "true"
    assert sorted(v for k, v in held.items() if k.startswith("tags.")) == ["fair 2026", "vip"]
    assert held["language"] == "fr"
    assert held["timestamp_opt"].endswith("+00:00")  # type: ignore[union-attr]
    assert held["last_changed"].endswith("+00:00")  # type: ignore[union-attr]
    assert "ip_signup" not in held and "timestamp_signup" not in held  # an import has none
    assert {"id", "list_id", "_links"}.isdisjoint(held)
    member_hash = subscriber_hash("ann@example.com")
    assert all(member_hash not in f"{f.record} {f.field} {f.value}" for f in result.fields)
    # one read an address, one a batch (the list)
    assert mc.total_calls() == 3
    assert {k.split(" ")[0] for k in mc.calls} == {"GET"}


def test_a_hosted_form_signup_exports_its_signup_ip_and_time(
        mc: MailchimpEmulator, connector: MailchimpConnector) -> None:
    mc.user_subscribe("form@example.com")
    [result] = connector.export([person("s1", "form@example.com")])
    held = values(result)
    assert held["ip_signup"] and held["ip_opt"]
    assert held["timestamp_signup"].endswith("+00:00")  # type: ignore[union-attr]


def test_someone_who_is_not_a_member_gets_no_fields(mc: MailchimpEmulator,
                                                    connector: MailchimpConnector) -> None:
    mc.add_member("someone@example.com")
    [result] = connector.export([person("s1", "stranger@example.com")])
    assert result == ExportResult("s1", note="not a member")


def test_an_archived_member_still_holds_data_and_is_exported(
        mc: MailchimpEmulator, connector: MailchimpConnector) -> None:
    mc.add_member("arch@example.com", merge_fields={"FNAME": "Arch"})
    requests.delete(f"{mc.url}/3.0/lists/{LIST}/members/{subscriber_hash('arch@example.com')}",
                    auth=("x", KEY), timeout=scaled(5)).raise_for_status()
    [result] = connector.export([person("s1", "arch@example.com")])
    assert values(result)["status"] == "archived"
    assert values(result)["merge_fields.FNAME"] == "Arch"


def test_each_member_of_one_person_is_its_own_record(mc: MailchimpEmulator,
                                                     connector: MailchimpConnector) -> None:
    mc.add_member("home@example.com", merge_fields={"FNAME": "Home"})
    mc.add_member("work@example.com", merge_fields={"FNAME": "Work"})
    [result] = connector.export([person("s1", "home@example.com", "work@example.com")])
    by_record = {(f.record, f.field): f.value for f in result.fields}
    assert by_record[(RECORD, "merge_fields.FNAME")] == "Home"
    assert by_record[(f"{RECORD}#2", "merge_fields.FNAME")] == "Work"


def test_after_an_erasure_the_export_finds_nothing(mc: MailchimpEmulator,
                                                   connector: MailchimpConnector) -> None:
    mc.add_member("e@example.com", merge_fields={"FNAME": "E"})
    assert connector.erase([person("s1", "e@example.com")])[0].error is None
    assert connector.export([person("s1", "e@example.com")])[0].note == "not a member"


def test_someone_without_an_address_or_member_cannot_be_looked_up(
        mc: MailchimpEmulator, connector: MailchimpConnector) -> None:
    [result] = connector.export([person("s1")])
    assert isinstance(result.error, PermanentError)
    assert result.error.error_class == "no_identifier" and not result.fields


@pytest.mark.parametrize(("fault", "retry_after"), [
    (Fault(429, headers={"Retry-After": "7"}, path_pattern="/members/"), 7.0),
    (Fault(500, path_pattern="/members/"), None),
])
def test_a_failed_read_fails_the_whole_call(mc: MailchimpEmulator, connector: MailchimpConnector,
                                            fault: Fault, retry_after: float | None) -> None:
    mc.add_member("a@example.com")
    mc.inject(fault)
    with pytest.raises(TransientError) as failed:
        connector.export([person("s1", "a@example.com")])
    assert failed.value.retry_after == retry_after


def test_a_wrong_list_id_is_refused_rather_than_read_as_not_a_member(
        mc: MailchimpEmulator) -> None:
    wrong = MailchimpConnector(base_url=f"{mc.url}/3.0", api_key=KEY, list_id="ffffffffff",
                               mapping=CONSENT_ONLY, keys=KEYS, timeout=scaled(5))
    with pytest.raises(PermanentError) as refused:
        wrong.export([person("s1", "a@example.com")])
    assert refused.value.error_class == "list_not_found"


def test_a_full_batch_costs_one_read_a_person_plus_one(mc: MailchimpEmulator,
                                                       connector: MailchimpConnector) -> None:
    size = connector.export_batch_size
    for i in range(size):
        mc.add_member(f"x{i}@example.com", merge_fields={"FNAME": f"X{i}"})
    results = connector.export([person(f"s{i}", f"x{i}@example.com") for i in range(size)])
    assert [values(r)["merge_fields.FNAME"] for r in results] == [f"X{i}" for i in range(size)]
    assert mc.total_calls() == size + 1


def test_nested_merge_fields_interests_and_derived_data_are_flattened() -> None:
    member = {"email_address": "n@example.com", "status": "subscribed", "vip": False,
              "merge_fields": {"FNAME": "N", "ADDRESS": {"city": "Lyon", "zip": ""}},
              "interests": {"9143cf3bd1": True}, "stats": {"avg_open_rate": 0.5},
              "marketing_permissions": [{"marketing_permission_id": "p1", "text": "Email",
                                         "enabled": False}],
              "tags": [{"id": 7, "name": "x"}], "ip_signup": "", "last_note": None,
              "id": "0" * 32, "list_id": LIST, "_links": [{"rel": "self"}]}
    assert member_fields(member, "r") == [
        ExportedField("r", "email_address", "n@example.com"),
        ExportedField("r", "status", "subscribed"),
        ExportedField("r", "vip", "false"),
        ExportedField("r", "merge_fields.FNAME", "N"),
        ExportedField("r", "merge_fields.ADDRESS.city", "Lyon"),
        ExportedField("r", "interests.9143cf3bd1", "true"),
        ExportedField("r", "stats.avg_open_rate", "0.5"),
        ExportedField("r", "marketing_permissions.p1", "false"),
        ExportedField("r", "tags.7", "x"),
    ]
