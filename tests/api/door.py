"""The front door alone: the real app (``create_app``) over a real database, with every
webhook source configured (HubSpot, Mailchimp, the signing partner, an OpenDSR processor)
and the admin API, but no emulators and nothing running behind it, so that what a request
stored is exactly what is in the database. Senders sign as the vendors do, with their
own code (hubspot-api-client's ``Signature``, the partner emulator's signer, the OpenDSR
test authority)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr
from sqlalchemy import func, select

with warnings.catch_warnings():  # starlette suggests httpx2; httpx is what the tests have
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from connectors.hubspot.plugin import HubSpotSettings
from connectors.mailchimp.plugin import MailchimpSettings
from core import tokens
from core.db import api_tokens, events, inbox, ledger_pending, requests, subjects
from privasync.app.bootstrap import Container, build
from privasync.app.settings import Settings
from privasync.emulators.opendsr.authority import TestAuthority, pem, sign
from privasync.emulators.partner.signature import signed_headers
from privasync.web.app import create_app

MAPPINGS = Path(__file__).parents[2] / "mappings"
HUBSPOT_SECRET = "door-hubspot-client-secret"
MAILCHIMP_TOKEN = "door-mailchimp-token-1f2e3d"
PARTNER_SECRET = "door-partner-secret"
LIST_ID = "door-list-1"
OPENDSR_DOMAIN = "opendsr.door.test"
CONTROLLER = "door-controller"
BASE = "http://testserver"
HUBSPOT = "/webhooks/hubspot"
MAILCHIMP = f"/webhooks/mailchimp/{MAILCHIMP_TOKEN}"
ACKS = "/webhooks/partners/contact_centre/ack"
ASKS = "/webhooks/partners/contact_centre/requests"
OPENDSR = "/webhooks/partners/analytics/opendsr"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSON = {"Content-Type": "application/json"}

_OPENDSR_PARTNER = f"""
  analytics:
    description: An OpenDSR processor, for the ingress tests
    protocol: opendsr
    url: https://{OPENDSR_DOMAIN}
    certificate_setting: PRIVASYNC_PARTNER_ANALYTICS_CERTIFICATE
    controller_id: "{CONTROLLER}"
    secret_setting: PRIVASYNC_PARTNER_ANALYTICS_API_KEY
    purposes: [product_news]
    agreement: DPA-TEST (for the tests)
    identifiers: [email]
    ack_within: 30d
"""


@cache
def processor() -> tuple[rsa.RSAPrivateKey, str]:
    """The OpenDSR processor's signing key and its CA-issued certificate (made once)."""
    now = datetime.now(UTC)
    key, certificate = TestAuthority().issue(OPENDSR_DOMAIN, now - timedelta(days=1),
                                             now + timedelta(days=30))
    return key, pem(certificate)


def hubspot_signature(body: bytes, url: str, timestamp: str) -> str:
    """v3 over the raw bytes (hubspot-api-client's helper takes text, which cannot carry
    invalid UTF-8; this is its formula, VENDOR_APIS.md A1)."""
    source = b"POST" + url.encode() + body + timestamp.encode()
    mac = hmac.new(HUBSPOT_SECRET.encode(), source, hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def hubspot_event(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "eventId": 1, "subscriptionId": 9, "portalId": 62515, "appId": 54321,
        "occurredAt": int(time.time() * 1000), "subscriptionType": "contact.propertyChange",
        "attemptNumber": 0, "objectId": 1001, "propertyName": "hs_email_optout",
        "propertyValue": "true", "changeSource": "CRM_UI"}
    return base | over


def ack(**over: Any) -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "request_id": str(uuid.uuid4()),
            "status": "completed", "detail": "erased"} | over


def ask(**over: Any) -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "request_id": str(uuid.uuid4()), "kind": "erasure",
            "email": "door.person@example.org"} | over


def callback(**over: Any) -> dict[str, Any]:
    return {"controller_id": CONTROLLER, "status_callback_url": BASE + OPENDSR,
            "subject_request_id": str(uuid.uuid4()), "request_status": "completed",
            "api_version": "2.0"} | over


def mailchimp_form(**over: str) -> dict[str, str]:
    return {"type": "unsubscribe", "fired_at": "2026-01-01 10:00:00",
            "data[list_id]": LIST_ID, "data[email]": "door.person@example.org"} | over


@dataclass
class Door:
    container: Container
    client: TestClient

    # -- senders --------------------------------------------------------------------
    def hubspot(self, body: bytes, *, at_ms: int | None = None,
                headers: dict[str, str] | None = None) -> httpx.Response:
        stamp = str(at_ms if at_ms is not None else int(time.time() * 1000))
        signed = {"X-HubSpot-Signature-v3": hubspot_signature(body, BASE + HUBSPOT, stamp),
                  "X-HubSpot-Request-Timestamp": stamp, **JSON}
        return self.client.post(HUBSPOT, content=body, headers=signed | (headers or {}))

    def partner(self, path: str, document: dict[str, Any] | bytes, *,
                secret: str = PARTNER_SECRET, at: float | None = None,
                event_id: str | None = None,
                headers: dict[str, str] | None = None) -> httpx.Response:
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        if event_id is None:
            event_id = str(document.get("event_id", "")) if isinstance(document, dict) else ""
        signed = signed_headers(secret, event_id, body, time.time() if at is None else at)
        return self.client.post(path, content=body, headers=signed | (headers or {}))

    def opendsr(self, document: dict[str, Any] | bytes,
                headers: dict[str, str] | None = None) -> httpx.Response:
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        key, _ = processor()
        signed = {"X-OpenDSR-Processor-Domain": OPENDSR_DOMAIN,
                  "X-OpenDSR-Signature": sign(key, body), **JSON}
        return self.client.post(OPENDSR, content=body, headers=signed | (headers or {}))

    def mailchimp(self, body: bytes | dict[str, str], *, token: str = MAILCHIMP_TOKEN,
                  headers: dict[str, str] | None = None) -> httpx.Response:
        from urllib.parse import urlencode

        content = body if isinstance(body, bytes) else urlencode(body).encode()
        return self.client.post(f"/webhooks/mailchimp/{token}", content=content,
                                headers=FORM | (headers or {}))

    def token(self, *scopes: str, name: str | None = None) -> str:
        c = self.container
        with c.engine.begin() as conn:
            return tokens.create(conn, c.keyring, name or f"t{uuid.uuid4().hex[:8]}",
                                 scopes or tokens.SCOPES, c.clock(), actor="cli")

    # -- what is stored -------------------------------------------------------------
    def rows(self) -> tuple[int, ...]:
        """Rows of every table a request at the door could write."""
        with self.container.engine.connect() as conn:
            return tuple(int(conn.execute(select(func.count()).select_from(t)).scalar_one())
                         for t in (inbox, events, subjects, requests, api_tokens,
                                   ledger_pending))


def door_settings(database_url: str, tmp_path: Path, **over: Any) -> Settings:
    mappings = tmp_path / "mappings"
    if not mappings.exists():
        shutil.copytree(MAPPINGS, mappings)
        with (mappings / "partners.yaml").open("a") as partners:
            partners.write(_OPENDSR_PARTNER)
    return Settings(**{
        "database_url": database_url, "var_dir": tmp_path, "mappings_dir": mappings,
        "public_url": BASE, "secret_key": SecretStr("door-secret-key-0123456789abcdef"),
        "hubspot": HubSpotSettings(base_url="http://127.0.0.1:9",
                                   client_secret=SecretStr(HUBSPOT_SECRET)),
        "mailchimp": MailchimpSettings(base_url="http://127.0.0.1:9/3.0",
                                       api_key=SecretStr("door-key-us1"), list_id=LIST_ID,
                                       webhook_token=SecretStr(MAILCHIMP_TOKEN)),
    } | over)


def door_environ() -> dict[str, str]:
    return {"PRIVASYNC_PARTNER_CONTACT_CENTRE_SECRET": PARTNER_SECRET,
            "PRIVASYNC_PARTNER_ANALYTICS_CERTIFICATE": processor()[1]}


def open_door(database_url: str, tmp_path: Path, **over: Any) -> Iterator[Door]:
    container = build(door_settings(database_url, tmp_path, **over), environ=door_environ())
    try:
        with TestClient(create_app(container), base_url=BASE,
                        raise_server_exceptions=False) as client:
            yield Door(container, client)
    finally:
        container.close()
