"""`privasync smoke` on Salesforce: a test Contact made, opted out, read back and removed,
through simple-salesforce, never through the connector (the smoke checks its work).

Facts, from Salesforce's REST API Developer Guide and Object Reference (v59.0): a Contact
needs ``LastName``; ``Email`` and ``HasOptedOutOfEmail`` are its address and e-mail
opt-out; ``DELETE /sobjects/Contact/{id}`` moves the record to the Recycle Bin (15 days),
where a SOQL ``query`` (not ``queryAll``) no longer finds it; errors are a list of
``{"errorCode", "message"}``. Leads are read too: privasync erases both.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from simple_salesforce.api import Salesforce, SFType
from simple_salesforce.exceptions import SalesforceError
from simple_salesforce.format import format_soql

from connectors.salesforce.client import Credentials
from connectors.transport import error_for_status
from core.errors import ConfigError, DeliveryError

LAST_NAME = "privasync smoke"
PEOPLE = ("Contact", "Lead")


def _refused(exc: SalesforceError, what: str) -> DeliveryError:
    """The first ``errorCode`` is the class; never the message (it may quote values)."""
    content = getattr(exc, "content", None)
    content = content if isinstance(content, list) else []
    code = content[0].get("errorCode") if content and isinstance(content[0], dict) else None
    status = getattr(exc, "status", None)
    return error_for_status(status if isinstance(status, int) and status else 401, what,
                            error_class=code if isinstance(code, str) else type(exc).__name__)


def _update(sobject: str, record_id: str, values: dict[str, Any], sf: Salesforce) -> Any:
    return _sobject(sf, sobject).update(record_id, values)


def _delete(sobject: str, record_id: str, sf: Salesforce) -> Any:
    return _sobject(sf, sobject).delete(record_id)


def _sobject(sf: Salesforce, name: str) -> SFType:
    """The REST handle of one sObject type (the client's ``sf.Contact``)."""
    return SFType(name, sf.session_id, sf.sf_instance, sf_version=sf.sf_version,
                  proxies=sf.proxies, session=sf.session, salesforce=sf)


class SalesforceSmoke:
    name = "salesforce"

    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials
        self._client: Salesforce | None = None

    def _sf(self) -> Salesforce:
        """The client, logged in on first use (a password login is a SOAP call)."""
        if self._client is None:
            c = self._credentials
            if not c.session_id and not (c.username and c.password):
                raise ConfigError("salesforce needs PRIVASYNC_SALESFORCE__SESSION_ID or "
                                  "USERNAME and PASSWORD")
            self._client = c.connect()
        return self._client

    def _call(self, what: str, fn: Callable[[Salesforce], Any]) -> Any:
        try:
            return fn(self._sf())
        except SalesforceError as exc:  # a failed login too (SalesforceAuthenticationFailed)
            raise _refused(exc, what) from None

    def _records(self, sobject: str, address: str) -> list[dict[str, Any]]:
        soql = format_soql(f"SELECT Id, HasOptedOutOfEmail FROM {sobject} "  # noqa: S608
                           "WHERE Email = {}", address)
        found = self._call(f"salesforce query {sobject}", lambda sf: sf.query_all(soql))
        return list(found.get("records") or [])

    def create(self, address: str) -> None:
        self._call("salesforce create Contact", lambda sf: _sobject(sf, "Contact").create(
            {"LastName": LAST_NAME, "Email": address, "HasOptedOutOfEmail": False}))

    def unsubscribe(self, address: str) -> None:
        for record in self._records("Contact", address):
            self._call("salesforce update Contact", partial(
                _update, "Contact", record["Id"], {"HasOptedOutOfEmail": True}))

    def opted_out(self, address: str) -> bool:
        """Every Contact with the address has opted out of e-mail."""
        found = self._records("Contact", address)
        return bool(found) and all(r.get("HasOptedOutOfEmail") is True for r in found)

    def holds(self, address: str) -> bool:
        return any(self._records(sobject, address) for sobject in PEOPLE)

    def remove(self, address: str) -> bool:
        """Delete every Contact and Lead with the address (to the Recycle Bin)."""
        removed = False
        for sobject in PEOPLE:
            for record in self._records(sobject, address):
                self._call(f"salesforce delete {sobject}",
                           partial(_delete, sobject, record["Id"]))
                removed = True
        return removed

    def close(self) -> None:
        if self._client is not None:
            self._client.session.close()
