"""MailchimpEmulator: routes, auth, the connection cap, reset and what people do in the UI."""

from __future__ import annotations

import base64
import binascii
import copy
import hmac
import re
from collections.abc import Callable, Sequence
from typing import Any

from privasync.emulators.contracts.mailchimp.lists import AddWebhook
from privasync.emulators.http import Request, Response
from privasync.emulators.mailchimp.common import (
    _TITLES,
    EVENTS,
    PREFIX,
    SOURCES,
    Problem,
    subscriber_hash,
    validated,
)
from privasync.emulators.mailchimp.members import FORM_IP, _Members
from privasync.emulators.mailchimp.query import select
from privasync.emulators.mailchimp.webhooks import _WebhookSender

Route = Callable[[Request, "re.Match[str]"], Response]
_METHODS = frozenset({"GET", "POST", "PATCH", "PUT", "DELETE"})


class MailchimpEmulator(_Members):
    """One audience under ``/3.0``. ``latency_seconds`` slows every admitted request."""

    name = "mailchimp"

    def __init__(self, api_key: str = "emulatorkey-us6", list_id: str = "a6b5da1054",
                 max_connections: int = 10) -> None:
        super().__init__()
        self.api_key, self.list_id, self.max_connections = api_key, list_id, max_connections
        self.latency_seconds = 0.0
        self._members = {}
        self._archived_from = {}
        self._forgotten = set()
        self._tag_ids = {}
        self._in_flight = 0
        # Requests being answered at once, refused ones included, and the most seen: the
        # connections a client used, whatever the cap let through.
        self._open = 0
        self.peak_connections = 0
        self.refused_connections = 0
        self._webhooks = []
        self._sender = _WebhookSender()
        # A member is named by its MD5 subscriber hash, its address or its contact_id.
        lst, member = r"/lists/(?P<list>[0-9a-z]+)", r"/members/(?P<member>[^/]+)"
        self._add("GET", "/ping", self._ping)
        self._add("GET", lst, self._get_list)
        self._add("POST", lst, self._batch)
        self._add("GET", f"{lst}/webhooks", self._list_webhooks)
        self._add("POST", f"{lst}/webhooks", self._create_webhook)
        self._add("GET", f"{lst}/members", self._list_members)
        self._add("GET", f"{lst}{member}", self._get_member)
        self._add("PATCH", f"{lst}{member}", self._patch_member)
        self._add("PUT", f"{lst}{member}", self._put_member)
        self._add("DELETE", f"{lst}{member}", self._archive_member)
        self._add("POST", f"{lst}{member}/actions/delete-permanent", self._delete_permanent)
        self._refuse_other_methods()

    # -- plumbing ---------------------------------------------------------------
    def _add(self, method: str, pattern: str, handler: Route) -> None:
        def serve(request: Request, match: re.Match[str]) -> Response:
            if self.latency_seconds:
                self.linger(self.latency_seconds)
            try:
                if match.groupdict().get("list", self.list_id) != self.list_id:
                    raise Problem(404, _TITLES[404], "The requested resource could not be found.")
                return handler(request, match)
            except Problem as problem:
                return problem.response(request.path)
        self.route(method, re.escape(PREFIX) + pattern, serve)

    def _refuse_other_methods(self) -> None:
        """A known path asked with a method it does not take: 405 Method Not Allowed, as a
        problem document (documentation: the errors glossary's 405)."""
        allowed: dict[str, set[str]] = {}
        for method, compiled, _ in self._routes:
            allowed.setdefault(compiled.pattern, set()).add(method)

        def refuse(request: Request, match: re.Match[str]) -> Response:
            return self.error(405, "The requested method and resource are not compatible. "
                                   "See the Allow header for this resource's available "
                                   "methods.")
        for pattern, methods in allowed.items():
            for method in sorted(_METHODS - methods):
                self.route(method, pattern.removeprefix("^").removesuffix("$"), refuse)

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

    def dispatch(self, request: Request) -> Response:
        with self.lock:
            self._open += 1
            self.peak_connections = max(self.peak_connections, self._open)
        try:
            return super().dispatch(request)
        finally:
            with self.lock:
                self._open -= 1

    def admit(self, request: Request) -> Response | None:
        with self.lock:
            if self._in_flight >= self.max_connections:
                self.refused_connections += 1
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
            self._tag_ids.clear()
            self._webhooks.clear()
            self.calls.clear()
            self.log.clear()
            self.latency_seconds = 0.0
            self.peak_connections = self.refused_connections = 0
        self.clear_faults()
        self._sender.clear()

    # -- list endpoints -----------------------------------------------------------------
    def _ping(self, request: Request, match: re.Match[str]) -> Response:
        return Response(200, {"health_status": "Everything's Chimpy!"})

    def _get_list(self, request: Request, match: re.Match[str]) -> Response:
        with self.lock:
            counts = [m["status"] for m in self._members.values()]
        return Response(200, select({"id": self.list_id, "name": "privasync emulator", "stats": {
            "member_count": counts.count("subscribed"),
            "unsubscribe_count": counts.count("unsubscribed"),
            "cleaned_count": counts.count("cleaned")}}, request))

    def _create_webhook(self, request: Request, match: re.Match[str]) -> Response:
        """Events and sources left out are enabled (assumption: the specification gives no
        default; Mailchimp's form starts with all of them ticked)."""
        add = validated(request, AddWebhook)
        if not add.url:
            raise Problem(400, "Invalid Resource", "A webhook needs a URL.",
                          [{"field": "url", "message": "This value should not be blank."}])
        events_set = add.events.model_dump(exclude_none=True) if add.events else {}
        sources_set = add.sources.model_dump(exclude_none=True) if add.sources else {}
        events = [e for e in EVENTS if events_set.get(e, True)]
        sources = [s for s in SOURCES if sources_set.get(s, True)]
        try:
            hook_id = self.configure_webhook(add.url, sources, events)
        except (RuntimeError, ValueError) as exc:
            raise Problem(400, "Invalid Resource", "The webhook could not be validated.",
                          [{"field": "url", "message": str(exc)}]) from exc
        with self.lock:
            hook = next(h for h in self._webhooks if h.id == hook_id)
        return Response(200, self._webhook_view(hook))

    def _list_webhooks(self, request: Request, match: re.Match[str]) -> Response:
        with self.lock:
            hooks = [self._webhook_view(h) for h in self._webhooks]
        return Response(200, {"webhooks": hooks, "list_id": self.list_id,
                              "total_items": len(hooks)})

    # -- what people and admins do in Mailchimp's own UI --------------------------------
    def add_member(self, email: str, status: str = "subscribed",
                   merge_fields: dict[str, Any] | None = None, *, tags: Sequence[str] = (),
                   language: str = "") -> str:
        """Seed a member as a list import would (imports fire no webhooks); return its hash."""
        with self.lock:
            if subscriber_hash(email) in self._forgotten:
                raise ValueError("address was permanently deleted; only a signup form adds it")
            return str(self._new_member(email, status, merge_fields or {}, source="Import",
                                        tags=tags, language=language)["id"])

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
                email, "subscribed", {}, source="Hosted Signup Form")
            self._mark(member, "subscribed")
            member["ip_opt"] = FORM_IP
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
            self._touch(member)
            self._fire("profile", "user", self._member_data(member))

    def user_sms_subscribe(self, email: str, phone: str) -> None:
        """The contact opts in to SMS on a Mailchimp form: ``sms_subscribe``."""
        with self.lock:
            member = self._person(email)
            member["sms_phone_number"], member["sms_subscription_status"] = phone, "subscribed"
            self._fire_sms("sms_subscribe", member, "user")

    def user_sms_unsubscribe(self, email: str) -> None:
        """The contact replies STOP to an SMS: ``sms_unsubscribe``."""
        with self.lock:
            member = self._person(email)
            member["sms_subscription_status"] = "unsubscribed"
            self._fire_sms("sms_unsubscribe", member, "user")

    def user_change_sms_phone(self, email: str, phone: str) -> None:
        """The contact changes their SMS number: ``upsms``."""
        with self.lock:
            member = self._person(email)
            member["sms_phone_number"] = phone
            self._fire_sms("upsms", member, "user")

    def member(self, email: str) -> dict[str, Any] | None:
        with self.lock:
            member = self._members.get(subscriber_hash(email))
            return copy.deepcopy(member) if member is not None else None

    @property
    def in_flight(self) -> int:
        with self.lock:
            return self._in_flight
