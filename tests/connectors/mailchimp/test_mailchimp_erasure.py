"""Erasure at Mailchimp: members permanently deleted, verified gone, never re-added."""

from __future__ import annotations

import re

import pytest
import requests

from connectors.mailchimp import MailchimpConnector, subscriber_hash
from connectors.mailchimp.destination import member_ref
from connectors.mailchimp.erasure import STILL_READABLE
from core.errors import AuthError, PermanentError, TransientError
from core.model import ErasureReceipt, ErasureStatus, PersonAt
from privasync.emulators.http import Fault
from privasync.emulators.mailchimp import MailchimpEmulator
from tests.connectors.mailchimp.conftest import CONSENT_ONLY, KEY, KEYS, LIST, connect
from tests.timing import scaled


@pytest.fixture
def connector(mc: MailchimpEmulator) -> MailchimpConnector:
    return connect(mc, CONSENT_ONLY)


def person(sid: str, *emails: str, refs: tuple[str, ...] = ()) -> PersonAt:
    return PersonAt(subject_id=sid, request_id=f"dsr-{sid}", emails=emails, refs=refs)


def done(receipt: ErasureReceipt) -> bool:
    return receipt.error is None and receipt.status == ErasureStatus.DONE


def member_url(mc: MailchimpEmulator, email: str) -> str:
    return f"{mc.url}/3.0/lists/{LIST}/members/{subscriber_hash(email)}"


def calls_seen(mc: MailchimpEmulator) -> set[str]:
    """Each method and path the emulator served, member hashes as ``{hash}``."""
    return {re.sub(r"[0-9a-f]{32}", "{hash}", key) for key in mc.calls}


def test_a_person_is_deleted_under_every_address_and_verified_gone(
        mc: MailchimpEmulator, connector: MailchimpConnector) -> None:
    mc.add_member("ann@example.com", merge_fields={"FNAME": "Ann"})
    mc.add_member("other@example.com")
    [receipt] = connector.erase([person("s1", "Ann@Example.com", "never@example.com")])
    assert done(receipt)
    assert (receipt.vendor_status, receipt.records) == (204, 1)
    assert receipt.verified == "GET member: 404 for 2 of 2"
    assert mc.member("ann@example.com") is None  # gone, not archived
    assert mc.member("other@example.com") is not None
    # two calls an address (delete-permanent, then the read back) and one a batch (the list)
    assert mc.total_calls() == 5
    # nothing archived (DELETE), re-added (PUT, POST to the list) or sent to /batches
    assert calls_seen(mc) == {f"GET /3.0/lists/{LIST}",
                              f"POST /3.0/lists/{LIST}/members/{{hash}}/actions/delete-permanent",
                              f"GET /3.0/lists/{LIST}/members/{{hash}}"}


def test_an_erased_address_cannot_be_added_back_by_the_api(
        mc: MailchimpEmulator, connector: MailchimpConnector) -> None:
    mc.add_member("gone@example.com")
    assert done(connector.erase([person("s1", "gone@example.com")])[0])
    again = requests.put(member_url(mc, "gone@example.com"), auth=("x", KEY),
                         timeout=scaled(5), json={
        "email_address": "gone@example.com", "status_if_new": "unsubscribed"})
    assert again.status_code == 400
    assert again.json()["title"] == "Forgotten Email Not Subscribed"
    with pytest.raises(ValueError):
        mc.add_member("gone@example.com")
    assert mc.member("gone@example.com") is None


def test_erasing_again_is_done_with_nothing_left_to_remove(
        mc: MailchimpEmulator, connector: MailchimpConnector) -> None:
    mc.add_member("twice@example.com")
    first = connector.erase([person("s1", "twice@example.com")])
    second = connector.erase([person("s1", "twice@example.com")])
    assert done(first[0]) and done(second[0])
    assert (second[0].vendor_status, second[0].records) == (404, 0)
    assert second[0].verified == "GET member: 404 for 1 of 1"


def test_an_archived_member_is_deleted_not_left_archived(
        mc: MailchimpEmulator, connector: MailchimpConnector) -> None:
    mc.add_member("arch@example.com", status="unsubscribed")
    requests.delete(member_url(mc, "arch@example.com"), auth=("x", KEY),
                    timeout=scaled(5)).raise_for_status()
    [receipt] = connector.erase([person("s1", "arch@example.com")])
    assert done(receipt) and receipt.records == 1
    assert mc.member("arch@example.com") is None


def test_every_address_of_a_person_is_erased_by_its_hash_computed_in_flight(
        mc: MailchimpEmulator, connector: MailchimpConnector) -> None:
    mc.add_member("anon@example.com")
    mc.add_member("old@example.com")
    [receipt] = connector.erase([person("s1", "Anon@example.com", "old@example.com",
                                        refs=(member_ref(KEYS, "anon@example.com"),))])
    assert done(receipt) and receipt.records == 2
    assert mc.member("anon@example.com") is None and mc.member("old@example.com") is None


def test_someone_without_an_address_or_member_cannot_be_said_to_be_gone(
        mc: MailchimpEmulator, connector: MailchimpConnector) -> None:
    [receipt] = connector.erase([person("s1")])
    assert isinstance(receipt.error, PermanentError)
    assert receipt.error.error_class == "no_identifier"
    assert mc.total_calls("/3.0/lists/a6b5da1054/members") == 0


def test_a_member_still_readable_after_the_delete_is_not_done(
        mc: MailchimpEmulator, connector: MailchimpConnector) -> None:
    mc.add_member("sticky@example.com")
    mc.add_member("fine@example.com")
    # Mailchimp acknowledges the first deletion without carrying it out.
    mc.inject(Fault(204, path_pattern="/actions/delete-permanent$"))
    sticky, fine = connector.erase([person("s1", "sticky@example.com"),
                                    person("s2", "fine@example.com")])
    assert isinstance(sticky.error, TransientError)
    assert sticky.error.error_class == STILL_READABLE
    assert sticky.verified == "GET member: 404 for 0 of 1" and sticky.records == 0
    assert "sticky" not in str(sticky.error)
    assert done(fine)  # one person's failed check does not hold up the rest
    assert mc.member("sticky@example.com") is not None
    assert done(connector.erase([person("s1", "sticky@example.com")])[0])


def test_a_refused_deletion_is_a_permanent_error_and_the_other_address_still_goes(
        mc: MailchimpEmulator, connector: MailchimpConnector) -> None:
    mc.add_member("held@example.com")
    mc.add_member("free@example.com")
    mc.inject(Fault(400, headers={"Content-Type": "application/problem+json"}, body={
        "type": "https://mailchimp.com/developer/marketing/docs/errors/",
        "title": "Member In Compliance State", "status": 400, "detail": "refused",
        "instance": "i"}, path_pattern=f"{subscriber_hash('held@example.com')}/actions/"))
    [receipt] = connector.erase([person("s1", "held@example.com", "free@example.com")])
    assert isinstance(receipt.error, PermanentError)
    assert receipt.error.error_class == "member_in_compliance_state"
    assert "held@" not in str(receipt.error)
    assert receipt.verified == "GET member: 404 for 1 of 2" and receipt.records == 1
    assert mc.member("held@example.com") is not None
    assert mc.member("free@example.com") is None


@pytest.mark.parametrize(("fault", "retry_after"), [
    (Fault(429, headers={"Retry-After": "7"}), 7.0),
    (Fault(429), 1.0),
    (Fault(500), None),
])
def test_rate_limits_and_server_errors_before_anything_is_erased_are_raised(
        mc: MailchimpEmulator, connector: MailchimpConnector, fault: Fault,
        retry_after: float | None) -> None:
    mc.add_member("t@example.com")
    mc.inject(fault)
    with pytest.raises(TransientError) as failed:
        connector.erase([person("s1", "t@example.com")])
    assert failed.value.retry_after == retry_after
    assert mc.member("t@example.com") is not None


def test_a_rate_limit_mid_batch_stops_it_and_keeps_the_receipts_of_people_erased(
        mc: MailchimpEmulator, connector: MailchimpConnector) -> None:
    for name in ("p1", "p2", "p3"):
        mc.add_member(f"{name}@example.com")
    mc.inject(Fault(429, headers={"Retry-After": "30"},
                    path_pattern=f"{subscriber_hash('p2@example.com')}/actions/"))
    first, second, third = connector.erase([person(n, f"{n}@example.com")
                                            for n in ("p1", "p2", "p3")])
    assert done(first) and first.records == 1
    for receipt in (second, third):
        assert isinstance(receipt.error, TransientError)
        assert (receipt.error.retry_after, receipt.error.error_class) == (30.0, "http_429")
    assert mc.member("p1@example.com") is None
    assert mc.member("p2@example.com") is not None and mc.member("p3@example.com") is not None
    assert mc.total_calls(f"/3.0/lists/{LIST}/members/{subscriber_hash('p3@example.com')}") == 0
    assert all(map(done, connector.erase([person("p2", "p2@example.com"),
                                          person("p3", "p3@example.com")])))


def test_a_single_bad_gateway_is_absorbed_inside_the_call(
        mc: MailchimpEmulator, connector: MailchimpConnector) -> None:
    mc.add_member("g@example.com")
    mc.inject(Fault(502, path_pattern="/actions/delete-permanent$"))
    assert done(connector.erase([person("s1", "g@example.com")])[0])
    assert mc.member("g@example.com") is None


def test_a_wrong_list_id_is_refused_rather_than_read_as_nobody_there(
        mc: MailchimpEmulator) -> None:
    mc.add_member("w@example.com")
    wrong = MailchimpConnector(base_url=f"{mc.url}/3.0", api_key=KEY, list_id="ffffffffff",
                               mapping=CONSENT_ONLY, keys=KEYS, timeout=scaled(5))
    with pytest.raises(PermanentError) as refused:
        wrong.erase([person("s1", "w@example.com")])
    assert refused.value.error_class == "list_not_found"
    assert mc.member("w@example.com") is not None


def test_a_wrong_api_key_is_an_auth_error(mc: MailchimpEmulator) -> None:
    bad = MailchimpConnector(base_url=f"{mc.url}/3.0", api_key="wrong-us6", list_id=LIST,
                             mapping=CONSENT_ONLY, keys=KEYS, timeout=scaled(5))
    with pytest.raises(AuthError):
        bad.erase([person("s1", "a@example.com")])


def test_a_full_batch_costs_two_calls_a_person_plus_one(
        mc: MailchimpEmulator, connector: MailchimpConnector) -> None:
    size = connector.erase_batch_size
    for i in range(size):
        mc.add_member(f"b{i}@example.com")
    receipts = connector.erase([person(f"s{i}", f"b{i}@example.com") for i in range(size)])
    assert [r.subject_id for r in receipts] == [f"s{i}" for i in range(size)]
    assert all(map(done, receipts)) and sum(r.records for r in receipts) == size == 50
    assert mc.total_calls() == 2 * size + 1
