"""HubSpotEmulator: routes, auth, the rolling rate limit, reset and the ``ui_*`` helpers."""

from __future__ import annotations

import hmac
import itertools
import re
import time
import uuid
from collections import deque

from privasync.emulators.contracts.hubspot.scopes import missing, required_scopes
from privasync.emulators.contracts.hubspot.webhooks import AccessTokenInfoRequest
from privasync.emulators.http import Handler, Request, Response
from privasync.emulators.hubspot.common import (
    NOT_SPECIFIED,
    NOT_SUBSCRIBED,
    SUBSCRIBED,
    HubSpotError,
    StatusChange,
    _Definition,
    _error,
)
from privasync.emulators.hubspot.contacts import _ContactRoutes
from privasync.emulators.hubspot.engagements import ENGAGEMENTS, _EngagementRoutes
from privasync.emulators.hubspot.preferences import _PreferenceRoutes
from privasync.emulators.hubspot.properties import _PropertyRoutes
from privasync.emulators.hubspot.validation import parse

_CONTACTS = "/crm/v3/objects/contacts"
_PREFS = "/communication-preferences"
_PROPERTIES = "/crm/v3/properties"
_TOKEN_INFO = "/oauth/v2/private-apps/get/access-token-info"  # noqa: S105 - a path
# What a private app made for privasync is granted: contacts read and write (batch read and
# update, GDPR delete; properties) and communication preferences (v3 definitions, v4 batch
# statuses). A test takes scopes away through ``scopes``; every call is checked against
# contracts.hubspot.scopes (the spec's security requirements).
GRANTED_SCOPES = ("oauth", "crm.objects.contacts.read", "crm.objects.contacts.write",
                  "communication_preferences.read_write",
                  "communication_preferences.statuses.batch.read",
                  "communication_preferences.statuses.batch.write")


def _missing_scopes(scopes: list[str], alternatives: int) -> Response:
    """403 MISSING_SCOPES: the spec's ``Error``; wording, ``requiredGranularScopes`` and the
    link as HubSpot answers (quoted in HubSpot Community threads; assumption)."""
    some = "One or more of" if alternatives > 1 else "All of"
    return _error(403, "This app hasn't been granted all required scopes to make this call. "
                       "Read more about required scopes here: https://developers.hubspot.com/"
                       "scopes.", "MISSING_SCOPES",
                  errors=[{"message": f"{some} the following scopes are required.",
                           "context": {"requiredGranularScopes": scopes}}],
                  links={"scopes": "https://developers.hubspot.com/scopes"})


class HubSpotEmulator(_EngagementRoutes, _ContactRoutes, _PreferenceRoutes, _PropertyRoutes):
    """HubSpot's contacts, their engagements and associations, contact properties and
    communication-preferences APIs, in memory, with webhooks."""

    name = "hubspot"

    def __init__(self, access_token: str = "pat-emulator",  # noqa: S107 - a fake's credentials
                 client_secret: str = "emulator-secret",  # noqa: S107
                 rate_limit: int = 100, window_seconds: float = 10.0,
                 portal_id: int = 62515, app_id: int = 54321) -> None:
        super().__init__()
        self.access_token, self.client_secret = access_token, client_secret
        self.rate_limit, self.window_seconds = rate_limit, window_seconds
        self.latency_seconds = 0.0  # each admitted call is answered this much later
        self.portal_id, self.app_id = portal_id, app_id
        self.scopes: tuple[str, ...] = GRANTED_SCOPES  # the private app's, as token-info says
        self._window: deque[float] = deque()
        # When each call was let through (monotonic), and how many got a 429: what a
        # test or the benchmark reads to judge a client's use of the window.
        self.admitted_at: list[float] = []
        self.rate_limited = 0
        self._contacts = {}
        self._ids = itertools.count(1001)
        self._definitions = {101: _Definition(101, "Product news"), 102: _Definition(102, "Offers")}
        self._statuses = {}
        self._opted_out = set()
        self._history = {}
        self._blocklist = set()
        self._merged_into = {}
        self._hooks = {}
        self._event_ids = itertools.count(1)
        self._sender = None
        self._deliveries = []
        self._reset_engagements()
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
            ("GET", f"{_PROPERTIES}/(?P<object>[^/]+)", self._h_properties),
            ("GET", f"{p}/v3/definitions", self._h_definitions),
            ("GET", f"{p}/v3/status/email/(?P<email>[^/]+)", self._h_v3_status),
            ("POST", f"{p}/v3/unsubscribe", self._h_v3_unsubscribe),
            ("POST", f"{p}/v3/subscribe", self._h_v3_subscribe),
            ("POST", f"{p}/v4/statuses/batch/write", self._h_v4_write),
            ("POST", f"{p}/v4/statuses/batch/read", self._h_v4_read),
            ("POST", f"{p}/v4/statuses/(?P<email>[^/]+)/unsubscribe-all", self._h_v4_unsub_all),
            ("POST", _TOKEN_INFO, self._h_token_info),
            ("POST", f"/crm/v3/objects/(?P<object>{'|'.join(ENGAGEMENTS)})/batch/read",
             self._h_engagement_read),
            ("POST", "/crm/v4/associations/(?P<from>[^/]+)/(?P<to>[^/]+)/batch/read",
             self._h_association_read),
        ]
        for method, pattern, handler in table:
            self.route(method, pattern, self._guarded(handler))

    def _guarded(self, handler: Handler) -> Handler:
        """Serialise handlers on the state lock and answer refusals in HubSpot's shape."""
        def run(request: Request, match: re.Match[str]) -> Response:
            if self.latency_seconds:
                self.linger(self.latency_seconds)
            try:
                with self.lock:
                    return handler(request, match)
            except HubSpotError as exc:
                return exc.response()
            except ValueError:
                return _error(400, "Invalid input JSON on line 1", "VALIDATION_ERROR")
        return run

    def _h_token_info(self, request: Request, _: re.Match[str]) -> Response:
        """A private app's token, given in the body (no Authorization header): who made it,
        for which portal and app, and its scopes; an unknown token is a 400."""
        given = parse(AccessTokenInfoRequest, request).tokenKey
        if not hmac.compare_digest(given, self.access_token):
            return _error(400, "The access token is invalid or was not found.",
                          "VALIDATION_ERROR")
        return Response(200, {"userId": 1, "hubId": self.portal_id, "appId": self.app_id,
                              "scopes": list(self.scopes)})

    def authorize(self, request: Request) -> Response | None:
        if request.path == _TOKEN_INFO:
            return None  # the token is what is asked about, in the body
        header = request.headers.get("authorization", "")
        if not header:
            return _error(401, "Authentication credentials not found.", "INVALID_AUTHENTICATION")
        if not hmac.compare_digest(header, f"Bearer {self.access_token}"):
            return _error(401, "Authentication credentials are invalid or expired.",
                          "INVALID_AUTHENTICATION")
        alternatives = required_scopes(request.method, request.path)
        lacking = missing(alternatives, frozenset(self.scopes)) if alternatives else []
        return _missing_scopes(lacking, len(alternatives or ())) if lacking else None

    def admit(self, request: Request) -> Response | None:
        """HubSpot's rolling 10-second window. No OpenAPI file describes rate limits: the
        limit, the 429 body (``errorType: RATE_LIMIT``, ``policyName:
        TEN_SECONDLY_ROLLING``) and the absence of Retry-After are from HubSpot's "API usage
        guidelines" (developers.hubspot.com/docs/api/usage-details) and observed answers."""
        now = time.monotonic()
        with self.lock:
            while self._window and self._window[0] <= now - self.window_seconds:
                self._window.popleft()
            if len(self._window) < self.rate_limit:
                self._window.append(now)
                self.admitted_at.append(now)
                return None
            self.rate_limited += 1
        body = {"status": "error", "message": "You have reached your ten_secondly_rolling limit.",
                "errorType": "RATE_LIMIT", "correlationId": str(uuid.uuid4()),
                "policyName": "TEN_SECONDLY_ROLLING", "requestId": str(uuid.uuid4())}
        return Response(429, body)

    def dispatch(self, request: Request) -> Response:
        """Every answer carries ``X-HubSpot-RateLimit-Max``, ``-Remaining`` and
        ``-Interval-Milliseconds`` and ``X-HubSpot-Correlation-Id``: header names from the
        "API usage guidelines" (documentation, not the spec; the daily and secondly headers
        are left out: private apps' answers are assumed not to need them here)."""
        response = super().dispatch(request)
        with self.lock:
            remaining = max(0, self.rate_limit - len(self._window))
        body = response.body if isinstance(response.body, dict) else {}
        correlation = body.get("correlationId") or uuid.uuid4()
        for key, value in (("X-HubSpot-RateLimit-Max", self.rate_limit),
                           ("X-HubSpot-RateLimit-Remaining", remaining),
                           ("X-HubSpot-RateLimit-Interval-Milliseconds",
                            int(self.window_seconds * 1000)),
                           ("X-HubSpot-Correlation-Id", correlation)):
            response.headers.setdefault(key, str(value))
        return response

    def error(self, status: int, message: str) -> Response:
        return _error(status, message, "OBJECT_NOT_FOUND" if status == 404 else "VALIDATION_ERROR")

    # -- lifecycle ----------------------------------------------------------------------
    def stop(self) -> None:
        self._stop_sender()
        super().stop()

    def reset(self) -> None:
        """Forget all state, webhooks, faults and counters; keep serving on the same port.

        Restarting the server costs half a second; tests share one and reset it.
        """
        self._stop_sender()
        self.clear_faults()
        with self.lock:
            self._window.clear()
            self.scopes = GRANTED_SCOPES
            self.admitted_at.clear()
            self.rate_limited = 0
            self.latency_seconds = 0.0
            self.calls.clear()
            self.log.clear()
            self._contacts.clear()
            self._ids = itertools.count(1001)
            self._statuses.clear()
            self._opted_out.clear()
            self._history.clear()
            self._blocklist.clear()
            self._merged_into.clear()
            self._hooks = {}
            self._deliveries.clear()
            self._reset_engagements()

    # -- helpers for tests and the demo (a marketer in the CRM UI) --------------------------
    def create_contact(self, email: str, **props: str) -> str:
        """Create a contact as if typed into the CRM; returns its id."""
        with self.lock:
            return self._create(self._writable({**props, "email": email}), "CRM_UI").id

    def form_submission(self, email: str, **props: str) -> str:
        """A person fills in a HubSpot form: a contact is created even for an address the
        GDPR delete blocklisted (HubSpot's blocklist does not cover forms or imports)."""
        with self.lock:
            return self._create(self._writable({**props, "email": email}), "FORM",
                                blocklisted=True).id

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
        """SUBSCRIBED, NOT_SUBSCRIBED or None (not specified), in v3's spelling; HubSpot's
        v4 answers say UNSUBSCRIBED for NOT_SUBSCRIBED."""
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
