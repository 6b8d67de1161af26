"""Mailchimp as the app sees it: its settings (``PRIVASYNC_MAILCHIMP__*``), how its
connection is built, the directory refresh the scheduler runs, and the webhook it receives
on ``/webhooks/mailchimp/{token}`` (Mailchimp signs nothing: the secret token in the URL
authenticates it)."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field, SecretStr

from connectors.mailchimp.connector import MailchimpConnector
from connectors.mailchimp.webhooks import MAX_BODY_BYTES
from connectors.plugin import (
    CheckText,
    Connection,
    Context,
    Delivery,
    Intake,
    Plugin,
    Route,
    Scheduled,
    secret,
)
from core import directory, inbox
from core.errors import ConfigError, Unauthenticated
from core.mappings import Mappings


class MailchimpSettings(BaseModel):
    base_url: str = ""
    api_key: SecretStr | None = None
    list_id: str = ""
    webhook_token: SecretStr | None = None
    timeout_seconds: float = 10.0
    directory_refresh_seconds: float = Field(default=21600.0, ge=0)
    max_connections: int = Field(default=10, ge=1)  # simultaneous connections per API key


def enabled(mc: MailchimpSettings) -> bool:
    return mc.api_key is not None and bool(mc.list_id)


def connect(mc: MailchimpSettings, ctx: Context) -> dict[str, Callable[[], Connection]]:
    if not enabled(mc):
        return {}

    def make() -> Connection:
        connector = MailchimpConnector(
            base_url=mc.base_url, api_key=secret(mc.api_key), list_id=mc.list_id,
            mapping=ctx.mappings.system("mailchimp"), keys=ctx.keyring,
            timeout=mc.timeout_seconds,
            connections=ctx.limits.connections("mailchimp", limit=mc.max_connections,
                                               ttl_seconds=3 * mc.timeout_seconds + 5),
            # With webhooks configured, `privasync check` looks for the list's webhook to it.
            intake_path=f"/webhooks/mailchimp/{secret(mc.webhook_token)}"
            if mc.webhook_token is not None else "",
            # Who a complete read did not find is taken as absent for two refresh periods
            # (one refresh may fail), each time with the list's changes since (membership.py).
            directory_max_age=2 * mc.directory_refresh_seconds)
        # Read the list in bulk (a call per page, not per person) into the directory: its
        # members, then its archived contacts.
        scheduled = [Scheduled(
            "mailchimp-directory", mc.directory_refresh_seconds,
            lambda engine, keyring, wake: lambda now: directory.refresh(
                engine, keyring, "mailchimp", connector.addresses(), now,
                kept=connector.kept()))
        ] if mc.directory_refresh_seconds else []
        return Connection(connector, parser=connector.parse_webhook, scheduled=scheduled)

    return {"mailchimp": make}


def routes(mc: MailchimpSettings, built: Mapping[str, Connection]) -> Sequence[Route]:
    found = built.get("mailchimp")
    mailchimp: MailchimpConnector | None = found.connector if found is not None else None

    def check_token(params: Mapping[str, str]) -> None:
        expected = mc.webhook_token
        if mailchimp is None or expected is None:
            raise ConfigError("Mailchimp webhooks are not configured "
                              "(PRIVASYNC_MAILCHIMP__WEBHOOK_TOKEN)")
        if not hmac.compare_digest(params["token"].encode(),
                                   expected.get_secret_value().encode()):
            raise Unauthenticated("unknown webhook token")

    def receive(intake: Intake, delivery: Delivery) -> inbox.Stored:
        check_token(delivery.params)
        assert mailchimp is not None
        with intake.serving():
            events = mailchimp.parse_webhook(delivery.body, delivery.now)
            return intake.store("mailchimp", delivery.body, delivery.now, len(events))

    # GET and HEAD: Mailchimp checks the URL answers before it saves the webhook.
    return [Route("/webhooks/mailchimp/{token}", ("GET", "HEAD", "POST"), "mailchimp",
                  receive, media_type="application/x-www-form-urlencoded",
                  max_body_bytes=MAX_BODY_BYTES, admit=check_token, probe=("GET", "HEAD"))]


def smoke(mc: MailchimpSettings, mappings: Mappings) -> Any:
    from connectors.mailchimp.smoke import MailchimpSmoke

    return MailchimpSmoke(base_url=mc.base_url, api_key=secret(mc.api_key),
                          list_id=mc.list_id, timeout=mc.timeout_seconds)


CHECK = CheckText(
    ok=lambda mc, mask: f"key accepted, audience {mc.list_id} found",
    credentials="PRIVASYNC_MAILCHIMP__API_KEY",
    address="PRIVASYNC_MAILCHIMP__BASE_URL (or the key's data centre)",
    fixes={
        "mailchimp_list": "set PRIVASYNC_MAILCHIMP__LIST_ID to the audience's id (Audience > "
                          "Settings > Audience name and defaults)",
        "mailchimp_webhook": "add or edit the audience's webhook (Audience > Settings > "
                             "Webhooks) to PRIVASYNC_PUBLIC_URL/webhooks/mailchimp/ followed "
                             "by PRIVASYNC_MAILCHIMP__WEBHOOK_TOKEN, with those events and "
                             "sources",
    })

PLUGIN: Plugin[MailchimpSettings] = Plugin(
    name="mailchimp", settings=MailchimpSettings, connect=connect, routes=routes,
    enabled=enabled, enabled_by="PRIVASYNC_MAILCHIMP__API_KEY and PRIVASYNC_MAILCHIMP__LIST_ID",
    check=CHECK, smoke=smoke)
