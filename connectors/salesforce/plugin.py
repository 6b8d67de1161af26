"""Salesforce as the app sees it: its settings (``PRIVASYNC_SALESFORCE__*``), how its
connection is built, and the poller the scheduler runs (it sends no webhooks)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, SecretStr
from sqlalchemy.engine import Engine

from connectors.plugin import CheckText, Connection, Context, Plugin, Poll, Scheduled, secret
from connectors.salesforce.connector import SalesforceConnector
from connectors.salesforce.poller import SalesforceCursor
from core import codec, inbox, runtime
from core.crypto import Keyring
from core.mappings import Mappings

CURSOR = "salesforce"
POLL_CHUNK = 500  # events per inbox row


class SalesforceSettings(BaseModel):
    instance_url: str = ""
    session_id: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    security_token: SecretStr | None = None
    domain: str = "login"
    api_version: str = "59.0"
    timeout_seconds: float = 10.0
    poll_interval_seconds: float = 30.0
    # Share of the org's daily API allocation left to everyone else: below it privasync
    # defers its calls until /limits (read every limits_refresh_seconds) says more.
    api_reserve: float = Field(default=0.1, ge=0, lt=1)
    limits_refresh_seconds: float = Field(default=300.0, gt=0)
    # Erasure means erasure: purge what it deletes from the Recycle Bin (emptyRecycleBin).
    hard_delete: bool = True


def enabled(sf: SalesforceSettings) -> bool:
    return bool(sf.instance_url)


def connect(sf: SalesforceSettings, ctx: Context) -> dict[str, Callable[[], Connection]]:
    if not enabled(sf):
        return {}

    def make() -> Connection:
        connector = SalesforceConnector(
            instance_url=sf.instance_url, mapping=ctx.mappings.system("salesforce"),
            session_id=secret(sf.session_id) or None, username=sf.username,
            password=secret(sf.password) or None,
            security_token=secret(sf.security_token) or None, domain=sf.domain,
            version=sf.api_version, timeout=sf.timeout_seconds, hard_delete=sf.hard_delete,
            allowance=ctx.limits.allowance("salesforce", reserve=sf.api_reserve,
                                           refresh_seconds=sf.limits_refresh_seconds))
        return Connection(
            connector, wait=connector.allowance.wait if connector.allowance else None,
            scheduled=[Scheduled("salesforce-poller", sf.poll_interval_seconds,
                                 lambda engine, keyring, wake: salesforce_poller(
                                     engine, keyring, connector, wake))])

    return {"salesforce": make}


def salesforce_poller(engine: Engine, keyring: Keyring, salesforce: SalesforceConnector,
                      wake: Callable[[], None]) -> Poll:
    """One poll: changes since the stored cursor into the inbox, with the new cursor, in
    one transaction (a crash in between polls the same changes again: deduplicated).
    ``wake`` tells an applier in this process that there is work."""

    def poll(now: datetime) -> int:
        stored = runtime.read_cursor(engine, CURSOR)
        cursor = SalesforceCursor.from_json(stored) if stored else None
        result = salesforce.poll(cursor, now)
        events = list(result.events)
        with engine.begin() as conn:
            for start in range(0, len(events), POLL_CHUNK):
                body = codec.encode(events[start:start + POLL_CHUNK])
                inbox.store(conn, source="salesforce", sealed=keyring.seal(body),
                            key=keyring.delivery_key(body), received_at=now,
                            events=len(events[start:start + POLL_CHUNK]))
            runtime.write_cursor(conn, CURSOR, result.cursor.to_json(), now)
        if events:
            wake()
        return len(events)

    return poll


def smoke(sf: SalesforceSettings, mappings: Mappings) -> Any:
    from connectors.salesforce.client import Credentials
    from connectors.salesforce.smoke import SalesforceSmoke

    return SalesforceSmoke(Credentials(
        instance_url=sf.instance_url, session_id=secret(sf.session_id) or None,
        username=sf.username, password=secret(sf.password) or None,
        security_token=secret(sf.security_token) or None, domain=sf.domain,
        version=sf.api_version, timeout=sf.timeout_seconds))


CHECK = CheckText(
    ok=lambda sf, mask: (f"session accepted, API {sf.api_version} served, at "
                         f"{mask(sf.instance_url)}"),
    credentials="PRIVASYNC_SALESFORCE__SESSION_ID or __USERNAME/__PASSWORD/__SECURITY_TOKEN",
    address="PRIVASYNC_SALESFORCE__INSTANCE_URL",
    fixes={
        "salesforce_version": "set PRIVASYNC_SALESFORCE__API_VERSION to one the org serves",
        "salesforce_permissions": "grant them to the integration user's profile or a "
                                  "permission set (Object Settings: object and field access; "
                                  "System Permissions: Bulk API Hard Delete)",
        "api_reserve": "they go on by themselves as the org's rolling 24-hour allocation "
                       "frees; to go sooner, raise it (licences or an API add-on) or lower "
                       "PRIVASYNC_SALESFORCE__API_RESERVE",
    })

PLUGIN: Plugin[SalesforceSettings] = Plugin(
    name="salesforce", settings=SalesforceSettings, connect=connect, enabled=enabled,
    enabled_by="PRIVASYNC_SALESFORCE__INSTANCE_URL", check=CHECK, smoke=smoke)
