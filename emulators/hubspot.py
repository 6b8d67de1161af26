"""An in-memory HubSpot on a loopback port, for tests, the demo and the benchmark.

It speaks the slice privasync uses (contacts, GDPR delete, merge, communication
preferences v3 and v4) with HubSpot's paths, error bodies, rolling rate limit
and ``X-HubSpot-RateLimit-*`` headers, so hubspot-api-client and plain requests
run unchanged but for the base URL. Changes fire webhooks signed with signature
v3 from one sender thread, batched and retried as HubSpot does. The ``ui_*``
helpers stand in for a marketer clicking in the CRM (changeSource ``CRM_UI``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import queue
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import requests

from emulators.http import Emulator, Handler, Request, Response

DEFAULT_WEBHOOK_SUBSCRIPTIONS: tuple[str, ...] = (
    "contact.creation", "contact.deletion", "contact.privacyDeletion", "contact.merge",
    "contact.propertyChange:hs_email_optout",
    "contact.propertyChange:hs_email_optout_101", "contact.propertyChange:hs_email_optout_102",
)
SUBSCRIBED, NOT_SUBSCRIBED, NOT_SPECIFIED = "SUBSCRIBED", "NOT_SUBSCRIBED", "NOT_SPECIFIED"
LEGAL_BASES = frozenset({
    "LEGITIMATE_INTEREST_PQL", "LEGITIMATE_INTEREST_CLIENT", "PERFORMANCE_OF_CONTRACT",
    "CONSENT_WITH_NOTICE", "NON_GDPR", "PROCESS_AND_STORE", "LEGITIMATE_INTEREST_OTHER",
})
BATCH_LIMIT = 100
_DEFAULT_PROPERTIES = ("email", "firstname", "lastname")
_READ_ONLY = re.compile(r"hs_email_optout(_\d+)?")
_CONTACTS = "/crm/v3/objects/contacts"
_PREFS = "/communication-preferences"
# HubSpot signs the URI with these characters decoded (VENDOR_APIS.md A1).
_URI_DECODED = {"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
                "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";"}


def _now_ms() -> int:
    return int(time.time() * 1000)


def _iso(ms: int) -> str:
    stamp = datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def _error(status: int, message: str, category: str, **extra: Any) -> Response:
    body = {"status": "error", "message": message, "correlationId": str(uuid.uuid4()),
            "category": category, **extra}
    return Response(status, body)


def sign_v3(secret: str, method: str, url: str, body: bytes, timestamp_ms: int) -> str:
    """HubSpot's v3 signature: base64(HMAC-SHA256(method + uri + body + timestamp))."""
    uri = re.sub(r"%[0-9A-Fa-f]{2}", lambda m: _URI_DECODED.get(m[0].upper(), m[0]), url)
    source = method.encode() + uri.encode() + body + str(timestamp_ms).encode()
    digest = hmac.new(secret.encode(), source, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class HubSpotError(Exception):
    """A refusal in HubSpot's error shape; route handlers turn it into the HTTP answer."""

    def __init__(self, status: int, message: str, category: str = "VALIDATION_ERROR") -> None:
        super().__init__(message)
        self.status, self.message, self.category = status, message, category

    def response(self) -> Response:
        return _error(self.status, self.message, self.category)


@dataclass
class _Contact:
    id: str
    properties: dict[str, str]
    created_ms: int
    updated_ms: int
    archived_ms: int | None = None


@dataclass(frozen=True)
class StatusChange:
    """One recorded change of an address's subscription status (the audit trail)."""

    subscription_id: int
    status: str
    at: datetime
    source: str
    legal_basis: str | None = None
    explanation: str | None = None


@dataclass(frozen=True)
class _Definition:
    id: int
    name: str


class _WebhookSender:
    """One thread that POSTs queued events in batches of up to 100, retrying failures."""

    def __init__(self, target_url: str, secret: str, deliveries: list[tuple[int, int]],
                 max_attempts: int = 10, retry_delay: float = 0.02) -> None:
        self._url, self._secret, self._deliveries = target_url, secret, deliveries
        self._max_attempts, self._retry_delay = max_attempts, retry_delay
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
            self._deliver(batch)
            with self._idle:
                self._pending -= len(batch)
                self._idle.notify_all()

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        """Try up to ``max_attempts`` times, as HubSpot does (with much shorter delays)."""
        for attempt in range(self._max_attempts):
            for event in batch:
                event["attemptNumber"] = attempt
            status = self._post(json.dumps(batch, separators=(",", ":")).encode())
            self._deliveries.append((status, len(batch)))
            if 200 <= status < 300 or self._stopping.wait(min(self._retry_delay * 2**attempt, 0.2)):
                return

    def _post(self, body: bytes) -> int:
        stamp = _now_ms()
        headers = {"Content-Type": "application/json", "X-HubSpot-Signature-Version": "v3",
                   "X-HubSpot-Request-Timestamp": str(stamp),
                   "X-HubSpot-Signature-v3": sign_v3(self._secret, "POST", self._url, body, stamp)}
        try:
            return self._session.post(self._url, data=body, headers=headers, timeout=5).status_code
        except requests.RequestException:
            return 0


class HubSpotEmulator(Emulator):
    """HubSpot's contacts and communication-preferences APIs, in memory, with webhooks."""

    name = "hubspot"

    def __init__(self, access_token: str = "pat-emulator",  # noqa: S107 - a fake's credentials
                 client_secret: str = "emulator-secret",  # noqa: S107
                 rate_limit: int = 100, window_seconds: float = 10.0,
                 portal_id: int = 62515, app_id: int = 54321) -> None:
        super().__init__()
        self.access_token, self.client_secret = access_token, client_secret
        self.rate_limit, self.window_seconds = rate_limit, window_seconds
        self.portal_id, self.app_id = portal_id, app_id
        self._window: deque[float] = deque()
        self._contacts: dict[str, _Contact] = {}
        self._ids = itertools.count(1001)
        self._definitions = {101: _Definition(101, "Product news"), 102: _Definition(102, "Offers")}
        self._statuses: dict[tuple[str, int], tuple[str, StatusChange]] = {}
        self._opted_out: set[str] = set()
        self._history: dict[str, list[StatusChange]] = {}
        self._blocklist: set[str] = set()
        self._hooks: dict[str, int] = {}
        self._event_ids = itertools.count(1)
        self._sender: _WebhookSender | None = None
        self._deliveries: list[tuple[int, int]] = []
        self._register_routes()

    # -- routes, auth, rate limit -------------------------------------------------
    def _register_routes(self) -> None:
        c, p, one = _CONTACTS, _PREFS, "(?P<id>[^/]+)"
        table: list[tuple[str, str, Handler]] = [
            ("POST", f"{c}/batch/read", self._h_batch_read),
            ("POST", f"{c}/batch/update", self._h_batch_update),
            ("POST", f"{c}/gdpr-delete", self._h_gdpr_delete),
            ("POST", f"{c}/merge", self._h_merge),
            ("POST", c, self._h_create),
            ("GET", f"{c}/{one}", self._h_get),
            ("PATCH", f"{c}/{one}", self._h_update),
            ("DELETE", f"{c}/{one}", self._h_archive),
            ("GET", f"{p}/v3/definitions", self._h_definitions),
            ("GET", f"{p}/v3/status/email/(?P<email>[^/]+)", self._h_v3_status),
            ("POST", f"{p}/v3/unsubscribe", self._h_v3_unsubscribe),
            ("POST", f"{p}/v3/subscribe", self._h_v3_subscribe),
            ("POST", f"{p}/v4/statuses/batch/write", self._h_v4_write),
            ("POST", f"{p}/v4/statuses/batch/read", self._h_v4_read),
            ("POST", f"{p}/v4/statuses/(?P<email>[^/]+)/unsubscribe-all", self._h_v4_unsub_all),
        ]
        for method, pattern, handler in table:
            self.route(method, pattern, self._guarded(handler))

    def _guarded(self, handler: Handler) -> Handler:
        """Serialise handlers on the state lock and answer refusals in HubSpot's shape."""
        def run(request: Request, match: re.Match[str]) -> Response:
            try:
                with self.lock:
                    return handler(request, match)
            except HubSpotError as exc:
                return exc.response()
            except ValueError:
                return _error(400, "Invalid input JSON on line 1", "VALIDATION_ERROR")
        return run

    def authorize(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        if not header:
            return _error(401, "Authentication credentials not found.", "INVALID_AUTHENTICATION")
        if not hmac.compare_digest(header, f"Bearer {self.access_token}"):
            return _error(401, "Authentication credentials are invalid or expired.",
                          "INVALID_AUTHENTICATION")
        return None

    def admit(self, request: Request) -> Response | None:
        now = time.monotonic()
        with self.lock:
            while self._window and self._window[0] <= now - self.window_seconds:
                self._window.popleft()
            if len(self._window) < self.rate_limit:
                self._window.append(now)
                return None
        body = {"status": "error", "message": "You have reached your ten_secondly_rolling limit.",
                "errorType": "RATE_LIMIT", "correlationId": str(uuid.uuid4()),
                "policyName": "TEN_SECONDLY_ROLLING", "requestId": str(uuid.uuid4())}
        return Response(429, body)

    def dispatch(self, request: Request) -> Response:
        response = super().dispatch(request)
        with self.lock:
            remaining = max(0, self.rate_limit - len(self._window))
        for key, value in (("X-HubSpot-RateLimit-Max", self.rate_limit),
                           ("X-HubSpot-RateLimit-Remaining", remaining),
                           ("X-HubSpot-RateLimit-Interval-Milliseconds",
                            int(self.window_seconds * 1000))):
            response.headers.setdefault(key, str(value))
        return response

    def error(self, status: int, message: str) -> Response:
        return _error(status, message, "OBJECT_NOT_FOUND" if status == 404 else "VALIDATION_ERROR")

    # -- webhooks -------------------------------------------------------------------
    def configure_webhooks(self, target_url: str,
                           subscriptions: Iterable[str] = DEFAULT_WEBHOOK_SUBSCRIPTIONS) -> None:
        """Subscribe the app to these event types and deliver them to ``target_url``."""
        self._stop_sender()
        with self.lock:
            self._hooks = {name: 2000 + i for i, name in enumerate(subscriptions)}
            self._sender = _WebhookSender(target_url, self.client_secret, self._deliveries)

    def flush_webhooks(self, timeout: float = 5.0) -> None:
        """Wait until every queued event was delivered (or given up); TimeoutError if not."""
        if self._sender is not None:
            self._sender.flush(timeout)

    @property
    def webhook_deliveries(self) -> list[tuple[int, int]]:
        """(HTTP status, number of events) per delivery attempt; status 0 = no connection."""
        return list(self._deliveries)

    def stop(self) -> None:
        self._stop_sender()
        super().stop()

    def _stop_sender(self) -> None:
        if self._sender is not None:
            self._sender.stop()
            self._sender = None

    def reset(self) -> None:
        """Forget all state, webhooks, faults and counters; keep serving on the same port.

        Restarting the server costs half a second; tests share one and reset it.
        """
        self._stop_sender()
        self.clear_faults()
        with self.lock:
            self._window.clear()
            self.calls.clear()
            self.log.clear()
            self._contacts.clear()
            self._ids = itertools.count(1001)
            self._statuses.clear()
            self._opted_out.clear()
            self._history.clear()
            self._blocklist.clear()
            self._hooks = {}
            self._deliveries.clear()

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
        self._sender.put(event)

    # -- contacts -------------------------------------------------------------------
    def _live(self, contact_id: str, archived: bool = False) -> _Contact:
        contact = self._contacts.get(contact_id)
        if contact is None or (contact.archived_ms is not None) != archived:
            raise HubSpotError(404, "Object not found.  objectId are usually numeric.",
                               "OBJECT_NOT_FOUND")
        return contact

    def _resolve(self, key: str, id_property: str | None, archived: bool = False) -> _Contact:
        if not id_property or id_property == "hs_object_id":
            return self._live(key, archived)
        value = key.lower() if id_property == "email" else key
        for contact in self._contacts.values():
            if contact.properties.get(id_property) == value \
                    and (contact.archived_ms is not None) == archived:
                return contact
        raise HubSpotError(404, "Object not found.", "OBJECT_NOT_FOUND")

    def _view(self, contact: _Contact, names: Iterable[str] | None = None) -> dict[str, Any]:
        props: dict[str, str | None] = {n: contact.properties.get(n)
                                        for n in (names or _DEFAULT_PROPERTIES)}
        props |= {"hs_object_id": contact.id, "createdate": _iso(contact.created_ms),
                  "lastmodifieddate": _iso(contact.updated_ms)}
        view = {"id": contact.id, "properties": props, "createdAt": _iso(contact.created_ms),
                "updatedAt": _iso(contact.updated_ms), "archived": contact.archived_ms is not None}
        if contact.archived_ms is not None:
            view["archivedAt"] = _iso(contact.archived_ms)
        return view

    @staticmethod
    def _writable(raw: object) -> dict[str, str | None]:
        """Property values as HubSpot stores them; an empty string clears (None)."""
        if not isinstance(raw, dict):
            raise HubSpotError(400, "properties must be an object")
        for name in raw:
            if _READ_ONLY.fullmatch(str(name)):
                raise HubSpotError(400, f"Property {name} is read-only; use the "
                                        "communication preferences API")
        return {str(k): ("true" if v is True else "false" if v is False else str(v) or None)
                for k, v in raw.items() if v is not None}

    def _find_email(self, email: str) -> _Contact | None:
        return next((c for c in self._contacts.values() if c.archived_ms is None
                     and c.properties.get("email") == email.lower()), None)

    def _create(self, given: Mapping[str, str | None], source: str) -> _Contact:
        props = {k: v for k, v in given.items() if v is not None}
        email = props.get("email", "").strip().lower()
        if not email:
            raise HubSpotError(400, "Property email is required")
        if email in self._blocklist:
            raise HubSpotError(400, "This address was GDPR-deleted and is blocklisted")
        existing = self._find_email(email)
        if existing is not None:
            raise HubSpotError(409, f"Contact already exists. Existing ID: {existing.id}",
                               "CONFLICT")
        now = _now_ms()
        contact = _Contact(str(next(self._ids)), {**props, "email": email}, now, now)
        optout = self._optout_props(contact)
        contact.properties |= {k: v for k, v in optout.items() if v is not None}
        self._contacts[contact.id] = contact
        self._emit("contact.creation", contact.id, source, changeFlag="NEW")
        return contact

    def _set_props(self, contact: _Contact, props: Mapping[str, str | None], source: str) -> None:
        """Apply changed values and fire a propertyChange for each subscribed one."""
        email = props.get("email")
        if email:
            email = email.lower()
            other = self._find_email(email)
            if other is not None and other.id != contact.id:
                raise HubSpotError(409, f"Contact already exists. Existing ID: {other.id}",
                                   "CONFLICT")
            props = {**props, "email": email}
        for name, value in props.items():
            if contact.properties.get(name) == value:
                continue
            if value is None:
                contact.properties.pop(name, None)
            else:
                contact.properties[name] = value
            contact.updated_ms = _now_ms()
            self._emit("contact.propertyChange", contact.id, source, name, value)

    def _archive(self, contact_id: str, source: str) -> None:
        contact = self._contacts.get(contact_id)
        if contact is not None and contact.archived_ms is None:
            contact.archived_ms = _now_ms()
            self._emit("contact.deletion", contact_id, source, changeFlag="DELETED")

    def _purge(self, contact: _Contact, source: str) -> None:
        """GDPR delete: the record, its statuses and their history are gone for good."""
        del self._contacts[contact.id]
        email = contact.properties.get("email", "")
        self._statuses = {k: v for k, v in self._statuses.items() if k[0] != email}
        self._opted_out.discard(email)
        self._history.pop(email, None)
        self._emit("contact.privacyDeletion", contact.id, source, changeFlag="DELETED")
        self._emit("contact.deletion", contact.id, source, changeFlag="DELETED")

    def _merge(self, primary_id: str, merged_id: str, source: str) -> _Contact:
        if primary_id == merged_id:
            raise HubSpotError(400, "Cannot merge a contact into itself")
        primary, merged = self._live(primary_id), self._live(merged_id)
        moved = {k: v for k, v in merged.properties.items()
                 if k not in primary.properties and not _READ_ONLY.fullmatch(k)}
        primary.properties |= moved
        extra = [e for e in (primary.properties.get("hs_additional_emails"),
                             merged.properties.get("email")) if e]
        primary.properties["hs_additional_emails"] = ";".join(extra)
        primary.updated_ms = _now_ms()
        del self._contacts[merged_id]
        self._emit("contact.merge", primary_id, source, primaryObjectId=int(primary_id),
                   mergedObjectIds=[int(merged_id)], newObjectId=int(primary_id),
                   numberOfPropertiesMoved=len(moved), changeFlag="MERGED")
        return primary

    # -- subscription statuses ----------------------------------------------------------
    def _status_of(self, email: str, sub_id: int) -> str:
        entry = self._statuses.get((email, sub_id))
        return entry[0] if entry else NOT_SPECIFIED

    def _write_status(self, email: str, sub_id: int, state: str, source: str,
                      legal_basis: str | None = None, explanation: str | None = None) -> str:
        """Record one status; return HubSpot's ``setStatusSuccessReason``."""
        email, old = email.lower(), self._status_of(email.lower(), sub_id)
        change = StatusChange(sub_id, state, datetime.now(UTC), source, legal_basis, explanation)
        if state == NOT_SPECIFIED:
            self._statuses.pop((email, sub_id), None)
        else:
            self._statuses[(email, sub_id)] = (state, change)
        if state == SUBSCRIBED:
            self._opted_out.discard(email)
        if old == state:
            return "NO_STATUS_CHANGE"
        self._history.setdefault(email, []).append(change)
        return {SUBSCRIBED: "RESUBSCRIBE_OCCURRED",
                NOT_SUBSCRIBED: "UNSUBSCRIBE_OCCURRED"}.get(state, "REQUESTED_CHANGE_OCCURRED")

    def _unsubscribe_all(self, email: str, source: str, legal_basis: str | None = None,
                         explanation: str | None = None) -> None:
        for sub_id in self._definitions:
            self._write_status(email, sub_id, NOT_SUBSCRIBED, source, legal_basis, explanation)
        self._opted_out.add(email.lower())
        self._sync_optout(email, source)

    def _optout_props(self, contact: _Contact) -> dict[str, str | None]:
        """What the read-only ``hs_email_optout*`` properties say for this contact now."""
        email = contact.properties.get("email", "")
        states = {s: self._status_of(email, s) for s in self._definitions}
        props: dict[str, str | None] = {
            f"hs_email_optout_{s}": None if st == NOT_SPECIFIED else
            str(st == NOT_SUBSCRIBED).lower() for s, st in states.items()}
        everything = email in self._opted_out or all(st == NOT_SUBSCRIBED for st in states.values())
        current = contact.properties.get("hs_email_optout")
        props["hs_email_optout"] = "true" if everything else (
            "false" if current == "true" else current)
        return props

    def _sync_optout(self, email: str, source: str) -> None:
        contact = self._find_email(email)
        if contact is not None:
            self._set_props(contact, self._optout_props(contact), source)

    def _status_row(self, email: str, sub_id: int) -> dict[str, Any]:
        """One v4 status entry for an address and subscription."""
        entry = self._statuses.get((email, sub_id))
        change = entry[1] if entry else None
        return {"subscriberIdString": email, "subscriptionId": sub_id, "channel": "EMAIL",
                "status": entry[0] if entry else NOT_SPECIFIED,
                "source": change.source if change else "",
                "subscriptionName": self._definitions[sub_id].name,
                "legalBasis": change.legal_basis if change else None,
                "legalBasisExplanation": change.explanation if change else None,
                "timestamp": change.at.isoformat() if change else _iso(_now_ms())}

    def _v3_row(self, email: str, sub_id: int) -> dict[str, Any]:
        row = self._status_row(email, sub_id)
        return {"id": str(sub_id), "name": row["subscriptionName"], "description": "",
                "status": row["status"], "legalBasis": row["legalBasis"],
                "legalBasisExplanation": row["legalBasisExplanation"],
                "sourceOfStatus": "PORTAL_WIDE_STATUS" if email in self._opted_out
                else "SUBSCRIPTION_STATUS", "preferenceGroupName": None, "brandId": None}

    def _subscription(self, raw: object) -> int:
        try:
            sub_id = int(str(raw))
        except ValueError:
            raise HubSpotError(400, "subscriptionId must be a number") from None
        if sub_id not in self._definitions:
            raise HubSpotError(400, f"Subscription {sub_id} does not exist", "OBJECT_NOT_FOUND")
        return sub_id

    # -- HTTP handlers: contacts ----------------------------------------------------------
    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        body = request.json()
        if not isinstance(body, dict):
            raise HubSpotError(400, "Request body must be a JSON object")
        return body

    @staticmethod
    def _inputs(body: Mapping[str, Any]) -> list[Any]:
        inputs = body.get("inputs")
        if not isinstance(inputs, list):
            raise HubSpotError(400, "inputs must be an array")
        if len(inputs) > BATCH_LIMIT:
            raise HubSpotError(400, f"Too many inputs: {len(inputs)} (limit {BATCH_LIMIT})")
        return inputs

    @staticmethod
    def _names(request: Request) -> list[str] | None:
        names = [n for raw in request.query.get("properties", []) for n in raw.split(",") if n]
        return names or None

    def _h_create(self, request: Request, _: re.Match[str]) -> Response:
        contact = self._create(self._writable(self._body(request).get("properties")), "API")
        return Response(201, self._view(contact, contact.properties))

    def _h_get(self, request: Request, match: re.Match[str]) -> Response:
        contact = self._resolve(unquote(match["id"]), request.arg("idProperty"),
                                request.arg("archived") == "true")
        return Response(200, self._view(contact, self._names(request)))

    def _h_update(self, request: Request, match: re.Match[str]) -> Response:
        contact = self._resolve(unquote(match["id"]), request.arg("idProperty"))
        props = self._writable(self._body(request).get("properties"))
        self._set_props(contact, props, "API")
        return Response(200, self._view(contact, props))

    def _h_archive(self, _: Request, match: re.Match[str]) -> Response:
        self._archive(match["id"], "API")
        return Response(204)

    def _batch(self, found: list[dict[str, Any]], missing: list[str]) -> Response:
        now = _iso(_now_ms())
        body: dict[str, Any] = {"status": "COMPLETE", "results": found, "startedAt": now,
                                "completedAt": now}
        if not missing:
            return Response(200, body)
        body["numErrors"] = 1
        body["errors"] = [{"status": "error", "category": "OBJECT_NOT_FOUND",
                           "message": "Could not get some CONTACT objects, they may be deleted "
                                      "or not exist. Check that ids are valid.",
                           "context": {"ids": missing}}]
        return Response(207, body)

    def _h_batch_read(self, request: Request, _: re.Match[str]) -> Response:
        body = self._body(request)
        found, missing = [], []
        for item in self._inputs(body):
            key = str(item.get("id", "")) if isinstance(item, dict) else ""
            try:
                contact = self._resolve(key, body.get("idProperty"))
            except HubSpotError:
                missing.append(key)
                continue
            names = body.get("properties")
            found.append(self._view(contact, names if isinstance(names, list) and names else None))
        return self._batch(found, missing)

    def _h_batch_update(self, request: Request, _: re.Match[str]) -> Response:
        found, missing = [], []
        for item in self._inputs(self._body(request)):
            if not isinstance(item, dict):
                raise HubSpotError(400, "each input must be an object")
            props = self._writable(item.get("properties"))
            try:
                contact = self._resolve(str(item.get("id", "")), item.get("idProperty"))
            except HubSpotError:
                missing.append(str(item.get("id", "")))
                continue
            self._set_props(contact, props, "API")
            found.append(self._view(contact, props))
        return self._batch(found, missing)

    def _h_gdpr_delete(self, request: Request, _: re.Match[str]) -> Response:
        body = self._body(request)
        key, id_property = str(body.get("objectId", "")), body.get("idProperty")
        try:
            contact = self._resolve(key, id_property)
        except HubSpotError:
            if id_property != "email":
                raise
            self._blocklist.add(key.lower())
            return Response(204)
        self._purge(contact, "API")
        return Response(204)

    def _h_merge(self, request: Request, _: re.Match[str]) -> Response:
        body = self._body(request)
        primary = self._merge(str(body.get("primaryObjectId", "")),
                              str(body.get("objectIdToMerge", "")), "API")
        return Response(200, self._view(primary))

    # -- HTTP handlers: communication preferences ----------------------------------------
    def _h_definitions(self, _: Request, __: re.Match[str]) -> Response:
        stamp = _iso(_now_ms())
        return Response(200, {"subscriptionDefinitions": [
            {"id": str(d.id), "name": d.name, "description": "", "purpose": "Marketing",
             "communicationMethod": "Email", "isActive": True, "isDefault": False,
             "isInternal": False, "createdAt": stamp, "updatedAt": stamp, "businessUnitId": 0}
            for d in self._definitions.values()]})

    def _h_v3_status(self, _: Request, match: re.Match[str]) -> Response:
        email = unquote(match["email"]).lower()
        rows = [self._v3_row(email, s) for s in self._definitions
                if self._status_of(email, s) != NOT_SPECIFIED]
        return Response(200, {"recipient": email, "subscriptionStatuses": rows})

    def _v3_change(self, request: Request, state: str) -> Response:
        body = self._body(request)
        email, sub_id = str(body.get("emailAddress", "")).lower(), self._subscription(
            body.get("subscriptionId"))
        if "@" not in email:
            raise HubSpotError(400, "emailAddress is not a valid address")
        if state == SUBSCRIBED and (email in self._opted_out
                                    or self._status_of(email, sub_id) == NOT_SUBSCRIBED):
            raise HubSpotError(400, "The recipient has opted out and cannot be resubscribed "
                                    "through this API")
        self._write_status(email, sub_id, state, "API", body.get("legalBasis"),
                           body.get("legalBasisExplanation"))
        self._sync_optout(email, "API")
        return Response(200, self._v3_row(email, sub_id))

    def _h_v3_unsubscribe(self, request: Request, _: re.Match[str]) -> Response:
        return self._v3_change(request, NOT_SUBSCRIBED)

    def _h_v3_subscribe(self, request: Request, _: re.Match[str]) -> Response:
        return self._v3_change(request, SUBSCRIBED)

    def _v4_input(self, item: object) -> tuple[str, int, str, str | None, str | None]:
        """Validate one batch/write input; HubSpotError names what is wrong with it."""
        if not isinstance(item, dict):
            raise HubSpotError(400, "each input must be an object")
        email, state = str(item.get("subscriberIdString", "")).lower(), item.get("statusState")
        basis = item.get("legalBasis")
        if "@" not in email:
            raise HubSpotError(400, "subscriberIdString is not a valid address")
        if item.get("channel") != "EMAIL":
            raise HubSpotError(400, "channel must be EMAIL")
        if state not in (SUBSCRIBED, NOT_SUBSCRIBED, NOT_SPECIFIED):
            raise HubSpotError(400, "statusState must be SUBSCRIBED, NOT_SUBSCRIBED or "
                                    "NOT_SPECIFIED")
        if (basis is not None and basis not in LEGAL_BASES) or (state == SUBSCRIBED and not basis):
            raise HubSpotError(400, "a valid legalBasis is required to subscribe")
        sub_id = self._subscription(item.get("subscriptionId"))
        return email, sub_id, str(state), basis, item.get("legalBasisExplanation")

    def _h_v4_write(self, request: Request, _: re.Match[str]) -> Response:
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        touched: dict[str, None] = {}
        for item in self._inputs(self._body(request)):
            try:
                email, sub_id, state, basis, why = self._v4_input(item)
            except HubSpotError as exc:
                raw = item if isinstance(item, dict) else {}
                errors.append({"status": "error", "category": exc.category, "message": exc.message,
                               "context": {"subscriberIdString": [str(raw.get(
                                   "subscriberIdString", ""))], "subscriptionId": [str(
                                       raw.get("subscriptionId", ""))]}})
                continue
            reason = self._write_status(email, sub_id, state, "API", basis, why)
            results.append(self._status_row(email, sub_id) | {"setStatusSuccessReason": reason})
            touched[email] = None
        for email in touched:
            self._sync_optout(email, "API")
        return self._v4_answer(results, errors)

    @staticmethod
    def _v4_answer(results: list[dict[str, Any]], errors: list[dict[str, Any]]) -> Response:
        now = _iso(_now_ms())
        body = {"status": "COMPLETE", "results": results, "errors": errors,
                "numErrors": len(errors), "startedAt": now, "completedAt": now}
        return Response(207 if errors else 200, body)

    def _h_v4_read(self, request: Request, _: re.Match[str]) -> Response:
        emails = [str(e).lower() for e in self._inputs(self._body(request))]
        results = [{"subscriberIdString": e,
                    "statuses": [self._status_row(e, s) for s in self._definitions]}
                   for e in emails]
        return self._v4_answer(results, [])

    def _h_v4_unsub_all(self, request: Request, match: re.Match[str]) -> Response:
        if request.arg("channel") != "EMAIL":
            raise HubSpotError(400, "channel must be EMAIL")
        email = unquote(match["email"]).lower()
        self._unsubscribe_all(email, "API")
        return self._v4_answer([self._status_row(email, s) for s in self._definitions], [])

    # -- helpers for tests and the demo (a marketer in the CRM UI) --------------------------
    def create_contact(self, email: str, **props: str) -> str:
        """Create a contact as if typed into the CRM; returns its id."""
        with self.lock:
            return self._create(self._writable({**props, "email": email}), "CRM_UI").id

    def ui_set_property(self, contact_id: str, name: str, value: str) -> None:
        """A marketer edits a property in the CRM; an empty value clears it."""
        with self.lock:
            self._set_props(self._live(contact_id), self._writable({name: value}), "CRM_UI")

    def ui_unsubscribe_all(self, contact_id: str) -> None:
        with self.lock:
            self._unsubscribe_all(self._live(contact_id).properties["email"], "CRM_UI")

    def ui_set_subscription(self, contact_id: str, subscription_id: int, subscribed: bool) -> None:
        with self.lock:
            email = self._live(contact_id).properties["email"]
            state = SUBSCRIBED if subscribed else NOT_SUBSCRIBED
            self._write_status(email, self._subscription(subscription_id), state, "CRM_UI")
            self._sync_optout(email, "CRM_UI")

    def ui_delete(self, contact_id: str) -> None:
        with self.lock:
            self._archive(self._live(contact_id).id, "CRM_UI")

    def ui_gdpr_delete(self, contact_id: str) -> None:
        with self.lock:
            self._purge(self._live(contact_id), "CRM_UI")

    def ui_merge(self, primary_id: str, merged_id: str) -> None:
        with self.lock:
            self._merge(primary_id, merged_id, "CRM_UI")

    def subscription_status(self, email: str, subscription_id: int) -> str | None:
        """SUBSCRIBED, NOT_SUBSCRIBED or None (not specified)."""
        with self.lock:
            state = self._status_of(email.lower(), subscription_id)
        return None if state == NOT_SPECIFIED else state

    def status_changes(self, email: str) -> list[StatusChange]:
        with self.lock:
            return list(self._history.get(email.lower(), []))

    def contact(self, contact_id: str) -> dict[str, str] | None:
        with self.lock:
            found = self._contacts.get(contact_id)
            return dict(found.properties) if found and found.archived_ms is None else None

    def find_by_email(self, email: str) -> str | None:
        with self.lock:
            found = self._find_email(email)
            return found.id if found else None

    def is_blocklisted(self, email: str) -> bool:
        with self.lock:
            return email.lower() in self._blocklist


__all__ = ["DEFAULT_WEBHOOK_SUBSCRIPTIONS", "HubSpotEmulator", "HubSpotError", "StatusChange",
           "sign_v3"]
