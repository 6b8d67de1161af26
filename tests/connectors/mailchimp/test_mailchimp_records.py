"""Merge fields reach existing Mailchimp members in one batch; nobody is added."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import requests

from connectors.mailchimp import MailchimpConnector, subscriber_hash
from connectors.mailchimp.destination import member_ref
from core.errors import PermanentError, TransientError
from core.model import DestinationRecord, RecordChanged
from privasync.emulators.http import Fault
from privasync.emulators.mailchimp import MailchimpEmulator
from tests.connectors.mailchimp.conftest import (
    KEY,
    KEYS,
    LIST,
    WITH_FIELDS,
    connect,
    webhook_endpoint,
)
from tests.timing import scaled

BATCH = f"/3.0/lists/{LIST}"
MAPPING = WITH_FIELDS


@pytest.fixture
def connector(mc: MailchimpEmulator) -> MailchimpConnector:
    return connect(mc, MAPPING)


def record(sid: str, address: str | None, /, *, known: bool = False,
           **fields: str | None) -> DestinationRecord:
    """A record as the core hands it over: canonical field names, already minimised."""
    refs = (member_ref(KEYS, address),) if known and address else ()
    return DestinationRecord(subject_id=sid, email=address, refs=refs, fields=fields)


def batch_calls(mc: MailchimpEmulator) -> int:
    return mc.calls[f"POST {BATCH}"]


def merges(mc: MailchimpEmulator, email: str) -> dict[str, str]:
    member = mc.member(email)
    assert member is not None
    return dict(member["merge_fields"])


def test_known_members_get_their_merge_fields_in_one_call(
        mc: MailchimpEmulator, connector: MailchimpConnector) -> None:
    emails = [f"m{i}@example.com" for i in range(20)]
    for email in emails:
        mc.add_member(email, merge_fields={"FNAME": "old"})
    outcomes = connector.push_fields([
        record(f"s{i}", e, known=True, first_name=f"M{i}", product_interests="tea")
        for i, e in enumerate(emails)])
    assert all(o.error is None for o in outcomes)
    assert [o.subject_id for o in outcomes] == [f"s{i}" for i in range(20)]
    assert outcomes[0].learned_refs == (member_ref(KEYS, emails[0]),)
    assert merges(mc, emails[7]) == {"FNAME": "M7", "INTERESTS": "tea"}
    assert mc.total_calls("/3.0") == batch_calls(mc) == 1
    assert connector.record_batch_size == 500


def test_an_address_mailchimp_never_had_is_not_added(
        mc: MailchimpEmulator, connector: MailchimpConnector) -> None:
    mc.add_member("here@example.com")
    stranger, here = connector.push_fields([record("s1", "stranger@example.com", first_name="S"),
                                            record("s2", "Here@Example.com", first_name="H")])
    assert (stranger.error, stranger.note, stranger.learned_refs) == (None, "not a member", ())
    assert here.error is None and merges(mc, "here@example.com")["FNAME"] == "H"
    assert mc.member("stranger@example.com") is None
    assert batch_calls(mc) == 1


def test_nobody_unknown_means_no_batch_call(mc: MailchimpEmulator,
                                            connector: MailchimpConnector) -> None:
    [outcome] = connector.push_fields([record("s1", "stranger@example.com", first_name="S")])
    assert outcome.note == "not a member"
    assert batch_calls(mc) == 0 and mc.member("stranger@example.com") is None


def test_a_field_update_never_changes_a_subscription(
        mc: MailchimpEmulator, connector: MailchimpConnector) -> None:
    mc.add_member("out@example.com", status="unsubscribed")
    mc.add_member("in@example.com", status="subscribed")
    outcomes = connector.push_fields([record("s1", "out@example.com", first_name="Out"),
                                      record("s2", "in@example.com", known=True, first_name="In")])
    assert [o.error for o in outcomes] == [None, None]
    assert (mc.member("out@example.com") or {})["status"] == "unsubscribed"
    assert (mc.member("in@example.com") or {})["status"] == "subscribed"
    assert merges(mc, "out@example.com")["FNAME"] == "Out"


def test_a_cleared_field_is_emptied_and_unmapped_fields_are_ignored(
        mc: MailchimpEmulator, connector: MailchimpConnector) -> None:
    mc.add_member("c@example.com", merge_fields={"FNAME": "Cy", "INTERESTS": "tea"})
    [outcome] = connector.push_fields([record("s1", "c@example.com", known=True,
                                              product_interests=None, last_name="Lee",
                                              phone="+44 20 7946 0000")])
    assert outcome.error is None and outcome.note == "wrote 1 field(s)"
    assert merges(mc, "c@example.com") == {"FNAME": "Cy", "INTERESTS": ""}


def test_a_record_with_nothing_the_list_holds_costs_no_call(
        mc: MailchimpEmulator, connector: MailchimpConnector) -> None:
    mc.add_member("c@example.com")
    [outcome] = connector.push_fields([record("s1", "c@example.com", known=True, city="Leeds")])
    assert outcome.error is None and "no field" in outcome.note
    assert mc.total_calls() == 0


def test_an_archived_member_is_left_alone(mc: MailchimpEmulator,
                                          connector: MailchimpConnector) -> None:
    mc.add_member("arch@example.com")
    archived = requests.delete(f"{mc.url}{BATCH}/members/{subscriber_hash('arch@example.com')}",
                               auth=("privasync", KEY), timeout=scaled(5))
    [outcome] = connector.push_fields([record("s1", "arch@example.com", first_name="A")])
    assert archived.status_code == 204
    assert outcome.note == "not a member"
    assert "FNAME" not in merges(mc, "arch@example.com")
    assert batch_calls(mc) == 0


def test_a_member_that_vanished_after_the_check_is_refused_not_recreated(
        mc: MailchimpEmulator, connector: MailchimpConnector) -> None:
    [outcome] = connector.push_fields([record("s1", "gone@example.com", known=True,
                                              first_name="G")])
    assert isinstance(outcome.error, PermanentError)
    assert "gone@example.com" not in str(outcome.error)
    assert mc.member("gone@example.com") is None


def test_a_record_without_an_address_cannot_reach_its_member(
        mc: MailchimpEmulator, connector: MailchimpConnector) -> None:
    mc.add_member("h@example.com", merge_fields={"FNAME": "old"})
    by_ref, nothing = connector.push_fields([
        DestinationRecord("s1", None, (member_ref(KEYS, "h@example.com"),), {"first_name": "H"}),
        DestinationRecord("s2", None, (), {"first_name": "N"})])
    for outcome in (by_ref, nothing):
        assert isinstance(outcome.error, PermanentError)
        assert outcome.error.error_class == "no_identifier"
    assert merges(mc, "h@example.com")["FNAME"] == "old" and mc.total_calls() == 0


@pytest.mark.parametrize(("fault", "retry_after"), [
    (Fault(429, headers={"Retry-After": "7"}), 7.0),
    (Fault(500), None),
])
def test_rate_limits_and_server_errors_are_transient(
        mc: MailchimpEmulator, connector: MailchimpConnector, fault: Fault,
        retry_after: float | None) -> None:
    mc.add_member("t@example.com", merge_fields={"FNAME": "T"})
    mc.inject(fault)
    with pytest.raises(TransientError) as failed:
        connector.push_fields([record("s1", "t@example.com", known=True, first_name="New")])
    assert failed.value.retry_after == retry_after
    assert merges(mc, "t@example.com")["FNAME"] == "T"


def test_a_profile_edit_sent_by_the_emulator_parses_into_a_record_change(
        mc: MailchimpEmulator, connector: MailchimpConnector) -> None:
    with webhook_endpoint() as (url, bodies):
        mc.add_member("p@example.com", merge_fields={"FNAME": "Pat", "LNAME": "Doe"})
        mc.configure_webhook(url)
        mc.user_update_profile("p@example.com", FNAME="Patricia")
        assert mc.flush_webhooks()
    received = datetime.now(UTC)
    [event] = connector.parse_webhook(bodies[0], received)
    assert isinstance(event, RecordChanged)
    assert event.subject.email == "p@example.com"
    [(name, value)] = event.fields
    assert (name, value.value) == ("first_name", "Patricia")
    assert value.collected_at.tzinfo is not None and value.collected_at <= received
