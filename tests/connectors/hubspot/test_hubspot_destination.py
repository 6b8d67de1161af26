"""apply_consent and check against the HubSpot emulator: end state, calls made, errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import requests

from connectors.hubspot import HubSpotConnector
from core.errors import AuthError, PermanentError, TransientError
from core.mappings import Subscription, SystemConsent, SystemMapping
from core.model import Channel, ConsentState, ConsentStatus, DestinationSubject, Evidence
from privasync.emulators.http import Fault
from privasync.emulators.hubspot import HubSpotEmulator
from tests.connectors.hubspot.conftest import MAPPING, TOKEN
from tests.timing import scaled

WRITE = "/communication-preferences/v4/statuses/batch/write"
AT = datetime(2026, 4, 1, 9, 30, tzinfo=UTC)
PROOF = Evidence(source="web", method="signup_form", wording_version="nl-2026-03",
                 proof_reference="form-submission:8812")
WITHDRAWN, GRANTED = ConsentStatus.WITHDRAWN, ConsentStatus.GRANTED


def connector(hub: HubSpotEmulator, mapping: SystemMapping = MAPPING,
              token: str = TOKEN) -> HubSpotConnector:
    return HubSpotConnector(base_url=hub.url, access_token=token, client_secret="s",
                            mapping=mapping, timeout=scaled(5))


def subject(sid: str, email: str | None, **purposes: ConsentStatus) -> DestinationSubject:
    consents = tuple(ConsentState(p, Channel.EMAIL, status, AT, "web",
                                  PROOF if status is GRANTED else None)
                     for p, status in purposes.items())
    return DestinationSubject(subject_id=sid, email=email, refs=(), consents=consents)


def test_withdrawals_and_grants_end_up_in_hubspot_in_one_call(hub: HubSpotEmulator) -> None:
    outcomes = connector(hub).apply_consent([
        subject("s1", "ada@example.org", product_news=WITHDRAWN, offers=WITHDRAWN),
        subject("s2", "bob@example.org", product_news=GRANTED),
        subject("s3", "cy@example.org", offers=WITHDRAWN),
    ])

    assert [o.error for o in outcomes] == [None, None, None]
    assert [o.subject_id for o in outcomes] == ["s1", "s2", "s3"]
    assert hub.subscription_status("ada@example.org", 101) == "NOT_SUBSCRIBED"
    assert hub.subscription_status("ada@example.org", 102) == "NOT_SUBSCRIBED"
    assert hub.subscription_status("bob@example.org", 101) == "SUBSCRIBED"
    assert hub.subscription_status("bob@example.org", 102) is None
    assert hub.subscription_status("cy@example.org", 102) == "NOT_SUBSCRIBED"
    assert hub.total_calls() == hub.total_calls(WRITE) == 1


def test_a_grant_carries_the_legal_basis_and_an_explanation_free_of_personal_data(
        hub: HubSpotEmulator) -> None:
    connector(hub).apply_consent([subject("s2", "bob@example.org", product_news=GRANTED)])
    [change] = hub.status_changes("bob@example.org")
    assert change.legal_basis == "CONSENT_WITH_NOTICE"
    assert change.explanation is not None
    assert "signup_form" in change.explanation and "form-submission:8812" in change.explanation
    assert "bob" not in change.explanation


def test_withdrawing_everything_also_sets_the_global_opt_out(hub: HubSpotEmulator) -> None:
    contact_id = hub.create_contact("ada@example.org")
    connector(hub).apply_consent(
        [subject("s1", "ada@example.org", product_news=WITHDRAWN, offers=WITHDRAWN)])
    assert hub.contact(contact_id)["hs_email_optout"] == "true"  # type: ignore[index]


def test_a_global_withdrawal_unsubscribes_every_mapped_subscription(
        hub: HubSpotEmulator) -> None:
    mapping = SystemMapping(system="hubspot", consent=SystemConsent(
        all_email=("product_news",), subscriptions={"101": Subscription(purpose="product_news"),
                                                    "102": Subscription(purpose="offers")}))
    connector(hub, mapping).apply_consent(
        [subject("s1", "ada@example.org", product_news=WITHDRAWN, offers=GRANTED)])
    assert hub.subscription_status("ada@example.org", 102) == "NOT_SUBSCRIBED"


def test_a_subject_without_an_email_fails_alone_and_costs_no_call(hub: HubSpotEmulator) -> None:
    [outcome] = connector(hub).apply_consent([subject("s9", None, offers=WITHDRAWN)])
    assert isinstance(outcome.error, PermanentError)
    assert outcome.error.error_class == "no_identifier"
    assert hub.total_calls() == 0


def test_nothing_to_write_succeeds_without_a_call(hub: HubSpotEmulator) -> None:
    unproven = DestinationSubject("s4", "dee@example.org", (), (
        ConsentState("offers", Channel.EMAIL, GRANTED, AT, "hubspot", evidence=None),))
    outcomes = connector(hub).apply_consent([subject("s3", "cy@example.org"), unproven])
    assert [(o.error, o.note) for o in outcomes] == [(None, "nothing to write")] * 2
    assert hub.total_calls() == 0


def test_a_full_batch_of_subjects_is_one_call(hub: HubSpotEmulator) -> None:
    hs = connector(hub)
    subjects = [subject(f"s{i}", f"p{i}@example.org", product_news=WITHDRAWN, offers=WITHDRAWN)
                for i in range(hs.batch_size)]
    outcomes = hs.apply_consent(subjects)
    assert hs.batch_size == 50
    assert all(o.error is None for o in outcomes)
    assert hub.total_calls(WRITE) == 1
    assert hub.subscription_status("p49@example.org", 102) == "NOT_SUBSCRIBED"


def test_refused_rows_fail_only_their_subject(hub: HubSpotEmulator) -> None:
    mapping = SystemMapping(system="hubspot", consent=SystemConsent(subscriptions={
        "101": Subscription(purpose="product_news"), "999": Subscription(purpose="offers")}))
    ok, refused = connector(hub, mapping).apply_consent([
        subject("s1", "ada@example.org", product_news=WITHDRAWN),
        subject("s2", "bob@example.org", offers=WITHDRAWN),
    ])
    assert ok.error is None
    assert isinstance(refused.error, PermanentError)
    assert refused.error.error_class == "hubspot_validation"
    assert "999" in str(refused.error) and "bob" not in str(refused.error)
    assert hub.subscription_status("ada@example.org", 101) == "NOT_SUBSCRIBED"


def test_a_rate_limited_call_is_transient_and_waits_one_window(hub: HubSpotEmulator) -> None:
    hub.rate_limit, hub.window_seconds = 0, 2.5
    try:
        with pytest.raises(TransientError) as caught:
            connector(hub).apply_consent([subject("s1", "ada@example.org", offers=WITHDRAWN)])
    finally:
        hub.rate_limit, hub.window_seconds = 100, 10.0
    assert caught.value.retry_after == 2.5
    assert "ada" not in str(caught.value)


def test_a_retry_after_header_wins_over_the_window(hub: HubSpotEmulator) -> None:
    hub.inject(Fault(429, {"errorType": "RATE_LIMIT"}, headers={"Retry-After": "7"}))
    with pytest.raises(TransientError) as caught:
        connector(hub).apply_consent([subject("s1", "ada@example.org", offers=WITHDRAWN)])
    assert caught.value.retry_after == 7.0


def test_a_server_error_is_transient(hub: HubSpotEmulator) -> None:
    hub.inject(Fault(500, {"status": "error"}))
    with pytest.raises(TransientError, match="HTTP 500"):
        connector(hub).apply_consent([subject("s1", "ada@example.org", offers=WITHDRAWN)])
    assert hub.subscription_status("ada@example.org", 102) is None


def test_a_single_bad_gateway_is_absorbed_inside_the_call(hub: HubSpotEmulator) -> None:
    hub.inject(Fault(502, {"status": "error"}))
    [outcome] = connector(hub).apply_consent([subject("s1", "ada@example.org", offers=WITHDRAWN)])
    assert outcome.error is None
    assert hub.subscription_status("ada@example.org", 102) == "NOT_SUBSCRIBED"


def test_a_rejected_token_is_an_auth_error(hub: HubSpotEmulator) -> None:
    with pytest.raises(AuthError):
        connector(hub, token="wrong").apply_consent(
            [subject("s1", "ada@example.org", offers=WITHDRAWN)])


def test_an_unreachable_hubspot_is_a_transient_network_error() -> None:
    hs = HubSpotConnector(base_url="http://127.0.0.1:9", access_token=TOKEN, client_secret="s",
                          mapping=MAPPING, timeout=scaled(1))
    with pytest.raises(TransientError) as caught:
        hs.apply_consent([subject("s1", "ada@example.org", offers=WITHDRAWN)])
    assert caught.value.error_class == "network"


def test_check_passes_against_a_healthy_portal(hub: HubSpotEmulator) -> None:
    connector(hub).check()
    assert hub.total_calls("/communication-preferences/v3/definitions") == 1


def test_check_reports_a_rejected_token_and_unknown_subscriptions(hub: HubSpotEmulator) -> None:
    mapping = SystemMapping(system="hubspot", consent=SystemConsent(
        subscriptions={"555": Subscription(purpose="offers")}))
    with pytest.raises(AuthError):
        connector(hub, token="wrong").check()
    with pytest.raises(PermanentError, match="555") as caught:
        connector(hub, mapping).check()
    assert caught.value.error_class == "hubspot_mapping"


def test_name_is_hubspot(hub: HubSpotEmulator) -> None:
    assert connector(hub).name == "hubspot"


def test_a_withdrawal_reaches_hubspot_spelt_as_v4_spells_it(hub: HubSpotEmulator) -> None:
    """v4's statusState is NOT_SPECIFIED | SUBSCRIBED | UNSUBSCRIBED; v3's NOT_SUBSCRIBED is
    refused there, whole call, as HubSpot refuses a value outside the enum."""
    [outcome] = connector(hub).apply_consent([subject("s1", "ada@example.org",
                                                      offers=WITHDRAWN)])
    read = requests.post(f"{hub.url}/communication-preferences/v4/statuses/batch/read",
                         params={"channel": "EMAIL"}, json={"inputs": ["ada@example.org"]},
                         headers={"Authorization": f"Bearer {TOKEN}"}, timeout=scaled(5))
    assert outcome.error is None and outcome.detail == {"102": "UNSUBSCRIBED"}
    statuses = {s["subscriptionId"]: s["status"] for s in read.json()["results"][0]["statuses"]}
    assert statuses[102] == "UNSUBSCRIBED"


def test_a_status_hubspot_already_holds_is_noted_as_such(hub: HubSpotEmulator) -> None:
    hs = connector(hub)
    hs.apply_consent([subject("s1", "ada@example.org", offers=WITHDRAWN)])
    [again] = hs.apply_consent([subject("s1", "ada@example.org", offers=WITHDRAWN)])
    assert again.error is None
    assert again.note == "wrote 1 subscription status(es), 1 already so"


def test_a_refused_row_says_why_in_hubspots_words(hub: HubSpotEmulator) -> None:
    mapping = SystemMapping(system="hubspot", consent=SystemConsent(subscriptions={
        "999": Subscription(purpose="offers")}))
    [refused] = connector(hub, mapping).apply_consent([
        subject("s2", "bob@example.org", offers=WITHDRAWN)])
    assert isinstance(refused.error, PermanentError)
    assert "OBJECT_NOT_FOUND" in str(refused.error)
