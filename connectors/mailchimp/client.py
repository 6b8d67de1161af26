"""A thin Marketing API v3 client on plain ``requests``: auth, timeouts, errors.

The official SDK is unmaintained and mishandles ``application/problem+json``
(VENDOR_APIS.md C), so errors are parsed here, once, into core.errors.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from typing import Any

import requests

from connectors.ratelimits import Connections
from connectors.transport import (
    TRANSIENT_STATUSES,
    TimeoutSession,
    blip_retry,
    error_for_network,
    error_for_status,
    parse_retry_after,
)
from core.errors import ConfigError, DeliveryError

DEFAULT_RETRY_AFTER = 1.0
_DC = re.compile(r"[a-z]+[0-9]+")


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


def problem_error(response: requests.Response, what: str) -> DeliveryError:
    """Translate a failed response, reading the problem+json ``title`` as the error class."""
    status = response.status_code
    title = ""
    try:
        problem = response.json()
    except ValueError:
        problem = None
    if isinstance(problem, dict) and isinstance(problem.get("title"), str):
        title = problem["title"]
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if status == 429 and retry_after is None:
        retry_after = DEFAULT_RETRY_AFTER
    # Transient statuses keep the transport's http_NNN class so blip_retry knows them.
    error_class = None if status in TRANSIENT_STATUSES or not title else _slug(title)
    return error_for_status(status, what, retry_after=retry_after, error_class=error_class)


class MailchimpApi:
    """One list's slice of the API, over a pooled session with Basic auth. Each request
    holds one of the key's simultaneous connections (``connections``, shared by every
    process that shares it) while it runs."""

    def __init__(self, *, base_url: str, api_key: str, timeout: float,
                 connections: Connections | None = None) -> None:
        if not api_key:
            raise ConfigError("mailchimp api key is empty")
        self.base_url = (base_url or base_url_for(api_key)).rstrip("/")
        self._session = TimeoutSession(timeout)
        self._session.auth = ("privasync", api_key)
        self._connections = connections
        self._free: contextlib.AbstractContextManager[None] = contextlib.nullcontext()

    def _connection(self) -> contextlib.AbstractContextManager[None]:
        return self._connections.call() if self._connections is not None else self._free

    def call(self, method: str, path: str, what: str, *, body: Any = None,
             missing_ok: bool = False) -> Any:
        """Send one request; return its JSON (None for 204, or 404 when ``missing_ok``).

        Raises TransientError, PermanentError or AuthError. ``what`` names the
        call in error messages and must not contain personal data.
        """
        try:
            return self._call_once(method, path, what, body, missing_ok)
        except requests.RequestException as exc:
            raise error_for_network(exc, what) from exc

    def status(self, method: str, path: str, what: str) -> int:
        """Send one bodyless request and return its status: a 2xx, or 404 for a resource that
        is not there. For actions whose answer is the status alone (delete-permanent answers
        204 with no body), where absence is an answer rather than a failure.

        Raises as ``call`` does for any other status.
        """
        try:
            return self._status_once(method, path, what)
        except requests.RequestException as exc:
            raise error_for_network(exc, what) from exc

    @blip_retry
    def _status_once(self, method: str, path: str, what: str) -> int:
        with self._connection():
            response = self._session.request(method, f"{self.base_url}{path}")
        if response.status_code != 404 and response.status_code // 100 != 2:
            raise problem_error(response, what)
        return response.status_code

    @blip_retry
    def _call_once(self, method: str, path: str, what: str, body: Any,
                   missing_ok: bool) -> Any:
        with self._connection():
            response = self._session.request(method, f"{self.base_url}{path}", json=body)
        if response.status_code == 404 and missing_ok:
            return None
        if response.status_code // 100 != 2:
            raise problem_error(response, what)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise error_for_status(502, f"{what}: response is not JSON") from exc
