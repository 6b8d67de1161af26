"""Data minimisation end to end: fields reach only destinations with a purpose for them."""

from __future__ import annotations

from datetime import UTC, datetime

import requests

from core.model import (
    Channel,
    ConsentChange,
    ConsentChanged,
    ConsentStatus,
    EventMeta,
    Evidence,
    SubjectHint,
)
from privasync.demo.stack import Stack
from tests.e2e.conftest import applied, seed, settle, subject_of, wait_for
from tests.timing import scaled

EMAIL = "noor.jansen@example.nl"


def dropped(stack: Stack, destination: str, reason: str) -> float:
    text = requests.get(f"{stack.url}/metrics", timeout=scaled(10)).text
    series = (f'privasync_fields_dropped_total{{destination="{destination}",'
              f'reason="{reason}"}} ')
    line = next((ln for ln in text.splitlines() if ln.startswith(series)), None)
    return float(line.rsplit(" ", 1)[1]) if line else 0.0


def hubspot_property(stack: Stack, contact: str, name: str) -> str | None:
    return (stack.emulators.hubspot.contact(contact) or {}).get(name) or None


def test_a_date_of_birth_kept_for_the_age_check_never_reaches_mailchimp(stack: Stack):
    contact = seed(stack, EMAIL)
    sf = stack.emulators.salesforce
    sf.ui_edit(sf.find_by_email(EMAIL)[0], Birthdate="1990-04-01")
    wait_for("date of birth in HubSpot (it serves the age check)",
             lambda: hubspot_property(stack, contact, "date_of_birth") == "1990-04-01")
    wait_for("the drop counted", lambda: dropped(stack, "mailchimp", "no_shared_purpose") >= 1)
    settle(stack)
    member = stack.emulators.mailchimp.member(EMAIL) or {}
    assert not (member.get("merge_fields") or {}).get("BIRTHDAY")
    held = stack.emulators.partner.state(subject_of(stack, EMAIL) or "") or {}
    assert "date_of_birth" not in held.get("fields", {})


def _grant(stack: Stack, purpose: str, minute: int) -> None:
    """An evidenced opt-in, as a consent form would record it."""
    stack.container.store_events("web_form", [ConsentChanged(
        EventMeta("web_form", f"form-{purpose}-{minute}", datetime.now(UTC)),
        SubjectHint(email=EMAIL), (ConsentChange(purpose, Channel.EMAIL,
                                                 ConsentStatus.GRANTED),),
        Evidence("web_form", "double_opt_in", "privacy-form-v3", f"submission-{minute}"))],
        datetime.now(UTC))
    applied(stack)


def test_a_health_note_never_leaves_the_crm_without_explicit_consent(stack: Stack):
    contact = seed(stack, EMAIL)
    sf = stack.emulators.salesforce
    record = sf.find_by_email(EMAIL)[0]
    sf.ui_edit(record, Customer_Since__c="2024-02-01", Health_Note__c="allergic to latex")
    wait_for("customer status reached HubSpot", lambda: hubspot_property(
        stack, contact, "hs_lifecyclestage_customer_date") == "2024-02-01")
    wait_for("the drop counted", lambda: dropped(
        stack, "hubspot", "special_category_without_explicit_consent") >= 1)
    assert hubspot_property(stack, contact, "health_note") is None

    _grant(stack, "service", 1)
    sf.ui_edit(record, Health_Note__c="allergic to latex and nuts")
    wait_for("health note in HubSpot after explicit consent", lambda: hubspot_property(
        stack, contact, "health_note") == "allergic to latex and nuts")
    member = stack.emulators.mailchimp.member(EMAIL) or {}
    assert "latex" not in repr(member)


def test_withdrawing_offers_stops_offer_fields_to_the_partner_and_tells_it(stack: Stack):
    contact = seed(stack, EMAIL)
    hubspot = stack.emulators.hubspot
    stack.emulators.mailchimp.user_subscribe(EMAIL)  # evidenced double opt-in
    wait_for("subscription recorded", lambda: subject_of(stack, EMAIL) is not None)
    settle(stack)
    hubspot.ui_set_property(contact, "product_interests", "espresso machines")

    def partner_fields() -> dict[str, str]:
        held = stack.emulators.partner.state(subject_of(stack, EMAIL) or "") or {}
        return held.get("fields", {})

    wait_for("interests at the partner", lambda: partner_fields().get(
        "product_interests") == "espresso machines")
    hubspot.ui_set_subscription(contact, 102, False)  # the person withdraws "offers"

    def offers_withdrawn_at_partner() -> bool:
        held = stack.emulators.partner.state(subject_of(stack, EMAIL) or "") or {}
        return held.get("consents", {}).get("offers/email", {}).get("status") == "withdrawn"

    wait_for("partner told of the withdrawal", offers_withdrawn_at_partner)
    hubspot.ui_set_property(contact, "product_interests", "grinders")
    wait_for("the drop counted", lambda: dropped(
        stack, "partner:contact_centre", "consent_withdrawn") >= 1)
    settle(stack)
    assert partner_fields().get("product_interests") == "espresso machines"
