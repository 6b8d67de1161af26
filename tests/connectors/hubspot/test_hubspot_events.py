"""HubSpot webhook batches become canonical events; malformed ones are refused by index/field."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.hubspot import HubSpotConnector
from core.errors import BadInput
from core.model import (
    Channel,
    ConsentChange,
    ConsentChanged,
    ConsentStatus,
    ErasureRequested,
    FieldValue,
    RecordChanged,
    SubjectDeleted,
    SubjectHint,
    SubjectSeen,
    SubjectsMerged,
    SystemRef,
)
from tests.connectors.hubspot.conftest import MAPPING

WHEN = 1717171717000


def parse(*events: dict[str, Any]) -> list[Any]:
    connector = HubSpotConnector(base_url="http://127.0.0.1:9", access_token="pat",
                                 client_secret="s", mapping=MAPPING)
    return connector.parse_events(json.dumps(list(events)).encode())


def event(kind: str, **fields: Any) -> dict[str, Any]:
    return {"eventId": 1709, "subscriptionId": 2345, "portalId": 62515, "appId": 54321,
            "occurredAt": WHEN, "subscriptionType": kind, "attemptNumber": 0, "objectId": 123,
            "changeSource": "CRM_UI"} | fields


def optout(prop: str, value: str, **fields: Any) -> dict[str, Any]:
    return event("contact.propertyChange", propertyName=prop, propertyValue=value, **fields)


def test_a_global_opt_out_withdraws_every_purpose_it_covers() -> None:
    [changed] = parse(optout("hs_email_optout", "true"))
    assert isinstance(changed, ConsentChanged)
    assert changed.changes == (
        ConsentChange("product_news", Channel.EMAIL, ConsentStatus.WITHDRAWN),
        ConsentChange("offers", Channel.EMAIL, ConsentStatus.WITHDRAWN))
    assert changed.subject == SubjectHint(ref=SystemRef("hubspot", "contact:123"))
    assert changed.meta.source == "hubspot"
    assert changed.meta.kind == "contact.propertyChange"
    assert changed.meta.source_event_id == f"62515:2345:1709:123:{WHEN}"
    assert changed.meta.occurred_at == datetime.fromtimestamp(WHEN / 1000, UTC)


def test_an_opt_in_is_a_grant_without_evidence() -> None:
    [changed] = parse(optout("hs_email_optout", "false"))
    assert {c.status for c in changed.changes} == {ConsentStatus.GRANTED}
    assert changed.evidence is None


def test_a_subscription_switch_changes_only_its_purpose() -> None:
    [off, on] = parse(optout("hs_email_optout_102", "true"),
                      optout("hs_email_optout_101", "false", occurredAt=WHEN + 1))
    assert off.changes == (ConsentChange("offers", Channel.EMAIL, ConsentStatus.WITHDRAWN),)
    assert on.changes == (ConsentChange("product_news", Channel.EMAIL, ConsentStatus.GRANTED),)


@pytest.mark.parametrize("prop", ["hs_legal_basis", "hs_email_optout_999", "notes_last_updated"])
def test_unmapped_properties_yield_nothing_and_the_batch_still_succeeds(prop: str) -> None:
    events = parse(optout(prop, "true"), event("contact.creation", objectId=7))
    assert [type(e) for e in events] == [SubjectSeen]


def test_a_mapped_property_change_is_a_record_change_under_its_canonical_name() -> None:
    [changed] = parse(optout("firstname", "Ada", changeSource="API"))
    assert isinstance(changed, RecordChanged)
    assert changed.subject == SubjectHint(ref=SystemRef("hubspot", "contact:123"))
    assert changed.meta.kind == "contact.propertyChange"
    [(name, value)] = changed.fields
    collected = datetime.fromtimestamp(WHEN / 1000, UTC)
    assert (name, value) == ("first_name", FieldValue("Ada", collected_at=collected))
    assert value.collected_at.utcoffset() is not None


def test_a_property_emptied_in_hubspot_clears_the_field() -> None:
    [cleared, unset] = parse(optout("city", ""),
                             event("contact.propertyChange", propertyName="lastname",
                                   occurredAt=WHEN + 1))
    assert isinstance(cleared, RecordChanged) and isinstance(unset, RecordChanged)
    assert [(n, v.value) for n, v in cleared.fields + unset.fields] == [
        ("city", None), ("last_name", None)]


def test_opt_out_properties_stay_consent_even_though_fields_are_mapped() -> None:
    events = parse(optout("hs_email_optout", "true"), optout("phone", "+44 20 7946 0000",
                                                             occurredAt=WHEN + 1))
    assert [type(e) for e in events] == [ConsentChanged, RecordChanged]


@pytest.mark.parametrize(("kind", "expected"), [
    ("contact.creation", SubjectSeen),
    ("contact.deletion", SubjectDeleted),
    ("contact.privacyDeletion", ErasureRequested),
])
def test_lifecycle_events_map_to_their_canonical_kind(kind: str, expected: type) -> None:
    [translated] = parse(event(kind))
    assert (type(translated), translated.subject.ref) == (
        expected, SystemRef("hubspot", "contact:123"))


def test_a_merge_names_the_primary_and_the_other_merged_contacts() -> None:
    [merged] = parse(event("contact.merge", primaryObjectId=123, mergedObjectIds=[123, 456],
                           newObjectId=123, numberOfPropertiesMoved=4))
    assert isinstance(merged, SubjectsMerged)
    assert merged.primary == SubjectHint(ref=SystemRef("hubspot", "contact:123"))
    assert merged.merged == (SystemRef("hubspot", "contact:456"),)


def test_a_merge_without_a_primary_falls_back_to_the_new_object() -> None:
    [merged] = parse(event("contact.merge", newObjectId=789, mergedObjectIds=[456]))
    assert merged.primary.ref == SystemRef("hubspot", "contact:789")


@pytest.mark.parametrize("kind", ["contact.restore", "contact.associationChange"])
def test_known_irrelevant_events_are_skipped(kind: str) -> None:
    assert parse(event(kind)) == []


def test_events_come_back_in_the_order_they_happened() -> None:
    events = parse(event("contact.deletion", occurredAt=WHEN + 50),
                   event("contact.creation", occurredAt=WHEN))
    assert [type(e) for e in events] == [SubjectSeen, SubjectDeleted]


@pytest.mark.parametrize(("body", "reason"), [
    (b"{not json", "not JSON"),
    (b'{"eventId": 1}', "JSON array"),
    (b"[1]", "event 0: not a JSON object"),
])
def test_a_malformed_body_is_refused(body: bytes, reason: str) -> None:
    connector = HubSpotConnector(base_url="http://x", access_token="p", client_secret="s",
                                 mapping=MAPPING)
    with pytest.raises(BadInput, match=reason):
        connector.parse_events(body)


@pytest.mark.parametrize("field", ["eventId", "subscriptionType", "objectId", "occurredAt"])
def test_a_missing_required_field_is_named_with_its_index(field: str) -> None:
    broken = {k: v for k, v in event("contact.creation").items() if k != field}
    with pytest.raises(BadInput, match=f"event 1: missing {field}"):
        parse(event("contact.creation"), broken)


@pytest.mark.parametrize(("field", "value"), [
    ("objectId", "123"), ("occurredAt", 1.5), ("eventId", True), ("portalId", "x"),
    ("propertyName", 5), ("mergedObjectIds", ["a"]),
])
def test_a_field_of_the_wrong_type_is_named_with_its_index(field: str, value: object) -> None:
    with pytest.raises(BadInput, match=f"event 0: {field}"):
        parse(event("contact.creation", **{field: value}))


def test_an_unknown_subscription_type_is_refused() -> None:
    with pytest.raises(BadInput, match="event 3: subscriptionType is not one privasync") as caught:
        parse(*[event("contact.creation")] * 3, event("deal.creation"))
    assert "deal.creation" not in str(caught.value)


def test_a_merge_naming_more_than_100_records_is_refused() -> None:
    with pytest.raises(BadInput, match="event 0: mergedObjectIds holds more than 100"):
        parse(event("contact.merge", mergedObjectIds=list(range(2, 200))))


def test_an_opt_out_value_that_is_not_a_boolean_is_refused_without_echoing_it() -> None:
    with pytest.raises(BadInput, match="event 0: propertyValue") as caught:
        parse(optout("hs_email_optout", "ada@example.org"))
    assert "ada@example.org" not in str(caught.value)


def test_a_batch_holds_at_most_100_events() -> None:
    with pytest.raises(BadInput, match="at most 100 events, got 101"):
        parse(*[event("contact.creation")] * 101)


def test_an_occurred_at_beyond_any_calendar_is_refused() -> None:
    with pytest.raises(BadInput, match="event 0: occurredAt"):
        parse(event("contact.creation", occurredAt=10**20))


@pytest.mark.parametrize(("value", "rule"), [
    (2**62, "occurredAt is out of range"),
    (2**63, "occurredAt must be an integer from 0 to 2^63-1"),
])
def test_an_occurred_at_past_the_year_9999_is_out_of_range_and_past_64_bits_a_bad_integer(
        value: int, rule: str) -> None:
    with pytest.raises(BadInput) as refused:
        parse(event("contact.creation", occurredAt=value))
    assert str(refused.value) == f"event 0: {rule}"


def test_a_refusal_carries_no_trace_of_what_the_sender_wrote() -> None:
    with pytest.raises(BadInput) as refused:
        parse(event("contact.creation", objectId="ada@example.org"))
    assert "ada@example.org" not in str(refused.value)
    assert refused.value.__cause__ is None and refused.value.__context__ is None
