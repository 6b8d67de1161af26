"""Withdrawals reach Mailchimp members; nobody is added or re-subscribed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import requests

from connectors.mailchimp import MailchimpConnector, subscriber_hash
from connectors.mailchimp.destination import member_ref
from core.crypto import Keyring
from core.errors import AuthError, PermanentError, TransientError
from core.model import (
    Channel,
    ConsentChanged,
    ConsentState,
    ConsentStatus,
    DestinationSubject,
)
from privasync.emulators.http import Fault
from privasync.emulators.mailchimp import MailchimpEmulator
from tests.connectors.mailchimp.conftest import (
    CONSENT_ONLY,
    KEY,
    KEYS,
    LIST,
    connect,
    webhook_endpoint,
)
from tests.timing import scaled

WHEN = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
MAPPING = CONSENT_ONLY


@pytest.fixture
def connector(mc: MailchimpEmulator) -> MailchimpConnector:
    return connect(mc, MAPPING)


def subject(sid: str, email: str | None, status: ConsentStatus = ConsentStatus.WITHDRAWN,
            *, known: bool = False, refs: tuple[str, ...] = ()) -> DestinationSubject:
    consents = (ConsentState("product_news", Channel.EMAIL, ConsentStatus.GRANTED, WHEN, "crm"),
                ConsentState("offers", Channel.EMAIL, status, WHEN, "crm"))
    if known and email:
        refs = (*refs, member_ref(KEYS, email))
    return DestinationSubject(subject_id=sid, email=email, refs=refs, consents=consents)


def test_known_members_are_unsubscribed_in_one_http_call(mc: MailchimpEmulator,
                                                         connector: MailchimpConnector) -> None:
    emails = [f"m{i}@example.com" for i in range(20)]
    for email in emails:
        mc.add_member(email)
    outcomes = connector.apply_consent([subject(f"s{i}", e, known=True)
                                        for i, e in enumerate(emails)])
    assert mc.total_calls("/3.0") == 1
    assert all(o.error is None for o in outcomes)
    assert [o.subject_id for o in outcomes] == [f"s{i}" for i in range(20)]
    assert {mc.member(e)["status"] for e in emails} == {"unsubscribed"}  # type: ignore[index]
    assert outcomes[0].learned_refs == (member_ref(KEYS, emails[0]),)


def test_an_address_mailchimp_never_had_is_not_added(mc: MailchimpEmulator,
                                                     connector: MailchimpConnector) -> None:
    mc.add_member("here@example.com")
    outcomes = connector.apply_consent([subject("s1", "stranger@example.com"),
                                        subject("s2", "Here@Example.com")])
    assert mc.member("stranger@example.com") is None
    assert mc.member("here@example.com")["status"] == "unsubscribed"  # type: ignore[index]
    assert outcomes[0].error is None and "not a member" in outcomes[0].note
    assert outcomes[1].learned_refs == (member_ref(KEYS, "here@example.com"),)
    assert mc.total_calls(f"/3.0/lists/{LIST}/members") == 2
    assert mc.total_calls(f"/3.0/lists/{LIST}") == 3


def test_a_grant_never_resubscribes_anybody(mc: MailchimpEmulator,
                                            connector: MailchimpConnector) -> None:
    mc.add_member("out@example.com", status="unsubscribed")
    [outcome] = connector.apply_consent([subject("s1", "out@example.com", ConsentStatus.GRANTED,
                                                 known=True)])
    assert outcome.error is None
    assert outcome.note == "grants enter Mailchimp through its signup form"
    assert mc.member("out@example.com")["status"] == "unsubscribed"  # type: ignore[index]
    assert mc.total_calls() == 0


def test_a_member_already_opted_out_is_not_written_again(mc: MailchimpEmulator,
                                                         connector: MailchimpConnector) -> None:
    mc.add_member("bounced@example.com", status="cleaned")
    [outcome] = connector.apply_consent([subject("s1", "bounced@example.com")])
    assert outcome.error is None and outcome.note == "already cleaned"
    assert mc.member("bounced@example.com")["status"] == "cleaned"  # type: ignore[index]
    assert mc.total_calls() == 1


def test_a_permanently_deleted_member_is_refused_not_recreated(
        mc: MailchimpEmulator, connector: MailchimpConnector) -> None:
    mc.add_member("forgot@example.com")
    mc.add_member("kept@example.com")
    forgotten = requests.post(f"{mc.url}/3.0/lists/{LIST}/members/"
                              f"{subscriber_hash('forgot@example.com')}/actions/delete-permanent",
                              auth=("x", KEY), timeout=scaled(5))
    assert forgotten.status_code == 204
    outcomes = connector.apply_consent([subject("s1", "forgot@example.com", known=True),
                                        subject("s2", "kept@example.com", known=True)])
    assert isinstance(outcomes[0].error, PermanentError)
    assert outcomes[0].error.error_class == "error_generic"
    assert "forgot@" not in str(outcomes[0].error)
    assert outcomes[1].error is None
    assert mc.member("forgot@example.com") is None


def test_a_subject_without_an_address_or_member_has_no_identifier(
        mc: MailchimpEmulator, connector: MailchimpConnector) -> None:
    [outcome] = connector.apply_consent([subject("s1", None)])
    assert isinstance(outcome.error, PermanentError)
    assert outcome.error.error_class == "no_identifier"
    assert mc.total_calls() == 0


def test_the_reference_kept_for_a_member_is_keyed_never_mailchimps_md5(
        mc: MailchimpEmulator, connector: MailchimpConnector) -> None:
    member_hash = mc.add_member("anon@example.com")
    [outcome] = connector.apply_consent([subject("s1", "Anon@example.com")])
    [ref] = outcome.learned_refs
    assert member_hash not in ref and ref == member_ref(KEYS, "anon@example.com")
    other = Keyring(b"another-installation-secret-0000", [b"test-key-encryption-key-01234567"])
    assert member_ref(other, "anon@example.com") != ref  # unreadable without the secret
    # A member reference alone (no address) no longer reaches Mailchimp: nothing to hash.
    [alone] = connector.apply_consent([subject("s2", None, refs=(ref,))])
    assert isinstance(alone.error, PermanentError) and alone.error.error_class == "no_identifier"
    assert mc.member("anon@example.com")["status"] == "unsubscribed"  # type: ignore[index]


def test_a_full_batch_still_goes_out_as_one_call(mc: MailchimpEmulator,
                                                 connector: MailchimpConnector) -> None:
    emails = [f"b{i}@example.com" for i in range(connector.batch_size)]
    for email in emails:
        mc.add_member(email)
    outcomes = connector.apply_consent([subject(f"s{i}", e, known=True)
                                        for i, e in enumerate(emails)])
    assert len(outcomes) == 500 and all(o.error is None for o in outcomes)
    assert mc.total_calls() == 1


@pytest.mark.parametrize(("fault", "retry_after"), [
    (Fault(429, headers={"Retry-After": "7"}), 7.0),
    (Fault(429), 1.0),
    (Fault(500), None),
])
def test_rate_limits_and_server_errors_are_transient(
        mc: MailchimpEmulator, connector: MailchimpConnector, fault: Fault,
        retry_after: float | None) -> None:
    mc.add_member("t@example.com")
    mc.inject(fault)
    with pytest.raises(TransientError) as failed:
        connector.apply_consent([subject("s1", "t@example.com", known=True)])
    assert failed.value.retry_after == retry_after
    assert mc.member("t@example.com")["status"] == "subscribed"  # type: ignore[index]


def test_a_single_bad_gateway_is_absorbed_inside_the_call(
        mc: MailchimpEmulator, connector: MailchimpConnector) -> None:
    mc.add_member("g@example.com")
    mc.inject(Fault(502))
    [outcome] = connector.apply_consent([subject("s1", "g@example.com", known=True)])
    assert outcome.error is None
    assert mc.member("g@example.com")["status"] == "unsubscribed"  # type: ignore[index]


def test_a_wrong_api_key_is_an_auth_error(mc: MailchimpEmulator) -> None:
    bad = MailchimpConnector(base_url=f"{mc.url}/3.0", api_key="wrong-us6", list_id=LIST,
                             mapping=MAPPING, keys=KEYS, timeout=scaled(5))
    with pytest.raises(AuthError) as refused:
        bad.check()
    assert refused.value.error_class == "api_key_invalid"
    with pytest.raises(AuthError):
        bad.apply_consent([subject("s1", "a@example.com", known=True)])


def test_check_pings_the_api(mc: MailchimpEmulator, connector: MailchimpConnector) -> None:
    connector.check()
    assert mc.total_calls("/3.0/ping") == 1


def test_a_footer_unsubscribe_sent_by_the_emulator_parses_into_a_withdrawal(
        mc: MailchimpEmulator, connector: MailchimpConnector) -> None:
    with webhook_endpoint() as (url, bodies):
        mc.add_member("loop@example.com")
        mc.configure_webhook(url)
        mc.user_unsubscribe("loop@example.com")
        assert mc.flush_webhooks()
    [event] = connector.parse_webhook(bodies[0], datetime.now(UTC))
    assert isinstance(event, ConsentChanged)
    assert event.subject.email == "loop@example.com"
    assert {c.status for c in event.changes} == {ConsentStatus.WITHDRAWN}


def test_members_on_the_list_at_its_last_bulk_read_go_in_one_call_with_no_look_up(
        mc: MailchimpEmulator, connector: MailchimpConnector) -> None:
    emails = [f"l{i}@example.com" for i in range(30)]
    for email in emails:
        mc.add_member(email)
    listed = [DestinationSubject(s.subject_id, s.email, s.refs, s.consents, listed=True)
              for s in (subject(f"s{i}", e) for i, e in enumerate(emails))]
    outcomes = connector.apply_consent(listed)
    assert mc.total_calls("/3.0") == 1  # the batch itself, no GET per person
    assert all(o.error is None for o in outcomes)
    assert {mc.member(e)["status"] for e in emails} == {"unsubscribed"}  # type: ignore[index]


def test_the_list_is_read_a_thousand_members_a_call(mc: MailchimpEmulator,
                                                    connector: MailchimpConnector) -> None:
    for i in range(2500):
        mc.add_member(f"r{i}@example.com")
    mc.add_member("gone@example.com")
    requests.delete(f"{mc.url}/3.0/lists/{LIST}/members/{subscriber_hash('gone@example.com')}",
                    auth=("privasync", KEY), timeout=scaled(5)).raise_for_status()  # archived
    before = mc.total_calls()
    addresses = list(connector.addresses())
    assert sorted(addresses) == sorted(f"r{i}@example.com" for i in range(2500))
    assert mc.total_calls() - before == 3


def test_batch_error_codes_become_fixed_error_classes_never_the_vendors_text(
        mc: MailchimpEmulator, connector: MailchimpConnector) -> None:
    """The batch answer's error_code is ERROR_CONTACT_EXISTS or ERROR_GENERIC (the
    specification's enum); anything else is named as unlisted, not passed on."""
    people = ["exists@example.com", "generic@example.com", "odd@example.com",
              "fine@example.com"]
    for email in people:
        mc.add_member(email)
    mc.inject(Fault(200, {
        "new_members": [], "updated_members": [], "total_created": 0, "total_updated": 1,
        "error_count": 3, "errors": [
            {"email_address": "exists@example.com", "error_code": "ERROR_CONTACT_EXISTS",
             "error": "exists@example.com is already a list member"},
            {"email_address": "GENERIC@example.com", "error_code": "ERROR_GENERIC",
             "error": "generic@example.com is in a compliance state", "field": "status",
             "field_message": "generic@example.com cannot be changed"},
            {"email_address": "odd@example.com", "error_code": "MEMBER_IN_COMPLIANCE_STATE",
             "field": "odd@example.com"}]}, path_pattern=rf"/lists/{LIST}$"))
    outcomes = connector.apply_consent([subject(f"s{i}", e, known=True)
                                        for i, e in enumerate(people)])
    errors = [o.error for o in outcomes]
    assert [e.error_class if isinstance(e, PermanentError) else e for e in errors] == [
        "contact_exists", "error_generic", "unlisted_batch_error", None]
    assert "(field status)" in str(errors[1])
    assert all("@" not in str(e) for e in errors)
