"""Mailchimp's webhooks: the delivery thread and the form-encoded events members fire."""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests

from privasync.emulators.http import Emulator
from privasync.emulators.mailchimp.common import EVENTS, SOURCES, _now


@dataclass(frozen=True)
class WebhookDelivery:
    """One event as the receiver got it: ``status`` of the last attempt (None: no answer)."""

    url: str
    event_type: str
    body: bytes
    status: int | None
    attempts: int


@dataclass(frozen=True)
class _Webhook:
    id: str
    url: str
    sources: frozenset[str]
    events: frozenset[str]


class _WebhookSender:
    """One background thread posting events in order, retrying each a few times.

    Each attempt waits up to 10 s for an answer, as Mailchimp's does (its guide
    "Synchronize Audience Data with Webhooks"; it then retries over 75 minutes, which
    this compresses into four quick attempts): a receiver slowed by a busy machine is
    not a receiver that failed."""

    def __init__(self, attempts: int = 4, backoff: float = 0.05, timeout: float = 10.0) -> None:
        self.attempts, self.backoff, self.timeout = attempts, backoff, timeout
        self.deliveries: list[WebhookDelivery] = []
        self._queue: queue.Queue[tuple[str, str, bytes] | None] = queue.Queue()
        self._pending = 0
        self._done = threading.Condition()
        self._thread: threading.Thread | None = None
        self._session = requests.Session()

    def send(self, url: str, event_type: str, body: bytes) -> None:
        with self._done:
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="mailchimp-webhooks",
                                                daemon=True)
                self._thread.start()
        self._queue.put((url, event_type, body))

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            delivery = self._deliver(*item)
            with self._done:
                self.deliveries.append(delivery)
                self._pending -= 1
                self._done.notify_all()

    def _deliver(self, url: str, event_type: str, body: bytes) -> WebhookDelivery:
        status: int | None = None
        for attempt in range(1, self.attempts + 1):
            try:
                status = self._session.post(url, data=body, timeout=self.timeout, headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "User-Agent": "MailChimp"}).status_code
            except requests.RequestException:
                status = None
            if status is not None and 200 <= status < 300:
                return WebhookDelivery(url, event_type, body, status, attempt)
            time.sleep(self.backoff * 2 ** (attempt - 1))
        return WebhookDelivery(url, event_type, body, status, self.attempts)

    def clear(self) -> None:
        with self._done:
            self.deliveries.clear()

    def snapshot(self) -> list[WebhookDelivery]:
        with self._done:
            return list(self.deliveries)

    def flush(self, timeout: float) -> bool:
        with self._done:
            return self._done.wait_for(lambda: self._pending == 0, timeout)

    def stop(self) -> None:
        with self._done:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=5)
        self._session.close()


class _Webhooks(Emulator):
    """The list's webhooks and their sender; MailchimpEmulator sets these attributes."""

    list_id: str
    _webhooks: list[_Webhook]
    _sender: _WebhookSender

    def configure_webhook(self, url: str, sources: Iterable[str] = ("user", "admin"),
                          events: Iterable[str] = EVENTS) -> str:
        """Register a webhook after Mailchimp's GET check; raise if the URL is not 200."""
        wanted_sources, wanted_events = frozenset(sources), frozenset(events)
        if not wanted_sources <= SOURCES or not wanted_events <= EVENTS:
            raise ValueError("unknown webhook source or event")
        try:
            status = requests.get(url, timeout=5, headers={
                "User-Agent": "MailChimp.com WebHook Validator"}).status_code
        except requests.RequestException as exc:
            raise RuntimeError("webhook URL could not be reached for the validation GET") from exc
        if status != 200:
            raise RuntimeError(f"webhook URL answered HTTP {status} to the validation GET")
        hook = _Webhook(uuid.uuid4().hex[:10], url, wanted_sources, wanted_events)
        with self.lock:
            self._webhooks.append(hook)
        return hook.id

    def flush_webhooks(self, timeout: float = 5.0) -> bool:
        """Wait until every queued event was delivered or gave up; False on timeout."""
        return self._sender.flush(timeout)

    @property
    def webhook_deliveries(self) -> list[WebhookDelivery]:
        return self._sender.snapshot()

    def _webhook_view(self, hook: _Webhook) -> dict[str, Any]:
        """A webhook as the API answers it: every event and source flag, on or off."""
        return {"id": hook.id, "url": hook.url, "list_id": self.list_id,
                "events": {e: e in hook.events for e in sorted(EVENTS)},
                "sources": {s: s in hook.sources for s in sorted(SOURCES)}}

    def _fire(self, event_type: str, source: str, data: list[tuple[str, str]]) -> None:
        """Queue ``type``, ``fired_at`` and the ``data[...]`` pairs to each matching webhook."""
        fired_at = _now().strftime("%Y-%m-%d %H:%M:%S")
        body = urlencode([("type", event_type), ("fired_at", fired_at),
                          *data]).encode("ascii")
        with self.lock:
            hooks = [h for h in self._webhooks if source in h.sources and event_type in h.events]
        for hook in hooks:
            self._sender.send(hook.url, event_type, body)

    def _member_data(self, m: dict[str, Any]) -> list[tuple[str, str]]:
        merges = {"EMAIL": m["email_address"], **m["merge_fields"]}
        return [("data[id]", m["unique_email_id"]), ("data[list_id]", self.list_id),
                ("data[email]", m["email_address"]), ("data[email_type]", "html"),
                *((f"data[merges][{k}]", str(v)) for k, v in merges.items()),
                ("data[ip_opt]", "127.0.0.1")]

    def _fire_sms(self, event_type: str, m: dict[str, Any], source: str) -> None:
        """An SMS event of the contact ``m``. Its fields are an assumption (Mailchimp
        publishes the event names only; see privasync.emulators.contracts.mailchimp.deliveries)."""
        self._fire(event_type, source, [
            ("data[id]", m["unique_email_id"]), ("data[list_id]", self.list_id),
            ("data[email]", m["email_address"]),
            ("data[sms_phone_number]", str(m.get("sms_phone_number", "")))])

    def _fire_status(self, m: dict[str, Any], source: str, action: str = "unsub") -> None:
        if m["status"] == "subscribed":
            self._fire("subscribe", source, [*self._member_data(m),
                                             ("data[ip_signup]", "127.0.0.1")])
        elif m["status"] in ("unsubscribed", "archived"):
            self._fire("unsubscribe", source, [("data[action]", action),
                                               ("data[reason]", "manual"),
                                               *self._member_data(m)])
