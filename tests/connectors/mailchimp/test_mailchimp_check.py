"""``check`` names what the configured features need in Mailchimp: a key that works, the
audience, and the audience's webhook to privasync's intake with the events and sources
each feature needs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.mailchimp import MailchimpConnector
from core.errors import AuthError, PermanentError
from core.mappings import SystemMapping
from privasync.emulators.http import Emulator, Response
from privasync.emulators.mailchimp import EVENTS, MailchimpEmulator
from tests.connectors.mailchimp.conftest import CONSENT_ONLY, KEY, KEYS, LIST, WITH_FIELDS
from tests.timing import scaled

TOKEN = "intake-token-0123"  # noqa: S105 - a test's, not a real secret
INTAKE = f"/webhooks/mailchimp/{TOKEN}"


@pytest.fixture(scope="module")
def intake() -> Iterator[str]:
    """privasync's intake as Mailchimp's validation GET reaches it; yields its base URL."""
    receiver = Emulator()
    receiver.route("GET", r"/.*", lambda request, match: Response(200))
    receiver.start()
    yield receiver.url
    receiver.stop()


def checking(mc: MailchimpEmulator, mapping: SystemMapping = CONSENT_ONLY,
             key: str = KEY, intake_path: str = INTAKE) -> MailchimpConnector:
    return MailchimpConnector(base_url=f"{mc.url}/3.0", api_key=key, list_id=LIST,
                              mapping=mapping, keys=KEYS, timeout=scaled(5),
                              intake_path=intake_path)


def test_a_webhook_to_the_intake_with_every_event_passes(mc: MailchimpEmulator,
                                                         intake: str) -> None:
    mc.configure_webhook(f"{intake}{INTAKE}", sources=("user", "admin"))
    checking(mc, WITH_FIELDS).check()


def test_no_webhook_to_the_intake_is_named_without_its_token(mc: MailchimpEmulator,
                                                             intake: str) -> None:
    mc.configure_webhook(f"{intake}/webhooks/mailchimp/another-token")
    with pytest.raises(PermanentError) as refused:
        checking(mc).check()
    assert refused.value.error_class == "mailchimp_webhook"
    assert "no webhook to privasync's intake" in str(refused.value)
    assert TOKEN not in str(refused.value) and "another-token" not in str(refused.value)


def test_the_events_and_sources_a_feature_needs_are_named_when_missing(
        mc: MailchimpEmulator, intake: str) -> None:
    mc.configure_webhook(f"{intake}{INTAKE}", sources=("user", "api"),
                         events=EVENTS - {"sms_unsubscribe", "profile", "upemail"})
    with pytest.raises(PermanentError) as refused:
        checking(mc, WITH_FIELDS).check()
    said = str(refused.value)
    assert refused.value.error_class == "mailchimp_webhook"
    assert said.endswith("lacks event profile, event sms_unsubscribe, event upemail, "
                         "source admin")
    assert TOKEN not in said


def test_profile_updates_are_needed_only_when_merge_fields_are_mapped(
        mc: MailchimpEmulator, intake: str) -> None:
    mc.configure_webhook(f"{intake}{INTAKE}", events=EVENTS - {"profile"})
    checking(mc, CONSENT_ONLY).check()
    assert "profile" not in checking(mc, CONSENT_ONLY).needed_events()
    assert "profile" in checking(mc, WITH_FIELDS).needed_events()
    assert {"unsubscribe", "sms_unsubscribe", "cleaned", "upemail"} <= set(
        checking(mc, CONSENT_ONLY).needed_events())


def test_without_webhooks_configured_no_webhook_is_asked_for(mc: MailchimpEmulator) -> None:
    checking(mc, intake_path="").check()
    assert mc.total_calls("/3.0/lists/a6b5da1054/webhooks") == 0


def test_a_wrong_key_or_audience_fails_before_the_webhook_is_looked_at(
        mc: MailchimpEmulator) -> None:
    with pytest.raises(AuthError):
        checking(mc, key="wrong-us6").check()
    with pytest.raises(PermanentError) as missing:
        MailchimpConnector(base_url=f"{mc.url}/3.0", api_key=KEY, list_id="nosuchlist",
                           mapping=CONSENT_ONLY, keys=KEYS, intake_path=INTAKE).check()
    assert missing.value.error_class == "mailchimp_list"
