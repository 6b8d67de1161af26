"""HubSpot's webhooks: signature v3, the batching sender thread, and emitting events."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import queue
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import requests

from privasync.emulators.contracts.hubspot.webhooks import (
    LEGACY_SIGNATURE_HEADER,
    SIGNATURE_V3_HEADER,
    TIMESTAMP_HEADER,
    VERSION_HEADER,
    WebhookEvent,
)
from privasync.emulators.http import Emulator
from privasync.emulators.hubspot.common import BATCH_LIMIT, _now_ms

DEFAULT_WEBHOOK_SUBSCRIPTIONS: tuple[str, ...] = (
    "contact.creation", "contact.deletion", "contact.privacyDeletion", "contact.merge",
    "contact.propertyChange:hs_email_optout",
    "contact.propertyChange:hs_email_optout_101", "contact.propertyChange:hs_email_optout_102",
)
# HubSpot signs the URI with these characters decoded (VENDOR_APIS.md A1).
_URI_DECODED = {"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
                "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";"}


def sign_v3(secret: str, method: str, url: str, body: bytes, timestamp_ms: int) -> str:
    """HubSpot's v3 signature: base64(HMAC-SHA256(method + uri + body + timestamp))."""
    uri = re.sub(r"%[0-9A-Fa-f]{2}", lambda m: _URI_DECODED.get(m[0].upper(), m[0]), url)
    source = method.encode() + uri.encode() + body + str(timestamp_ms).encode()
    digest = hmac.new(secret.encode(), source, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class _WebhookSender:
    """One thread that POSTs queued events in batches of up to 100, retrying failures."""

    def __init__(self, target_url: str, secret: str, deliveries: list[tuple[int, int]],
                 max_attempts: int = 10, retry_delay: float = 0.02,
                 max_retry_delay: float = 0.2) -> None:
        self._url, self._secret, self._deliveries = target_url, secret, deliveries
        self._max_attempts, self._retry_delay = max_attempts, retry_delay
        self._max_retry_delay = max_retry_delay
        self.sent: list[bytes] = []  # every batch body, first attempt, in sending order
        self._held: list[list[dict[str, Any]]] | None = None
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition()
        self._stopping = threading.Event()
        self._session = requests.Session()
        self._thread = threading.Thread(target=self._run, name="hubspot-webhooks", daemon=True)
        self._thread.start()

    def put(self, event: dict[str, Any]) -> None:
        with self._idle:
            self._pending += 1
        self._queue.put(event)

    def flush(self, timeout: float) -> None:
        with self._idle:
            if not self._idle.wait_for(lambda: self._pending == 0, timeout):
                raise TimeoutError(f"{self._pending} webhook event(s) still queued")

    def stop(self) -> None:
        self._stopping.set()
        self._queue.put(None)
        self._thread.join(timeout=5)
        self._session.close()

    def _run(self) -> None:
        while not self._stopping.is_set():
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < BATCH_LIMIT and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    self._stopping.set()
                    break
                batch.append(item)
            with self._idle:
                held = self._held
                if held is not None:  # kept back, one batch per event, until released
                    held.extend([event] for event in batch)
                    continue
            self._deliver(batch)
            with self._idle:
                self._pending -= len(batch)
                self._idle.notify_all()

    def hold(self) -> None:
        """Keep batches back (each event its own batch) until ``release``."""
        with self._idle:
            self._held = []

    def all_held(self) -> bool:
        """True while holding once every event put so far has been taken into a held batch."""
        with self._idle:
            return self._held is not None and len(self._held) == self._pending

    def release(self, order: Callable[[list[list[dict[str, Any]]]], Iterable[int]]
                = lambda held: range(len(held))) -> int:
        """Send the held batches in the order ``order(held)`` gives (indexes; a repeated
        index is a redelivery) and stop holding; returns how many were held."""
        with self._idle:
            held, self._held = self._held or [], None
        for index in order(held):
            self._deliver([dict(event) for event in held[index]])
        with self._idle:
            self._pending -= len(held)
            self._idle.notify_all()
        return len(held)

    def resend(self, index: int, attempt: int | None = None) -> int:
        """Deliver sent batch ``index`` again, freshly signed; with ``attempt``, as
        HubSpot's retry number ``attempt`` (same events, other bytes)."""
        body = self.sent[index]
        events = json.loads(body)
        if attempt is not None:
            for event in events:
                event["attemptNumber"] = attempt
            body = json.dumps(events, separators=(",", ":")).encode()
        status = self._post(body, record=False)
        self._deliveries.append((status, len(events)))
        return status

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        """Try up to ``max_attempts`` times, as HubSpot does (with much shorter delays)."""
        for attempt in range(self._max_attempts):
            for event in batch:
                event["attemptNumber"] = attempt
            status = self._post(json.dumps(batch, separators=(",", ":")).encode(),
                                record=attempt == 0)
            self._deliveries.append((status, len(batch)))
            delay = min(self._retry_delay * 2**attempt, self._max_retry_delay)
            if 200 <= status < 300 or self._stopping.wait(delay):
                return

    def _post(self, body: bytes, record: bool = True) -> int:
        if record:
            self.sent.append(body)
        stamp = _now_ms()
        # HubSpot's "Validating requests": CRM object webhooks carry the v1 signature (its
        # version in X-HubSpot-Signature-Version) beside the v3 one and its timestamp.
        legacy = hashlib.sha256(self._secret.encode() + body).hexdigest()
        headers = {"Content-Type": "application/json", VERSION_HEADER: "v1",
                   LEGACY_SIGNATURE_HEADER: legacy, TIMESTAMP_HEADER: str(stamp),
                   SIGNATURE_V3_HEADER: sign_v3(self._secret, "POST", self._url, body, stamp)}
        try:
            return self._session.post(self._url, data=body, headers=headers, timeout=5).status_code
        except requests.RequestException:
            return 0


class _Webhooks(Emulator):
    """The app's webhook subscriptions and sender; HubSpotEmulator sets these attributes."""

    client_secret: str
    portal_id: int
    app_id: int
    _hooks: dict[str, int]
    _event_ids: Iterator[int]
    _sender: _WebhookSender | None
    _deliveries: list[tuple[int, int]]

    def configure_webhooks(self, target_url: str,
                           subscriptions: Iterable[str] = DEFAULT_WEBHOOK_SUBSCRIPTIONS, *,
                           max_attempts: int = 10, retry_delay: float = 0.02,
                           max_retry_delay: float = 0.2) -> None:
        """Subscribe the app to these event types and deliver them to ``target_url``.

        HubSpot retries a failed delivery up to 10 times over 24 hours; the emulator's
        delays are far shorter and tunable, so a test can outlast an outage."""
        self._stop_sender()
        with self.lock:
            self._hooks = {name: 2000 + i for i, name in enumerate(subscriptions)}
            self._sender = _WebhookSender(target_url, self.client_secret, self._deliveries,
                                          max_attempts, retry_delay, max_retry_delay)

    @property
    def webhook_sender(self) -> _WebhookSender:
        """The sender, to hold, release or resend batches (duplicates, reordering)."""
        if self._sender is None:
            raise RuntimeError("configure_webhooks first")
        return self._sender

    def flush_webhooks(self, timeout: float = 5.0) -> None:
        """Wait until every queued event was delivered (or given up); TimeoutError if not."""
        if self._sender is not None:
            self._sender.flush(timeout)

    @property
    def webhook_deliveries(self) -> list[tuple[int, int]]:
        """(HTTP status, number of events) per delivery attempt; status 0 = no connection."""
        return list(self._deliveries)

    def _stop_sender(self) -> None:
        if self._sender is not None:
            self._sender.stop()
            self._sender = None

    def _emit(self, kind: str, contact_id: str, source: str, prop: str | None = None,
              value: str | None = None, **extra: Any) -> None:
        hook = self._hooks.get(f"{kind}:{prop}" if prop else kind)
        if hook is None or self._sender is None:
            return
        event: dict[str, Any] = {
            "eventId": next(self._event_ids), "subscriptionId": hook, "portalId": self.portal_id,
            "appId": self.app_id, "occurredAt": _now_ms(), "subscriptionType": kind,
            "attemptNumber": 0, "objectId": int(contact_id), "changeSource": source, **extra}
        if prop:
            event |= {"propertyName": prop, "propertyValue": value or ""}
        WebhookEvent.model_validate(event)  # the emulator sends only what HubSpot documents
        self._sender.put(event)
