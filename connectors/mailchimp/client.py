"""A thin Marketing API v3 client on plain ``requests``: auth, timeouts, errors.

The official SDK is unmaintained and mishandles ``application/problem+json``
(VENDOR_APIS.md C), so errors are parsed here, once, into core.errors.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import requests

from connectors.ratelimits import Connections
from connectors.transport import (
    SUCCESS,
    TRANSIENT_STATUSES,
    ErrorTable,
    TimeoutSession,
    error_for_status,
    json_answer,
    send,
)
from core.errors import ConfigError

DEFAULT_RETRY_AFTER = 1.0
_DC = re.compile(r"[a-z]+[0-9]+")
_MISSING_OK = frozenset(SUCCESS) | {404}


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: MD5 of the lower-cased address (not a security use)."""
    return hashlib.md5(email.lower().encode("utf-8"), usedforsecurity=False).hexdigest()


def base_url_for(api_key: str) -> str:
    """``https://{dc}.api.mailchimp.com/3.0`` from the key's ``-dc`` suffix."""
    secret, dash, dc = api_key.rpartition("-")
    if not (secret and dash and _DC.fullmatch(dc)):
        raise ConfigError("mailchimp api key has no data-centre suffix (like -us6)")
    return f"https://{dc}.api.mailchimp.com/3.0"


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")


def _title_class(status: int, problem: dict[str, Any]) -> str | None:
    """The problem+json ``title`` as the error class; transient statuses keep the
    transport's http_NNN class, so that the blip retry knows them."""
    title = problem.get("title")
    if status in TRANSIENT_STATUSES or not isinstance(title, str) or not title:
        return None
    return _slug(title)


# Mailchimp's 429 (over its 10 simultaneous connections) frees as soon as one ends.
MAILCHIMP = ErrorTable(quiet_429=lambda _headers: DEFAULT_RETRY_AFTER,
                       error_class=_title_class)


class _ConnectionsSession(TimeoutSession):
    """Holds one of the key's simultaneous connections while each request runs."""

    def __init__(self, timeout: float, connections: Connections | None) -> None:
        super().__init__(timeout)
        self.connections = connections

    def request(self, method: str | bytes, url: str | bytes,
                *args: object, **kwargs: object) -> requests.Response:
        if self.connections is None:
            return super().request(method, url, *args, **kwargs)
        with self.connections.call():
            return super().request(method, url, *args, **kwargs)


class MailchimpApi:
    """One list's slice of the API, over a pooled session with Basic auth. Each request
    holds one of the key's simultaneous connections (``connections``, shared by every
    process that shares it) while it runs."""

    def __init__(self, *, base_url: str, api_key: str, timeout: float,
                 connections: Connections | None = None) -> None:
        if not api_key:
            raise ConfigError("mailchimp api key is empty")
        self.base_url = (base_url or base_url_for(api_key)).rstrip("/")
        self._session = _ConnectionsSession(timeout, connections)
        self._session.auth = ("privasync", api_key)

    def call(self, method: str, path: str, what: str, *, body: Any = None,
             missing_ok: bool = False) -> Any:
        """Send one request; return its JSON (None for 204, or 404 when ``missing_ok``).

        Raises TransientError, PermanentError or AuthError. ``what`` names the
        call in error messages and must not contain personal data.
        """
        def read(response: requests.Response) -> Any:
            if response.status_code == 404 or response.status_code == 204 \
                    or not response.content:
                return None
            return json_answer(response, error_for_status(502, f"{what}: response is not JSON"))

        return send(self._session, method, f"{self.base_url}{path}", what=what,
                    errors=MAILCHIMP, accept=_MISSING_OK if missing_ok else SUCCESS, read=read,
                    json=body)

    def status(self, method: str, path: str, what: str) -> int:
        """Send one bodyless request and return its status: a 2xx, or 404 for a resource that
        is not there. For actions whose answer is the status alone (delete-permanent answers
        204 with no body), where absence is an answer rather than a failure.

        Raises as ``call`` does for any other status.
        """
        return send(self._session, method, f"{self.base_url}{path}", what=what,
                    errors=MAILCHIMP, accept=_MISSING_OK, read=_status)


def _status(response: requests.Response) -> int:
    return response.status_code
