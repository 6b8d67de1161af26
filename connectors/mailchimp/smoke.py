"""`privasync smoke` on Mailchimp: a test member made, unsubscribed, read back and removed,
over plain HTTP (the Marketing API v3), never through the connector (the smoke checks its
work).

Facts, from the Mailchimp Marketing API reference (v3.0, "List members"): a member is
``/lists/{list_id}/members/{subscriber_hash}``, the hash being the MD5 of the lower-cased
address; PUT adds or updates (``email_address``, ``status_if_new``, ``status``), PATCH
updates, GET answers 404 for an address the audience does not hold, and
``POST .../actions/delete-permanent`` erases it for good (204; the address cannot be
re-imported afterwards). Errors are problem+json whose ``title`` names the error class
("Invalid Resource", "Forgotten Email Not Subscribed"); the ``detail`` may quote the address
and is never shown. Auth is HTTP Basic with the API key; the data centre is the key's
``-usN`` suffix.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import requests

from connectors.transport import TimeoutSession, error_for_status
from core.errors import ConfigError, DeliveryError

_DC = re.compile(r"-([a-z]+[0-9]+)$")


def _hash(address: str) -> str:
    return hashlib.md5(address.lower().encode("utf-8"), usedforsecurity=False).hexdigest()


def _refused(answer: requests.Response, what: str) -> DeliveryError:
    try:
        problem = answer.json()
    except ValueError:
        problem = None
    title = problem.get("title") if isinstance(problem, dict) else None
    return error_for_status(answer.status_code, what,
                            error_class=title if isinstance(title, str) and title else None)


class MailchimpSmoke:
    name = "mailchimp"

    def __init__(self, *, base_url: str, api_key: str, list_id: str, timeout: float) -> None:
        key, base = api_key, base_url
        if not base:
            dc = _DC.search(key)
            if dc is None:
                raise ConfigError("PRIVASYNC_MAILCHIMP__API_KEY has no data-centre suffix "
                                  "(like -us6): set PRIVASYNC_MAILCHIMP__BASE_URL")
            base = f"https://{dc[1]}.api.mailchimp.com/3.0"
        self._base = base.rstrip("/")
        self._list = list_id
        self._http = TimeoutSession(timeout)
        self._http.auth = ("privasync", key)

    def _member(self, address: str) -> str:
        return f"{self._base}/lists/{self._list}/members/{_hash(address)}"

    def _send(self, what: str, method: str, url: str, body: object = None,
              missing_ok: bool = False) -> dict[str, Any] | None:
        answer = self._http.request(method, url, json=body)
        if missing_ok and answer.status_code == 404:
            return None
        if not answer.ok:
            raise _refused(answer, what)
        found = answer.json() if answer.content else {}
        return found if isinstance(found, dict) else {}

    def create(self, address: str) -> None:
        self._send("mailchimp put member", "PUT", self._member(address),
                   {"email_address": address, "status_if_new": "subscribed",
                    "status": "subscribed"})

    def unsubscribe(self, address: str) -> None:
        self._send("mailchimp patch member", "PATCH", self._member(address),
                   {"status": "unsubscribed"})

    def _status(self, address: str) -> str | None:
        found = self._send("mailchimp get member", "GET", self._member(address)
                           + "?fields=status", missing_ok=True)
        return None if found is None else str(found.get("status"))

    def opted_out(self, address: str) -> bool:
        return self._status(address) == "unsubscribed"

    def holds(self, address: str) -> bool:
        """Any member (archived too) still has the address."""
        return self._status(address) is not None

    def remove(self, address: str) -> bool:
        if not self.holds(address):
            return False
        self._send("mailchimp delete-permanent", "POST",
                   self._member(address) + "/actions/delete-permanent")
        return True

    def close(self) -> None:
        self._http.close()
