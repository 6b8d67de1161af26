"""HubSpot as the app sees it: its settings (``PRIVASYNC_HUBSPOT__*``), how its connection
is built, and the signed webhook it receives on ``/webhooks/hubspot``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field, SecretStr

from connectors.hubspot import limits
from connectors.hubspot.connector import HubSpotConnector
from connectors.plugin import (
    CheckText,
    Connection,
    Context,
    Delivery,
    Intake,
    Plugin,
    Route,
    secret,
)
from core import inbox
from core.errors import ConfigError
from core.mappings import Mappings


class HubSpotSettings(BaseModel):
    base_url: str = "https://api.hubapi.com"
    access_token: SecretStr | None = None
    client_secret: SecretStr | None = None
    timeout_seconds: float = 10.0
    # The app's rolling 10-second limit: 100 for private apps on Free/Starter, 190 on
    # Professional, 110 for public apps; HubSpot's own headers lower it if they say less.
    requests_per_10s: int = Field(default=100, ge=1)
    # v1/v2 are unkeyed SHA-256 with no timestamp: a captured delivery stays valid forever.
    allow_legacy_signatures: bool = False


def enabled(hs: HubSpotSettings) -> bool:
    """A token to deliver with, or only the app's secret to take webhooks."""
    return hs.access_token is not None or hs.client_secret is not None


def delivers(hs: HubSpotSettings) -> bool:
    """Configured only to receive webhooks (no token), HubSpot is not a destination."""
    return hs.access_token is not None


def connect(hs: HubSpotSettings, ctx: Context) -> dict[str, Callable[[], Connection]]:
    if not enabled(hs):
        return {}

    def make() -> Connection:
        connector = HubSpotConnector(
            base_url=hs.base_url, access_token=secret(hs.access_token),
            client_secret=secret(hs.client_secret) or None,
            mapping=ctx.mappings.system("hubspot"), timeout=hs.timeout_seconds,
            window=ctx.limits.window("hubspot", limit=hs.requests_per_10s,
                                     seconds=limits.WINDOW_SECONDS,
                                     hold_seconds=limits.hold_seconds(hs.timeout_seconds)),
            allow_legacy_signatures=hs.allow_legacy_signatures)
        return Connection(connector, destination=delivers(hs), parser=connector.parse,
                          resolver=connector if delivers(hs) else None,
                          wait=connector.window.wait)

    return {"hubspot": make}


def routes(hs: HubSpotSettings, built: Mapping[str, Connection]) -> Sequence[Route]:
    found = built.get("hubspot")
    hubspot: HubSpotConnector | None = found.connector if found is not None else None

    def receive(intake: Intake, delivery: Delivery) -> inbox.Stored:
        """Verify HubSpot's v3 signature, validate the batch, store it.

        HubSpot's own retries carry a new ``attemptNumber``, so bytes stored before that
        come again are a replay (within the five-minute signature window; after it the
        timestamp is refused): answered 2xx without effect, counted as ``replayed``."""
        if hubspot is None:
            raise ConfigError("HubSpot is not configured (PRIVASYNC_HUBSPOT__CLIENT_SECRET)")
        with intake.serving():
            hubspot.verify_signature(method=delivery.method, url=delivery.url,
                                     body=delivery.body, headers=delivery.headers,
                                     now=delivery.now)
            return intake.store("hubspot", delivery.body, delivery.now,
                                hubspot.validate(delivery.body), again="replayed")

    return [Route("/webhooks/hubspot", ("POST",), "hubspot", receive)]


def smoke(hs: HubSpotSettings, mappings: Mappings) -> Any:
    from connectors.hubspot.smoke import HubSpotSmoke

    subscriptions = list(mappings.system("hubspot").consent.subscriptions)
    if not subscriptions:
        raise ConfigError("mappings/hubspot.yaml maps no subscription type (consent."
                          "subscriptions): the smoke has nothing to subscribe to")
    return HubSpotSmoke(base_url=hs.base_url, access_token=secret(hs.access_token),
                        timeout=hs.timeout_seconds, subscriptions=subscriptions)


CHECK = CheckText(
    ok=lambda hs, mask: f"token accepted, scopes sufficient, at {mask(hs.base_url)}",
    credentials="PRIVASYNC_HUBSPOT__ACCESS_TOKEN",
    address="PRIVASYNC_HUBSPOT__BASE_URL",
    idle="webhooks only (no access token, so not a destination): nothing to try",
    fixes={
        "hubspot_scopes": "add them to the private app (Settings > Integrations > Private "
                          "Apps > Scopes) and set the new token in "
                          "PRIVASYNC_HUBSPOT__ACCESS_TOKEN",
        "hubspot_mapping": "fix consent.subscriptions in hubspot.yaml to the portal's ids",
        "hubspot_properties": "fix fields in hubspot.yaml to the portal's contact property "
                              "names (Settings > Properties), or create them; never map a "
                              "read-only one",
    })

PLUGIN: Plugin[HubSpotSettings] = Plugin(
    name="hubspot", settings=HubSpotSettings, connect=connect, routes=routes,
    enabled=enabled, delivers=delivers,
    enabled_by="PRIVASYNC_HUBSPOT__ACCESS_TOKEN, or only __CLIENT_SECRET to take webhooks",
    check=CHECK, smoke=smoke)
