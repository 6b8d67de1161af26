"""The simple-salesforce client, built lazily, and the one place its exceptions become ours."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)
from simple_salesforce.format import format_soql

from connectors.ratelimits import Allowance
from connectors.salesforce import soap
from connectors.transport import TimeoutSession, blip_retry, error_for_network, error_for_status
from core.errors import AuthError, DeliveryError, PermanentError, TransientError
from core.model import require_aware

T = TypeVar("T")

# Salesforce sends no Retry-After. The daily allocation is a rolling 24 h window
# that frees slowly; the concurrency cap frees as soon as long requests finish.
DAILY_LIMIT_RETRY_AFTER = 900.0
CONCURRENCY_RETRY_AFTER = 30.0


class PlainHttpSession(TimeoutSession):
    """For emulators on loopback: simple-salesforce hard-codes ``https://``; send http."""

    def request(self, method: str | bytes, url: str | bytes,
                *args: object, **kwargs: object) -> requests.Response:
        if isinstance(url, str):
            url = url.replace("https://", "http://", 1)
        return super().request(method, url, *args, **kwargs)


@dataclass(frozen=True)
class Credentials:
    """How to reach one org: a session id (direct) or a username/password/token login."""

    instance_url: str
    session_id: str | None = field(default=None, repr=False)
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    security_token: str | None = field(default=None, repr=False)
    domain: str = "login"
    version: str = "59.0"
    timeout: float = 10.0

    def connect(self) -> Salesforce:
        """Build the client; the login mode does a SOAP login here (network I/O)."""
        session: requests.Session = (PlainHttpSession(self.timeout)
                                     if self.instance_url.startswith("http://")
                                     else TimeoutSession(self.timeout))
        if self.session_id is not None:
            return Salesforce(instance_url=self.instance_url, session_id=self.session_id,
                              session=session, version=self.version)
        return Salesforce(username=self.username, password=self.password,
                          security_token=self.security_token, domain=self.domain,
                          session=session, version=self.version)


def select(columns: str, sobject: str, where: str, *, order_by: str | None = None,
           limit: int | None = None) -> str:
    """A SOQL query from our own column and type names and an escaped WHERE clause."""
    soql = f"SELECT {columns} FROM {sobject} WHERE {where}"  # noqa: S608 - no outside text
    if order_by is not None:
        soql += f" ORDER BY {order_by}"
    if limit is not None:
        soql += f" LIMIT {int(limit)}"
    return soql


def soql_datetime(when: datetime) -> str:
    """A SOQL dateTime literal, unquoted, in UTC and floored to the second.

    ``2024-01-02T10:00:00Z``: SOQL literals carry no fractional seconds, and
    flooring only widens a ``>`` filter.
    """
    return require_aware(when, "SOQL dateTime").astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def any_in(**filters: Sequence[str]) -> str:
    """``A IN ('x') OR B IN ('y')`` over the non-empty filters, values escaped by format_soql."""
    return " OR ".join(format_soql(f"{name} IN {{}}", list(values))
                       for name, values in filters.items() if values)


def _error_code(content: object) -> str:
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("errorCode", ""))
    return ""


def _refused(exc: SalesforceError, code: str, what: str) -> DeliveryError:
    if code != "REQUEST_LIMIT_EXCEEDED":
        return AuthError(f"{what}: HTTP 403 {code}", error_class=code.lower() or "http_403")
    message = str(exc.content[0].get("message", "")) if isinstance(exc.content, list) else ""
    wait = CONCURRENCY_RETRY_AFTER if "Concurrent" in message else DAILY_LIMIT_RETRY_AFTER
    return TransientError(f"{what}: HTTP 403 {code}", retry_after=wait,
                          error_class="request_limit_exceeded")


def _permanent(default: str) -> Callable[[SalesforceError, str, str], DeliveryError]:
    def make(exc: SalesforceError, code: str, what: str) -> DeliveryError:
        return PermanentError(f"{what}: HTTP {exc.status} {code}",
                              error_class=code.lower() or default)
    return make


def _auth(exc: SalesforceError, code: str, what: str) -> DeliveryError:
    return AuthError(f"{what}: {type(exc).__name__} {code}", error_class=code.lower() or "auth")


# First match wins; anything else (SalesforceGeneralError) goes by status code.
_TABLE: tuple[tuple[type[SalesforceError], Callable[[SalesforceError, str, str],
                                                    DeliveryError]], ...] = (
    (SalesforceExpiredSession, _auth),
    (SalesforceAuthenticationFailed, _auth),
    (SalesforceRefusedRequest, _refused),
    (SalesforceMalformedRequest, _permanent("http_400")),
    (SalesforceResourceNotFound, _permanent("not_found")),
    (SalesforceMoreThanOneRecord, _permanent("more_than_one_record")),
)


def translate(exc: SalesforceError, what: str) -> DeliveryError:
    """Our error for a simple-salesforce one. Messages carry the call and code, never data."""
    code = _error_code(exc.content)
    for kind, make in _TABLE:
        if isinstance(exc, kind):
            return make(exc, code, what)
    return error_for_status(int(exc.status), what)


class SalesforceClient:
    """Runs calls against a lazily built client: blip-retried, errors translated, and each
    admitted by the org's daily API allocation (when an ``allowance`` is given)."""

    def __init__(self, credentials: Credentials, allowance: Allowance | None = None) -> None:
        self._credentials = credentials
        self._sf: Salesforce | None = None
        self._allowance = allowance

    def call(self, what: str, fn: Callable[[Salesforce], T]) -> T:
        """Run ``fn(sf)``; raise TransientError/PermanentError/AuthError on failure, and
        Throttled, before anything is sent, when the allocation is down to its reserve."""
        if self._allowance is not None:
            self._allowance.admit(self.daily_allocation)
        return self._call(what, fn)

    def daily_allocation(self) -> tuple[int, int]:
        """(DailyApiRequests Max, Remaining) from ``/limits``, outside the allowance; kept
        as the allowance's latest reading."""
        limits = self._call("limits", lambda sf: sf.limits())
        daily = limits.get("DailyApiRequests") if isinstance(limits, dict) else None
        if not isinstance(daily, dict) or not {"Max", "Remaining"} <= set(daily):
            raise PermanentError("limits: no DailyApiRequests in the answer",
                                 error_class="unexpected_answer")
        found = int(daily["Max"]), int(daily["Remaining"])
        if self._allowance is not None:
            self._allowance.record(*found)
        return found

    def _call(self, what: str, fn: Callable[[Salesforce], T]) -> T:
        @blip_retry
        def attempt() -> T:
            try:
                if self._sf is None:
                    self._sf = self._credentials.connect()
                return fn(self._sf)
            except SalesforceError as exc:
                raise translate(exc, what) from exc

        try:
            return attempt()
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise error_for_network(exc, what) from exc

    def check_version(self) -> None:
        """``GET /services/data/``: raise PermanentError if the org does not serve our API
        version (naming the newest it does)."""
        version = self._credentials.version
        answer = self.call("api versions", lambda sf: sf.session.get(
            f"https://{sf.sf_instance}/services/data/"))
        try:
            offered = [str(v["version"]) for v in answer.json()]
        except (ValueError, TypeError, KeyError):
            raise PermanentError("api versions: unexpected answer",
                                 error_class="salesforce_bad_response") from None
        if version not in offered:
            newest = max(offered, key=lambda v: tuple(int(p) for p in v.split(".")),
                         default="none")
            raise PermanentError(f"api version {version} is not served by this org (newest: "
                                 f"{newest})", error_class="salesforce_version")

    def query_all(self, what: str, soql: str, *,
                  include_deleted: bool = False) -> list[dict[str, Any]]:
        """Every row of ``soql``; with ``include_deleted``, by ``queryAll``, which also
        sees deleted records (IsDeleted true) in the Recycle Bin and, for about 24 h,
        purged ones (REST API Developer Guide, QueryAll)."""
        answer = self.call(what, lambda sf: sf.query_all(soql, include_deleted=include_deleted))
        return list(answer["records"])

    def update_collection(self, records: list[dict[str, Any]]) -> list[str | None]:
        """One sObject Collections PATCH (at most 200 records, allOrNone false).

        Per record, the statusCode Salesforce rejected it with, or None. Raises
        TransientError/PermanentError/AuthError when the whole call failed.
        """
        body = {"allOrNone": False, "records": records}
        return _status_codes(self.call("composite/sobjects", lambda sf: sf.restful(
            "composite/sobjects", method="PATCH", json=body)), len(records))

    def delete_collection(self, ids: Sequence[str]) -> list[str | None]:
        """One sObject Collections DELETE of at most 200 ids (allOrNone false: each on its
        own). Salesforce answers in the order of the ids but may delete in any order, so
        records that depend on each other go in separate calls.

        Per id, by position, the statusCode Salesforce refused it with, or None. Raises
        TransientError/PermanentError/AuthError when the whole call failed.
        """
        params = {"ids": ",".join(ids), "allOrNone": "false"}
        return _status_codes(self.call("composite/sobjects delete", lambda sf: sf.restful(
            "composite/sobjects", method="DELETE", params=params)), len(ids))

    def empty_recycle_bin(self, ids: Sequence[str]) -> list[str | None]:
        """One SOAP ``emptyRecycleBin()`` of at most 200 ids: purge them from the Recycle
        Bin now (they can no longer be undeleted). Raw HTTP through the client's own
        session, as simple-salesforce has no such method (see ``soap``).

        Per id, by position, the statusCode Salesforce refused to purge it with, or None.
        Raises TransientError/PermanentError/AuthError when the whole call failed.
        """
        def post(sf: Salesforce) -> list[str | None]:
            answer = sf.session.post(
                f"https://{sf.sf_instance}/services/Soap/u/{sf.sf_version}",
                data=soap.envelope(sf.session_id, ids).encode("utf-8"),
                headers={"Content-Type": "text/xml; charset=utf-8",
                         "SOAPAction": "emptyRecycleBin"})
            return soap.results(answer.status_code, answer.content, len(ids))
        return self.call(soap.WHAT, post)


def _status_codes(results: object, sent: int) -> list[str | None]:
    """Per item of a collections answer, by position (a failed item carries no id), its
    first error's statusCode, or None on success."""
    if not isinstance(results, list) or len(results) != sent:
        raise PermanentError("composite/sobjects: answer does not match the records sent",
                             error_class="unexpected_answer")
    return [None if r.get("success") else
            str(((r.get("errors") or [{}])[0]).get("statusCode") or "unknown")
            for r in results]
