"""Every call privasync makes to Mailchimp, made by the connector itself against the
emulator: each request is the shape the Marketing API takes, each answer the shape it
gives (privasync.emulators.contracts.mailchimp), and together they cover every endpoint used."""

from __future__ import annotations

from datetime import UTC, datetime

import requests

from connectors.mailchimp import MailchimpConnector, subscriber_hash
from connectors.mailchimp.destination import member_ref
from core.model import (
    Channel,
    ConsentState,
    ConsentStatus,
    DestinationRecord,
    DestinationSubject,
    PersonAt,
)
from privasync.emulators.contracts.mailchimp.lists import Webhook
from privasync.emulators.contracts.mailchimp.members import Member
from privasync.emulators.mailchimp import MailchimpEmulator
from tests.contracts.mailchimp.conftest import KEY, KEYS, LIST, MAPPING, Intake, conform
from tests.timing import scaled

WHEN = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def withdrawn(sid: str, email: str, known: bool) -> DestinationSubject:
    refs = (member_ref(KEYS, email),) if known else ()
    return DestinationSubject(subject_id=sid, email=email, refs=refs, consents=(
        ConsentState("offers", Channel.EMAIL, ConsentStatus.WITHDRAWN, WHEN, "crm"),))


def test_a_withdrawal_looks_members_up_and_unsubscribes_them_in_the_published_shapes(
        mc: MailchimpEmulator, connector: MailchimpConnector,
        exchanges: list[requests.Response]) -> None:
    mc.add_member("known@example.com")
    mc.add_member("looked.up@example.com")
    outcomes = connector.apply_consent([withdrawn("s1", "known@example.com", True),
                                        withdrawn("s2", "looked.up@example.com", False),
                                        withdrawn("s3", "absent@example.com", False)])
    assert [o.error for o in outcomes] == [None, None, None]
    assert [conform(r) for r in exchanges] == [
        rf"GET /3\.0/lists/{LIST}/members/[^/]+", rf"GET /3\.0/lists/{LIST}/members/[^/]+",
        rf"POST /3\.0/lists/{LIST}"]
    assert mc.member("known@example.com")["status"] == "unsubscribed"  # type: ignore[index]


def test_people_known_absent_are_checked_against_the_changes_in_the_published_shapes(
        mc: MailchimpEmulator) -> None:
    connector = MailchimpConnector(base_url=f"{mc.url}/3.0", api_key=KEY, list_id=LIST,
                                   mapping=MAPPING, keys=KEYS, timeout=scaled(5),
                                   directory_max_age=3600)
    exchanges: list[requests.Response] = []
    connector._api._session.hooks["response"].append(lambda r, *a, **k: exchanges.append(r))
    read = datetime.now(UTC)
    mc.add_member("late@example.com")
    outcomes = connector.apply_consent([
        DestinationSubject(s.subject_id, s.email, s.refs, s.consents, unlisted_at=read)
        for s in (withdrawn(f"s{i}", f"{n}@example.com", False)
                  for i, n in enumerate(("gone", "never", "late")))])
    assert [o.error for o in outcomes] == [None, None, None]
    assert [conform(r) for r in exchanges] == [
        rf"GET /3\.0/lists/{LIST}/members", rf"GET /3\.0/lists/{LIST}/members",
        rf"GET /3\.0/lists/{LIST}/members/[^/]+", rf"POST /3\.0/lists/{LIST}"]


def test_merge_fields_are_pushed_in_the_published_batch_shape(
        mc: MailchimpEmulator, connector: MailchimpConnector,
        exchanges: list[requests.Response]) -> None:
    mc.add_member("named@example.com")
    [outcome] = connector.push_fields([DestinationRecord(
        subject_id="s1", email="named@example.com", refs=(member_ref(KEYS, "named@example.com"),),
        fields={"first_name": "Noor"})])
    assert outcome.error is None
    assert [conform(r) for r in exchanges] == [rf"POST /3\.0/lists/{LIST}"]
    assert mc.member("named@example.com")["merge_fields"] == {"FNAME": "Noor"}  # type: ignore[index]


def test_an_erasure_deletes_permanently_and_reads_back_404_in_the_published_shapes(
        mc: MailchimpEmulator, connector: MailchimpConnector,
        exchanges: list[requests.Response]) -> None:
    mc.add_member("erase.me@example.com")
    [receipt] = connector.erase([PersonAt("s1", "dsr-1",
                                          ("erase.me@example.com", "never@example.com"))])
    assert receipt.error is None and receipt.records == 1
    calls = [conform(r) for r in exchanges]
    assert calls[0] == rf"GET /3\.0/lists/{LIST}"
    assert calls.count(rf"POST /3\.0/lists/{LIST}/members/[^/]+/actions/delete-permanent") == 2
    assert [r.status_code for r in exchanges[-2:]] == [404, 404]  # problem documents


def test_an_export_reads_whole_members_in_the_published_shape(
        mc: MailchimpEmulator, connector: MailchimpConnector,
        exchanges: list[requests.Response]) -> None:
    mc.add_member("read.me@example.com", merge_fields={"FNAME": "R"}, tags=("vip",))
    [result] = connector.export([PersonAt("s1", "dsr-1", ("read.me@example.com",))])
    assert result.error is None and result.fields
    assert [conform(r) for r in exchanges] == [
        rf"GET /3\.0/lists/{LIST}", rf"GET /3\.0/lists/{LIST}/members/[^/]+"]


def test_the_directory_pages_through_members_in_the_published_shape(
        mc: MailchimpEmulator, connector: MailchimpConnector,
        exchanges: list[requests.Response]) -> None:
    for i in range(3):
        mc.add_member(f"listed{i}@example.com")
    assert sorted(connector.addresses()) == [f"listed{i}@example.com" for i in range(3)]
    assert {conform(r) for r in exchanges} == {rf"GET /3\.0/lists/{LIST}/members"}


def test_check_reads_ping_the_audience_and_its_webhooks_in_the_published_shapes(
        mc: MailchimpEmulator, connector: MailchimpConnector, intake: Intake,
        exchanges: list[requests.Response]) -> None:
    mc.configure_webhook(f"{intake.url}/webhooks/mailchimp/contract-token",
                         sources=("user", "admin"))
    connector.check()
    assert [conform(r) for r in exchanges] == [
        r"GET /3\.0/ping", rf"GET /3\.0/lists/{LIST}", rf"GET /3\.0/lists/{LIST}/webhooks"]
    [hook] = exchanges[-1].json()["webhooks"]
    assert Webhook.model_validate(hook).events is not None


def test_member_writes_privasync_does_not_make_still_answer_the_member_shape(
        mc: MailchimpEmulator, api: requests.Session) -> None:
    """PUT and PATCH (the SDK's set/update_list_member) by each of the path's three forms."""
    base = f"{mc.url}/3.0/lists/{LIST}/members"
    put = api.put(f"{base}/{subscriber_hash('w@example.com')}", timeout=scaled(5), json={
        "email_address": "w@example.com", "status_if_new": "unsubscribed"})
    contact_id = Member.model_validate(put.json()).contact_id
    for key in ("w@example.com", contact_id):
        patched = api.patch(f"{base}/{key}", json={"merge_fields": {"FNAME": "W"}},
                            timeout=scaled(5))
        assert patched.status_code == 200
        assert Member.model_validate(patched.json()).merge_fields == {"FNAME": "W"}
