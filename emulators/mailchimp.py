"""Mailchimp Marketing API v3 on loopback: one list's members, batch writes, webhooks.

What privasync relies on is reproduced as Mailchimp does it (VENDOR_APIS.md C):
problem+json errors, the compliance rule that an opted-out member cannot be
re-subscribed by API, forgotten addresses after delete-permanent, the cap of
simultaneous connections, and webhooks that are form-encoded with PHP-style
keys, checked with a GET when created, and filtered by source (user, admin,
api) so a deployment can keep its own API writes from echoing back.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
import json
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import requests

from emulators.http import Emulator, Request, Response

PREFIX = "/3.0"
MAX_BATCH = 500
EVENTS = frozenset({"subscribe", "unsubscribe", "profile", "cleaned", "upemail", "campaign"})
SOURCES = frozenset({"user", "admin", "api"})
WRITABLE = frozenset({"subscribed", "unsubscribed", "pending", "transactional"})
_ERRORS_DOC = "https://mailchimp.com/developer/marketing/docs/errors/"
_TITLES = {400: "Invalid Resource", 401: "API Key Invalid", 404: "Resource Not Found",
           405: "Method Not Allowed", 429: "Too Many Requests"}
_COMPLIANCE = ("The contact is in a compliance state due to unsubscribe, bounce, or "
               "compliance review and cannot be subscribed.")
_FORGOTTEN = ("The contact was permanently deleted and cannot be re-imported. "
              "The contact must re-subscribe to get back on the list.")

Route = Callable[[Request, "re.Match[str]"], Response]


def subscriber_hash(email: str) -> str:
    return hashlib.md5(email.lower().encode("utf-8"), usedforsecurity=False).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


class Problem(Exception):
    """An API error answered as ``application/problem+json``."""

    def __init__(self, status: int, title: str, detail: str,
                 errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(title)
        self.status, self.title, self.detail, self.errors = status, title, detail, errors

    def response(self, instance: str = "") -> Response:
        body: dict[str, Any] = {"type": _ERRORS_DOC, "title": self.title, "status": self.status,
                                "detail": self.detail, "instance": instance or str(uuid.uuid4())}
        if self.errors is not None:
            body["errors"] = self.errors
        return Response(self.status, body, content_type="application/problem+json")


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
    """One background thread posting events in order, retrying each a few times."""

    def __init__(self, attempts: int = 4, backoff: float = 0.05, timeout: float = 2.0) -> None:
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


class MailchimpEmulator(Emulator):
    """One audience under ``/3.0``. ``latency_seconds`` slows every admitted request."""

    name = "mailchimp"

    def __init__(self, api_key: str = "emulatorkey-us6", list_id: str = "a6b5da1054",
                 max_connections: int = 10) -> None:
        super().__init__()
        self.api_key, self.list_id, self.max_connections = api_key, list_id, max_connections
        self.latency_seconds = 0.0
        self._members: dict[str, dict[str, Any]] = {}
        self._archived_from: dict[str, str] = {}
        self._forgotten: set[str] = set()
        self._in_flight = 0
        self._webhooks: list[_Webhook] = []
        self._sender = _WebhookSender()
        lst, member = r"/lists/(?P<list>[0-9a-z]+)", r"/members/(?P<hash>[0-9a-f]{32})"
        self._add("GET", "/ping", self._ping)
        self._add("GET", lst, self._get_list)
        self._add("POST", lst, self._batch)
        self._add("POST", f"{lst}/webhooks", self._create_webhook)
        self._add("GET", f"{lst}{member}", self._get_member)
        self._add("PATCH", f"{lst}{member}", self._patch_member)
        self._add("PUT", f"{lst}{member}", self._put_member)
        self._add("DELETE", f"{lst}{member}", self._archive_member)
        self._add("POST", f"{lst}{member}/actions/delete-permanent", self._delete_permanent)

    # -- plumbing ---------------------------------------------------------------
    def _add(self, method: str, pattern: str, handler: Route) -> None:
        def serve(request: Request, match: re.Match[str]) -> Response:
            if self.latency_seconds:
                time.sleep(self.latency_seconds)
            try:
                if match.groupdict().get("list", self.list_id) != self.list_id:
                    raise Problem(404, _TITLES[404], "The requested resource could not be found.")
                return handler(request, match)
            except Problem as problem:
                return problem.response(request.path)
        self.route(method, re.escape(PREFIX) + pattern, serve)

    def error(self, status: int, message: str) -> Response:
        return Problem(status, _TITLES.get(status, "Error"), message).response()

    def authorize(self, request: Request) -> Response | None:
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        key = credential.strip()
        if scheme.lower() == "basic":
            try:
                key = base64.b64decode(key, validate=True).decode("utf-8").partition(":")[2]
            except (binascii.Error, UnicodeDecodeError):
                key = ""
        if scheme.lower() in ("basic", "bearer") and key and hmac.compare_digest(
                key.encode("utf-8"), self.api_key.encode("utf-8")):
            return None
        return self.error(401, "Your API key may be invalid, or you've attempted to access "
                               "the wrong datacenter.")

    def admit(self, request: Request) -> Response | None:
        with self.lock:
            if self._in_flight >= self.max_connections:
                return self.error(429, f"You have exceeded the limit of {self.max_connections} "
                                       "simultaneous connections.")
            self._in_flight += 1
        return None

    def release(self, request: Request) -> None:
        with self.lock:
            self._in_flight -= 1

    def stop(self) -> None:
        self._sender.stop()
        super().stop()

    def reset(self) -> None:
        """Forget members, webhooks, counters and faults, keeping the server running."""
        self._sender.flush(timeout=5.0)
        with self.lock:
            self._members.clear()
            self._archived_from.clear()
            self._forgotten.clear()
            self._webhooks.clear()
            self.calls.clear()
            self.log.clear()
            self.latency_seconds = 0.0
        self.clear_faults()
        self._sender.clear()

    @staticmethod
    def _json(request: Request) -> dict[str, Any]:
        try:
            body = request.json()
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise Problem(400, "JSON Parse Error", "The request body is not valid JSON.") from exc
        if not isinstance(body, dict):
            raise Problem(400, "JSON Parse Error", "The request body must be a JSON object.")
        return body

    # -- webhooks -----------------------------------------------------------------
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

    def _fire_status(self, m: dict[str, Any], source: str, action: str = "unsub") -> None:
        if m["status"] == "subscribed":
            self._fire("subscribe", source, [*self._member_data(m),
                                             ("data[ip_signup]", "127.0.0.1")])
        elif m["status"] in ("unsubscribed", "archived"):
            self._fire("unsubscribe", source, [("data[action]", action),
                                               ("data[reason]", "manual"),
                                               *self._member_data(m)])

    # -- member state ----------------------------------------------------------------
    def _new_member(self, email: str, status: str, merge_fields: dict[str, Any]) -> dict[str, Any]:
        member: dict[str, Any] = {"id": subscriber_hash(email), "email_address": email,
                  "unique_email_id": uuid.uuid4().hex[:10], "email_type": "html",
                  "status": status, "merge_fields": dict(merge_fields), "list_id": self.list_id,
                  "marketing_permissions": [{"marketing_permission_id": "c0d2b0d3f1",
                                             "text": "Email", "enabled": status == "subscribed"}],
                  "last_changed": _now().isoformat(timespec="seconds")}
        self._members[member["id"]] = member
        return member

    def _set_status(self, m: dict[str, Any], status: str) -> bool:
        """Apply Mailchimp's compliance rule; return whether the status changed."""
        if status not in WRITABLE:
            raise Problem(400, "Invalid Resource", "The status is not a writable member status.",
                          [{"field": "status", "message": "Invalid status."}])
        current = m["status"]
        if current == "archived":
            current = self._archived_from.get(m["id"], current)
        if status == "subscribed" and current in ("unsubscribed", "cleaned"):
            raise Problem(400, "Member In Compliance State", _COMPLIANCE)
        if m["status"] == status:
            return False
        self._mark(m, status)
        return True

    def _mark(self, m: dict[str, Any], status: str) -> None:
        """Set a status as Mailchimp records it; archiving remembers the status before."""
        if status == "archived":
            self._archived_from[m["id"]] = m["status"]
        else:
            self._archived_from.pop(m["id"], None)
        m["status"], m["last_changed"] = status, _now().isoformat(timespec="seconds")

    def _rekey(self, m: dict[str, Any], new_email: str, source: str) -> None:
        new_hash = subscriber_hash(new_email)
        if new_hash in self._members or new_hash in self._forgotten:
            raise Problem(400, "Member Exists", "The new address is already on the list.")
        del self._members[m["id"]]
        old_email, m["id"], m["email_address"] = m["email_address"], new_hash, new_email
        self._members[new_hash] = m
        self._fire("upemail", source, [
            ("data[list_id]", self.list_id), ("data[new_id]", m["unique_email_id"]),
            ("data[new_email]", new_email), ("data[old_email]", old_email)])

    def _update(self, m: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        """An API write to an existing member: status, merge fields, permissions, address."""
        new_email = body.get("email_address")
        if isinstance(new_email, str) and new_email.lower() != m["email_address"].lower():
            self._rekey(m, new_email, "api")
        if isinstance(body.get("status"), str) and self._set_status(m, body["status"]):
            self._fire_status(m, "api")
        if isinstance(body.get("merge_fields"), dict) and body["merge_fields"]:
            m["merge_fields"].update(body["merge_fields"])
            self._fire("profile", "api", self._member_data(m))
        for permission in body.get("marketing_permissions") or []:
            for held in m["marketing_permissions"]:
                if held["marketing_permission_id"] == permission.get("marketing_permission_id"):
                    held["enabled"] = bool(permission.get("enabled"))
        return copy.deepcopy(m)

    def _create(self, email: Any, status: Any, merge_fields: Any) -> dict[str, Any]:
        if not isinstance(email, str) or "@" not in email:
            raise Problem(400, "Invalid Resource", "Please provide a valid email address.",
                          [{"field": "email_address", "message": "Invalid email address."}])
        if subscriber_hash(email) in self._forgotten:
            raise Problem(400, "Forgotten Email Not Subscribed", _FORGOTTEN)
        if status not in WRITABLE:
            raise Problem(400, "Invalid Resource", "The status is not a writable member status.",
                          [{"field": "status", "message": "Invalid status."}])
        member = self._new_member(email, str(status),
                                  merge_fields if isinstance(merge_fields, dict) else {})
        self._fire_status(member, "api")
        return copy.deepcopy(member)

    def _existing(self, match: re.Match[str]) -> dict[str, Any]:
        member = self._members.get(match["hash"])
        if member is None:
            raise Problem(404, _TITLES[404], "The requested resource could not be found.")
        return member

    # -- endpoints ---------------------------------------------------------------------
    def _ping(self, request: Request, match: re.Match[str]) -> Response:
        return Response(200, {"health_status": "Everything's Chimpy!"})

    def _get_list(self, request: Request, match: re.Match[str]) -> Response:
        with self.lock:
            counts = [m["status"] for m in self._members.values()]
        return Response(200, {"id": self.list_id, "name": "privasync emulator", "stats": {
            "member_count": counts.count("subscribed"),
            "unsubscribe_count": counts.count("unsubscribed"),
            "cleaned_count": counts.count("cleaned")}})

    def _create_webhook(self, request: Request, match: re.Match[str]) -> Response:
        body = self._json(request)
        flags: dict[str, dict[str, Any]] = {
            k: v if isinstance(v := body.get(k), dict) else {} for k in ("events", "sources")}
        events = [e for e in EVENTS if flags["events"].get(e, True)]
        sources = [s for s in SOURCES if flags["sources"].get(s, True)]
        try:
            hook_id = self.configure_webhook(str(body.get("url", "")), sources, events)
        except (RuntimeError, ValueError) as exc:
            raise Problem(400, "Invalid Resource", "The webhook could not be validated.",
                          [{"field": "url", "message": str(exc)}]) from exc
        return Response(200, {"id": hook_id, "url": body.get("url"), "list_id": self.list_id,
                              "events": {e: e in events for e in sorted(EVENTS)},
                              "sources": {s: s in sources for s in sorted(SOURCES)}})

    def _get_member(self, request: Request, match: re.Match[str]) -> Response:
        with self.lock:
            return Response(200, copy.deepcopy(self._existing(match)))

    def _patch_member(self, request: Request, match: re.Match[str]) -> Response:
        body = self._json(request)
        with self.lock:
            return Response(200, self._update(self._existing(match), body))

    def _put_member(self, request: Request, match: re.Match[str]) -> Response:
        body = self._json(request)
        email = body.get("email_address")
        if not isinstance(email, str) or subscriber_hash(email) != match["hash"]:
            raise Problem(400, "Invalid Resource", "The email address does not match the hash.",
                          [{"field": "email_address", "message": "Does not match the hash."}])
        with self.lock:
            member = self._members.get(match["hash"])
            if member is not None:
                return Response(200, self._update(member, body))
            return Response(200, self._create(email, body.get("status_if_new",
                                                              body.get("status")),
                                              body.get("merge_fields")))

    def _archive_member(self, request: Request, match: re.Match[str]) -> Response:
        with self.lock:
            member = self._existing(match)
            if member["status"] != "archived":
                self._mark(member, "archived")
                self._fire_status(member, "api", action="delete")
        return Response(204)

    def _delete_permanent(self, request: Request, match: re.Match[str]) -> Response:
        with self.lock:
            member = self._existing(match)
            del self._members[member["id"]]
            self._archived_from.pop(member["id"], None)
            self._forgotten.add(member["id"])
        return Response(204)

    def _batch(self, request: Request, match: re.Match[str]) -> Response:
        body = self._json(request)
        members = body.get("members")
        if not isinstance(members, list) or len(members) > MAX_BATCH:
            raise Problem(400, "Invalid Resource", f"Send a list of at most {MAX_BATCH} members.",
                          [{"field": "members", "message": f"At most {MAX_BATCH} members."}])
        created: list[dict[str, Any]] = []
        updated: list[dict[str, Any]] = []
        errors: list[dict[str, str]] = []
        with self.lock:
            for entry in members:
                entry = entry if isinstance(entry, dict) else {}
                try:
                    self._batch_one(entry, bool(body.get("update_existing")), created, updated)
                except Problem as problem:
                    errors.append({"email_address": str(entry.get("email_address", "")),
                                   "error": problem.detail,
                                   "error_code": _batch_code(problem.title)})
        return Response(200, {"new_members": created, "updated_members": updated,
                              "errors": errors, "total_created": len(created),
                              "total_updated": len(updated), "error_count": len(errors)})

    def _batch_one(self, entry: dict[str, Any], update_existing: bool,
                   created: list[dict[str, Any]], updated: list[dict[str, Any]]) -> None:
        email = entry.get("email_address")
        member = self._members.get(subscriber_hash(email)) if isinstance(email, str) else None
        if member is None:
            created.append(self._create(email, entry.get("status_if_new", entry.get("status")),
                                        entry.get("merge_fields")))
        elif not update_existing:
            raise Problem(400, "Member Exists", "The contact is already a list member.")
        else:
            updated.append(self._update(member, {k: v for k, v in entry.items()
                                                 if k != "email_address"}))

    # -- what people and admins do in Mailchimp's own UI --------------------------------
    def add_member(self, email: str, status: str = "subscribed",
                   merge_fields: dict[str, Any] | None = None) -> str:
        """Seed a member as a list import would (imports fire no webhooks); return its hash."""
        with self.lock:
            if subscriber_hash(email) in self._forgotten:
                raise ValueError("address was permanently deleted; only a signup form adds it")
            return str(self._new_member(email, status, merge_fields or {})["id"])

    def _person(self, email: str) -> dict[str, Any]:
        member = self._members.get(subscriber_hash(email))
        if member is None:
            raise LookupError("no such member on the list")
        return member

    def user_unsubscribe(self, email: str) -> None:
        """The person clicks the footer link: ``unsubscribe`` with action unsub, reason manual."""
        with self.lock:
            member = self._person(email)
            self._mark(member, "unsubscribed")
            self._fire_status(member, "user")

    def user_subscribe(self, email: str) -> None:
        """The person confirms a hosted signup form (even after an opt-out or a forget)."""
        with self.lock:
            self._forgotten.discard(subscriber_hash(email))
            member = self._members.get(subscriber_hash(email)) or self._new_member(
                email, "subscribed", {})
            self._mark(member, "subscribed")
            self._fire_status(member, "user")

    def mark_cleaned(self, email: str, reason: str = "hard") -> None:
        """A hard bounce (source admin) or a spam complaint, ``abuse`` (source user)."""
        with self.lock:
            member = self._person(email)
            self._mark(member, "cleaned")
            self._fire("cleaned", "user" if reason == "abuse" else "admin", [
                ("data[list_id]", self.list_id), ("data[campaign_id]", "4fjk2ma9xd"),
                ("data[reason]", reason), ("data[email]", member["email_address"])])

    def user_change_email(self, old: str, new: str) -> None:
        """The person changes their address in the profile centre: ``upemail``."""
        with self.lock:
            self._rekey(self._person(old), new, "user")

    def user_update_profile(self, email: str, **merges: Any) -> None:
        """The person edits merge fields in the profile centre: ``profile``."""
        with self.lock:
            member = self._person(email)
            member["merge_fields"].update(merges)
            self._fire("profile", "user", self._member_data(member))

    def member(self, email: str) -> dict[str, Any] | None:
        with self.lock:
            member = self._members.get(subscriber_hash(email))
            return copy.deepcopy(member) if member is not None else None

    @property
    def in_flight(self) -> int:
        with self.lock:
            return self._in_flight


def _batch_code(title: str) -> str:
    return {"Member In Compliance State": "MEMBER_IN_COMPLIANCE_STATE",
            "Member Exists": "ERROR_CONTACT_EXISTS"}.get(title, "ERROR_GENERIC")
