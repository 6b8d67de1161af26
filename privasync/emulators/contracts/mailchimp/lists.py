"""The audience itself, its webhooks and the API's ping.

Sources: see ``common`` ([S1] 3.0.55 definitions, [S2] the 2026-04-30 definition).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from privasync.emulators.contracts.mailchimp.common import Closed, Link

# [S2] AddWebhook.Events: the six list events and, since 2026-04-30, four SMS ones [BETA].
EVENT_TYPES: tuple[str, ...] = ("subscribe", "unsubscribe", "profile", "cleaned", "upemail",
                                "campaign", "sms_subscribe", "sms_unsubscribe", "upsms",
                                "sms_campaign")
EventType = Literal["subscribe", "unsubscribe", "profile", "cleaned", "upemail", "campaign",
                    "sms_subscribe", "sms_unsubscribe", "upsms", "sms_campaign"]
# [S1]/[S2] AddWebhook.Sources.
SOURCE_TYPES: tuple[str, ...] = ("user", "admin", "api")


class Ping(Closed):
    """GET /ping: [S1] "API health status"."""

    health_status: str


class ListStats(Closed):
    """[S1] "Statistics" of a list (the counts the emulator keeps, all optional)."""

    member_count: int | None = None
    total_contacts: int | None = None
    unsubscribe_count: int | None = None
    cleaned_count: int | None = None
    member_count_since_send: int | None = None
    unsubscribe_count_since_send: int | None = None
    cleaned_count_since_send: int | None = None
    campaign_count: int | None = None
    campaign_last_sent: str | None = None
    merge_field_count: int | None = None
    avg_sub_rate: float | None = None
    avg_unsub_rate: float | None = None
    target_sub_rate: float | None = None
    open_rate: float | None = None
    click_rate: float | None = None
    last_sub_date: str | None = None
    last_unsub_date: str | None = None


class AudienceList(Closed):
    """GET /lists/{list_id}: [S1] "Subscriber List" (what privasync reads: its id)."""

    id: str | None = None
    web_id: int | None = None
    name: str | None = None
    contact: dict[str, Any] | None = None
    permission_reminder: str | None = None
    use_archive_bar: bool | None = None
    campaign_defaults: dict[str, Any] | None = None
    notify_on_subscribe: str | None = None
    notify_on_unsubscribe: str | None = None
    date_created: str | None = None
    list_rating: int | None = None
    email_type_option: bool | None = None
    subscribe_url_short: str | None = None
    subscribe_url_long: str | None = None
    beamer_address: str | None = None
    visibility: Literal["pub", "prv"] | None = None
    double_optin: bool | None = None
    has_welcome: bool | None = None
    marketing_permissions: bool | None = None
    modules: list[str] | None = None
    stats: ListStats | None = None
    links: list[Link] | None = Field(default=None, alias="_links")


class WebhookEvents(Closed):
    """[S2] AddWebhook.Events / ListWebhooks.Events."""

    subscribe: bool | None = None
    unsubscribe: bool | None = None
    profile: bool | None = None
    cleaned: bool | None = None
    upemail: bool | None = None
    campaign: bool | None = None
    sms_subscribe: bool | None = None
    sms_unsubscribe: bool | None = None
    upsms: bool | None = None
    sms_campaign: bool | None = None


class WebhookSources(Closed):
    """[S1]/[S2] Sources."""

    user: bool | None = None
    admin: bool | None = None
    api: bool | None = None


class AddWebhook(Closed):
    """POST /lists/{list_id}/webhooks: [S1]/[S2] "Add Webhook". The schema requires nothing;
    a webhook without a URL is refused (documentation: the URL is validated by a GET)."""

    url: str | None = None
    events: WebhookEvents | None = None
    sources: WebhookSources | None = None


class Webhook(Closed):
    """[S2] ListWebhooks: one webhook as answered (``signing_*`` are [S2]'s, 2026)."""

    id: str | None = None
    url: str | None = None
    events: WebhookEvents | None = None
    sources: WebhookSources | None = None
    list_id: str | None = None
    signing_enabled: bool | None = None
    signing_secret: str | None = None
    links: list[Link] | None = Field(default=None, alias="_links")


class WebhookList(Closed):
    """GET /lists/{list_id}/webhooks: [S1] "List Webhooks" (the collection)."""

    webhooks: list[Webhook] | None = None
    list_id: str | None = None
    total_items: int | None = None
    links: list[Link] | None = Field(default=None, alias="_links")
