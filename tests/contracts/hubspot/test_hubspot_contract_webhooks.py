"""The webhook deliveries privasync receives from HubSpot, as the emulator sends them: every
event held to privasync.emulators.contracts.hubspot.webhooks, the v3 signature checked with the
official library and with privasync's verifier, and the batch parsed by the connector."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from hubspot.utils.signature import Signature

from connectors.hubspot import HubSpotConnector
from core.mappings import SystemMapping
from privasync.emulators.contracts.hubspot.webhooks import (
    LEGACY_SIGNATURE_HEADER,
    SIGNATURE_V3_HEADER,
    TIMESTAMP_HEADER,
    VERSION_HEADER,
    WebhookDelivery,
)
from privasync.emulators.hubspot import DEFAULT_WEBHOOK_SUBSCRIPTIONS, HubSpotEmulator
from tests.contracts.hubspot.conftest import SECRET, TOKEN

MAPPING = SystemMapping.model_validate(
    yaml.safe_load((Path(__file__).parents[3] / "mappings" / "hubspot.yaml").read_text()))
Delivery = tuple[str, dict[str, str], bytes]


@pytest.fixture
def deliveries() -> Iterator[tuple[str, list[Delivery]]]:
    """A webhook endpoint on loopback that records each POST and answers 200."""
    got: list[Delivery] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append((self.path, dict(self.headers), body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                     daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/webhooks/hubspot?x=1", got
    server.shutdown()
    server.server_close()


def test_every_event_type_privasync_subscribes_to_arrives_as_documented(
        hub: HubSpotEmulator, deliveries: tuple[str, list[Delivery]]) -> None:
    url, got = deliveries
    hub.configure_webhooks(url, DEFAULT_WEBHOOK_SUBSCRIPTIONS)
    ada = hub.create_contact("ada@example.org")
    ada_too = hub.create_contact("ada.l@example.org")
    hub.ui_set_subscription(ada, 102, False)
    hub.ui_unsubscribe_all(ada)
    hub.ui_merge(ada, ada_too)
    hub.ui_delete(ada)
    bob = hub.create_contact("bob@example.org")
    hub.ui_gdpr_delete(bob)
    hub.flush_webhooks()

    events = [e for _, _, body in got
              for e in WebhookDelivery(events=json.loads(body)).events]
    kinds = {e.subscriptionType for e in events}
    assert kinds == {"contact.creation", "contact.propertyChange", "contact.merge",
                     "contact.deletion", "contact.privacyDeletion"}
    merge = next(e for e in events if e.subscriptionType == "contact.merge")
    assert (merge.primaryObjectId, merge.mergedObjectIds) == (int(ada), [int(ada_too)])
    assert {e.propertyValue for e in events if e.propertyName == "hs_email_optout_102"} == {"true"}


def test_each_delivery_is_signed_v3_and_v1_and_verifies(
        hub: HubSpotEmulator, deliveries: tuple[str, list[Delivery]]) -> None:
    url, got = deliveries
    hub.configure_webhooks(url)
    hub.create_contact("ada@example.org")
    hub.flush_webhooks()
    [(_, headers, body)] = got
    connector = HubSpotConnector(base_url=hub.url, access_token=TOKEN, client_secret=SECRET,
                                 mapping=MAPPING)

    assert headers[VERSION_HEADER] == "v1"
    assert Signature.is_valid(signature=headers[LEGACY_SIGNATURE_HEADER], client_secret=SECRET,
                              request_body=body.decode(), signature_version="v1")
    assert Signature.is_valid(signature=headers[SIGNATURE_V3_HEADER], client_secret=SECRET,
                              request_body=body.decode(), http_uri=url, http_method="POST",
                              signature_version="v3", timestamp=headers[TIMESTAMP_HEADER])
    connector.verify_signature(method="POST", url=url, body=body, headers=headers,
                               now=datetime.now(UTC))
    [event] = connector.parse_events(body)
    assert event.meta.kind == "contact.creation"
