"""A Salesforce REST emulator: the slice of ``/services/data/v59.0/`` privasync uses.

simple-salesforce 1.12.10 talks to it unchanged but for the instance URL (its
session must rewrite https to http, VENDOR_APIS.md B1). It keeps Contact, Lead,
Individual and ContactPointTypeConsent records in memory (the types and fields
of ``emulators.salesforce_schema``, which also answers describe) with
Salesforce's id prefixes, millisecond ``SystemModstamp``s from a strictly
increasing clock, a recycle bin for getDeleted (whose windows it truncates to
the minute, as Salesforce does), the SOQL subset of ``emulators.salesforce_soql``
(including ``SystemModstamp > 2024-01-02T10:00:00Z``, ORDER BY and LIMIT) with
``nextRecordsUrl`` paging, sObject Collections, the daily API counter and
Salesforce's list-shaped error bodies. An org can be made without the consent
object (``consent_objects=False``): SOQL on it is refused with INVALID_TYPE and
its REST resources with NOT_FOUND, as in an org without Data Protection and
Privacy.

Requests are held to ``emulators.contracts.salesforce``: a body that is not JSON (415
UNSUPPORTED_MEDIA_TYPE by content type, 400 JSON_PARSER_ERROR by content), a collection of
more than 200 records (400 EXCEEDED_ID_LIMIT) or a malformed one is refused as a whole.

Deleting, as the REST API does it: a delete (single or sObject Collections) moves the
record to the Recycle Bin, where ``queryAll`` and getDeleted still see it (IsDeleted
true) and ``undelete`` restores it for 15 days; then it is purged. ``emptyRecycleBin()``
(SOAP, the API's way to purge sooner) and ``empty_recycle_bin`` purge at once, and a
purged record stays visible to ``queryAll`` and getDeleted for 24 hours (the SOAP guide:
"Typically this time is 24 hours"), then is gone. A collections DELETE processes its
ids last to first: the guide promises the order of the results only, so a client that
needs one record gone before another must use separate calls. A failed item of a
collections answer carries no ``id`` (the guide's example), so clients match by position.

The user's rights can be narrowed (``withheld``, see ``emulators.salesforce.access``):
describe then tells what is missing, and the calls that need it are refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from emulators.contracts.salesforce import (
    API_VERSION,
    COLLECTION_LIMIT,
    EMPTY_RECYCLE_BIN_LIMIT,
    PURGED_STILL_QUERYABLE_HOURS,
    RECYCLE_BIN_DAYS,
    CollectionDelete,
    CollectionUpdate,
)
from emulators.http import Emulator, Request, Response
from emulators.salesforce import soap
from emulators.salesforce.access import USER_PERMISSIONS, Access
from emulators.salesforce_schema import (
    BOOLEANS,
    CONSENT,
    DATETIMES,
    FIELDS,
    PREFIX,
    Problem,
    as_json,
    blank_is_null,
    check_columns,
    describe,
    field_problem,
    render,
    to_minute,
)
from emulators.salesforce_soql import Parser, Refused, fold

API = f"/services/data/v{API_VERSION}"
SOAP = f"/services/Soap/u/{API_VERSION}"
VERSIONS = "/services/data"
# Lookups that hold their parent: an API delete of a record a live record still points at
# through one of these fails with DELETE_FAILED. Assumption: the Object Reference does not
# say what deleting a referenced Individual does; this is the strictest reading (a
# "restrict delete" lookup), so a client that relies on deletion order inside one call
# is caught.
HOLDING = ("IndividualId", "PartyId")
BIN = timedelta(days=RECYCLE_BIN_DAYS)
PURGED_VISIBLE = timedelta(hours=PURGED_STILL_QUERYABLE_HOURS)
REQUIRED = {"Contact": "LastName", "Lead": "LastName", CONSENT: "Name"}

Row = dict[str, Any]


@dataclass
class _Record:
    type: str
    values: Row
    deleted_at: datetime | None = None  # in the Recycle Bin since
    purged_at: datetime | None = None  # emptied from the bin (queryAll sees it a while)
    reject_with: str | None = None
    reject_delete_with: str | None = None

    @property
    def id(self) -> str:
        return str(self.values["Id"])


class SalesforceEmulator(Emulator):
    """Contacts, Leads, Individuals and their consent rows behind the REST endpoints
    privasync calls."""

    name = "salesforce"

    def __init__(self, session_id: str = "00Demulator!session", api_limit: int = 15000,
                 concurrent_limit: int = 25, *, page_size: int = 2000,
                 consent_objects: bool = True, withheld: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.access = Access(withheld)
        self.types = frozenset(FIELDS) - (set() if consent_objects else {CONSENT})
        self.session_id = session_id
        self.api_limit = api_limit
        self.concurrent_limit = concurrent_limit
        self.page_size = page_size
        self.api_used = 0
        self._in_flight = 0
        self._records: dict[str, _Record] = {}
        self._cursors: dict[str, list[Row]] = {}
        self._seq = 0
        self._last_tick: datetime | None = None
        self._offset = timedelta(0)
        self._emptied_before: datetime | None = None
        obj = r"(?P<type>\w+)"
        for method, pattern, handler in [
            ("GET", "/limits/?", self._limits),
            ("GET", f"/sobjects/{obj}/updated/?", self._updated),
            ("GET", f"/sobjects/{obj}/deleted/?", self._deleted),
            ("GET", f"/sobjects/{obj}/describe/?", self._describe),
            ("GET", "/(?P<kind>query|queryAll)/?", self._query),
            ("GET", r"/(?:query|queryAll)/(?P<locator>01g\w+)-(?P<offset>\d+)", self._more),
            ("PATCH", "/composite/sobjects/?", self._collection_update),
            ("DELETE", "/composite/sobjects/?", self._collection_delete),
            ("POST", f"/sobjects/{obj}/?", self._create),
            ("GET", rf"/sobjects/{obj}/(?P<id>\w{{15,18}})", self._get),
            ("PATCH", rf"/sobjects/{obj}/(?P<id>\w{{15,18}})", self._patch),
            ("DELETE", rf"/sobjects/{obj}/(?P<id>\w{{15,18}})", self._delete),
        ]:
            self.route(method, API + pattern, self._guarded(handler))
        self.route("GET", "/services/data/?", self._versions)
        self.route("POST", SOAP, self._soap)

    # -- base hooks -------------------------------------------------------------
    def error(self, status: int, message: str) -> Response:
        codes = {400: "MALFORMED_QUERY", 401: "INVALID_SESSION_ID", 403: "INSUFFICIENT_ACCESS",
                 404: "NOT_FOUND"}
        return self._fail(status, codes.get(status, "UNKNOWN_EXCEPTION"), message)

    def _versions(self, request: Request, match: re.Match[str]) -> Response:
        """``GET /services/data/``: the API versions this org serves (public, uncounted)."""
        version = API.rsplit("v", 1)[1]
        return Response(200, [{"label": "Winter '24", "url": API, "version": version}])

    def authorize(self, request: Request) -> Response | None:
        if request.path.rstrip("/") in (VERSIONS, SOAP):
            return None  # the version list needs no session; SOAP carries it in its body
        if request.headers.get("authorization") != f"Bearer {self.session_id}":
            return self._fail(401, "INVALID_SESSION_ID", "Session expired or invalid")
        return None

    def admit(self, request: Request) -> Response | None:
        if request.path.rstrip("/") == VERSIONS:
            return None
        with self.lock:
            if self.api_used >= self.api_limit:
                return self._fail(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            if self._in_flight >= self.concurrent_limit:
                return self._fail(403, "REQUEST_LIMIT_EXCEEDED",
                                  "ConcurrentPerOrgLongTxn Limit exceeded.")
            self.api_used += 1
            self._in_flight += 1
        return None

    def release(self, request: Request) -> None:
        if request.path.rstrip("/") == VERSIONS:
            return  # never counted in
        with self.lock:
            self._in_flight -= 1

    def dispatch(self, request: Request) -> Response:
        response = super().dispatch(request)
        with self.lock:
            response.headers.setdefault("Sforce-Limit-Info",
                                        f"api-usage={self.api_used}/{self.api_limit}")
        return response

    # -- admin helpers (in-process, as someone clicking in Salesforce) -----------
    def create_contact(self, email: str, first_name: str = "", last_name: str = "X",
                       opted_out: bool = False, with_individual: bool = False) -> str:
        return self._create_person("Contact", email, first_name, last_name, opted_out,
                                   with_individual)

    def create_lead(self, email: str, first_name: str = "", last_name: str = "X",
                    opted_out: bool = False, with_individual: bool = False) -> str:
        return self._create_person("Lead", email, first_name, last_name, opted_out,
                                   with_individual)

    def ui_set_opt_out(self, record_id: str, opted_out: bool) -> None:
        self._ui_write(record_id, {"HasOptedOutOfEmail": opted_out})

    def ui_edit(self, record_id: str, **values: Any) -> None:
        """Edit fields of a record as a user would (e.g. ``FirstName="Ada"``); bumps
        SystemModstamp. Raises Refused for a field the record's type lacks."""
        with self.lock:
            rec = self._live(record_id)
            problem = self._write_error(rec, values)
            if problem is not None:
                raise Refused(400, problem[0], problem[1])
            self._store(rec, values)

    def ui_set_solicit_opt_out(self, record_id: str, opted_out: bool) -> None:
        """Tick "Don't Solicit" on the record's Individual (created if missing)."""
        self._ui_write(self._individual_of(record_id), {"HasOptedOutSolicit": opted_out})

    def ui_set_should_forget(self, record_id: str) -> None:
        """Tick "Forget this Individual" on the record's Individual (created if missing)."""
        self._ui_write(self._individual_of(record_id), {"ShouldForget": True})

    def ui_delete(self, record_id: str) -> None:
        """Delete a record as a user would: to the Recycle Bin."""
        with self.lock:
            self._to_bin(self._live(record_id))

    def undelete(self, record_id: str) -> None:
        """Restore a record from the Recycle Bin (SOAP ``undelete()``, or the bin's Restore
        button); raises Refused if it is not there (live, purged or unknown)."""
        with self.lock:
            self._sweep()
            rec = self._records.get(record_id)
            if rec is None or rec.deleted_at is None or rec.purged_at is not None:
                raise Refused(400, "UNDELETE_FAILED", "record is not in the Recycle Bin")
            rec.deleted_at = None
            rec.values.update(IsDeleted=False, SystemModstamp=self._tick())

    def empty_recycle_bin(self, ids: list[str]) -> list[str | None]:
        """Purge these records from the Recycle Bin now (what ``emptyRecycleBin()`` does);
        per id, the statusCode it was refused with, or None."""
        with self.lock:
            return [code for _, code, _ in self._empty(ids)]

    def in_recycle_bin(self, record_id: str) -> bool:
        """Whether the record is deleted and still restorable."""
        with self.lock:
            self._sweep()
            rec = self._records.get(record_id)
            return rec is not None and rec.deleted_at is not None and rec.purged_at is None

    def withhold(self, *rights: str) -> None:
        """Take rights from the integration user (see ``emulators.salesforce.access``)."""
        with self.lock:
            self.access.withheld.update(rights)

    def add_consent(self, individual_id: str, contact_point_type: str = "Email",
                    status: str = "OptIn", source: str = "web form") -> str:
        """A ContactPointTypeConsent row of the Individual, captured now, as a consent
        form would write it. Raises Refused where the org lacks the object or the
        Individual does not exist."""
        with self.lock:
            if CONSENT not in self.types:
                raise Refused(400, "INVALID_TYPE", f"sObject type '{CONSENT}' is not supported.")
            self._live(individual_id, "Individual")
            now = self._tick()
            return self._insert(CONSENT, {
                "Name": f"{contact_point_type} {status}", "PartyId": individual_id,
                "ContactPointType": contact_point_type, "PrivacyConsentStatus": status,
                "CaptureContactPointType": contact_point_type, "CaptureDate": now,
                "CaptureSource": source, "EffectiveFrom": now})

    def reject_writes(self, record_id: str,
                      status_code: str = "FIELD_CUSTOM_VALIDATION_EXCEPTION") -> None:
        """Make API writes to this record fail, as a validation rule would."""
        with self.lock:
            self._live(record_id).reject_with = status_code

    def reject_deletes(self, record_id: str, status_code: str = "DELETE_FAILED") -> None:
        """Make API deletes of this record fail, as a Contact tied to a Case does."""
        with self.lock:
            self._live(record_id).reject_delete_with = status_code

    def set_earliest_deleted_available(self, when: datetime) -> None:
        """Simulate an emptied recycle bin: getDeleted knows no delete before ``when``."""
        with self.lock:
            self._emptied_before = when.astimezone(UTC)

    def record(self, record_id: str) -> dict[str, Any] | None:
        """A record's values, deleted or not; None once purged for good (or unknown)."""
        with self.lock:
            self._sweep()
            rec = self._records.get(record_id)
            return dict(rec.values) if rec is not None else None

    def find_by_email(self, email: str) -> list[str]:
        with self.lock:
            return [r.id for r in self._records.values() if r.deleted_at is None
                    and fold(r.values.get("Email")) == fold(email)]

    def now(self) -> datetime:
        """The org's clock: real UTC now, plus whatever ``advance`` added."""
        with self.lock:
            return datetime.now(UTC) + self._offset

    def advance(self, delta: timedelta) -> None:
        """Move the org's clock forward, so tests cross minute boundaries without sleeping."""
        with self.lock:
            self._offset += delta

    # -- the Recycle Bin -----------------------------------------------------------
    def _earliest_deleted(self) -> datetime:
        """getDeleted's earliestDateAvailable: 15 days back, or the last emptying."""
        horizon = to_minute(self.now() - BIN)
        return horizon if self._emptied_before is None else max(horizon, self._emptied_before)

    def _sweep(self) -> None:
        """Purge what the bin held for 15 days; forget purged records after 24 hours."""
        now = self.now()
        for rec in list(self._records.values()):
            if rec.deleted_at is not None and rec.purged_at is None and rec.deleted_at < now - BIN:
                rec.purged_at = rec.deleted_at + BIN
            if rec.purged_at is not None and rec.purged_at < now - PURGED_VISIBLE:
                del self._records[rec.id]

    def _to_bin(self, rec: _Record) -> None:
        now = self._tick()
        rec.deleted_at = now
        rec.values.update(IsDeleted=True, SystemModstamp=now)

    def _api_delete(self, rec: _Record) -> Problem | None:
        """Delete a live record for the API user, or say why Salesforce would not."""
        if not self.access.can(rec.type, "delete"):
            return "INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights on object id", []
        if rec.reject_delete_with is not None:
            return rec.reject_delete_with, "cannot delete", []
        holders = [r for r in self._records.values() if r.deleted_at is None
                   and any(r.values.get(f) == rec.id for f in HOLDING)]
        if holders:
            return ("DELETE_FAILED", f"Your attempt to delete this {rec.type} could not be "
                    f"completed because {len(holders)} live record(s) refer to it", [])
        self._to_bin(rec)
        return None

    def _empty(self, ids: list[str]) -> list[soap.Result]:
        self._sweep()
        results: list[soap.Result] = []
        for record_id in ids:
            rec = self._records.get(record_id)
            if rec is None or rec.deleted_at is None or rec.purged_at is not None:
                # Assumption: the guide names no code for an id not in the bin.
                results.append((record_id, "INVALID_ID_FIELD", "not in the Recycle Bin"))
                continue
            rec.purged_at = self.now()
            results.append((record_id, None, ""))
        return results

    # -- state ------------------------------------------------------------------
    def _tick(self) -> datetime:
        now = self.now()
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        if self._last_tick is not None and now <= self._last_tick:
            now = self._last_tick + timedelta(milliseconds=1)
        self._last_tick = now
        return now

    def _insert(self, sobject: str, values: Row) -> str:
        self._seq += 1
        record_id = f"{PREFIX[sobject]}{self._seq:012d}AAA"
        row: Row = dict.fromkeys(FIELDS[sobject])
        row.update({k: False for k in BOOLEANS if k in row})
        row.update(blank_is_null(values), Id=record_id, SystemModstamp=self._tick())
        self._records[record_id] = _Record(sobject, row)
        return record_id

    def _store(self, rec: _Record, values: Row) -> None:
        rec.values.update(blank_is_null(values), SystemModstamp=self._tick())

    def _create_person(self, sobject: str, email: str, first_name: str, last_name: str,
                       opted_out: bool, with_individual: bool) -> str:
        with self.lock:
            individual = (self._insert("Individual", {"LastName": last_name})
                          if with_individual else None)
            return self._insert(sobject, {"Email": email, "FirstName": first_name,
                                          "LastName": last_name, "HasOptedOutOfEmail": opted_out,
                                          "IndividualId": individual})

    def _individual_of(self, record_id: str) -> str:
        with self.lock:
            rec = self._live(record_id)
            if rec.type == "Individual":
                return rec.id
            if rec.values["IndividualId"] is None:
                individual = self._insert("Individual", {"LastName": rec.values["LastName"]})
                rec.values.update(IndividualId=individual, SystemModstamp=self._tick())
            return str(rec.values["IndividualId"])

    def _ui_write(self, record_id: str, values: Row) -> None:
        with self.lock:
            self._store(self._live(record_id), values)

    def _live(self, record_id: str, sobject: str | None = None) -> _Record:
        self._sweep()
        rec = self._records.get(record_id)
        if rec is None and len(record_id) == 15:
            rec = next((r for i, r in self._records.items() if i[:15] == record_id), None)
        if rec is None or rec.purged_at is not None or (sobject and rec.type != sobject):
            raise Refused(404, "NOT_FOUND", "The requested resource does not exist")
        if rec.deleted_at is not None:
            # A record in the Recycle Bin: 404 ENTITY_IS_DELETED (assumption for the status;
            # the code is the one collections answers carry).
            raise Refused(404, "ENTITY_IS_DELETED", "entity is deleted")
        return rec

    def _lookup(self, rec: _Record, column: str) -> Any:
        if "." not in column:
            return rec.values.get(column)
        parent = self._records.get(str(rec.values.get("IndividualId")))
        return parent.values.get(column.split(".", 1)[1]) if parent is not None else None

    def _is_individual(self, record_id: str) -> bool:
        rec = self._records.get(record_id)
        return rec is not None and rec.type == "Individual"

    def _write_error(self, rec: _Record, values: Row, *, api: bool = False) -> Problem | None:
        """Why Salesforce would refuse writing ``values`` to ``rec``; ``api``: as the
        integration user, whose object and field rights apply."""
        if api and not self.access.can(rec.type, "edit"):
            return "INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights on object id", []
        for name, value in values.items():
            problem = (None if name == "attributes"
                       else field_problem(rec.type, name, value, self._is_individual))
            if problem is None and api and not self.access.field(rec.type, name, "edit"):
                problem = ("INVALID_FIELD_FOR_INSERT_UPDATE",
                           f"Unable to create/update fields: {name}", [name])
            if problem is not None:
                return problem
        if rec.reject_with is not None:
            return rec.reject_with, "A validation rule rejected the record", []
        return None

    # -- HTTP handlers ----------------------------------------------------------
    def _guarded(self, handler: Callable[[Request, re.Match[str]], Response]
                 ) -> Callable[[Request, re.Match[str]], Response]:
        def run(request: Request, match: re.Match[str]) -> Response:
            try:
                with self.lock:
                    self._sweep()
                    return handler(request, match)
            except Refused as refused:
                return self._fail(refused.status, refused.code, refused.message)
        return run

    def _fail(self, status: int, code: str, message: str) -> Response:
        return Response(status, [{"message": message, "errorCode": code}])

    @staticmethod
    def _body(request: Request) -> Any:
        """The request's JSON body; 415 for another media type, 400 for bad JSON (the REST
        guide: 415 "The entity in the request is in a format that's not supported"; the
        code UNSUPPORTED_MEDIA_TYPE is an assumption)."""
        if not request.body:
            return None
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json":
            raise Refused(415, "UNSUPPORTED_MEDIA_TYPE",
                          f"Content type '{media or 'none'}' not supported")
        try:
            return request.json()
        except ValueError:
            raise Refused(400, "JSON_PARSER_ERROR", "The request body is not JSON") from None

    def _sobject(self, name: str) -> str:
        """A type of this org the user may read, named in a REST path; 404 for any other."""
        if name not in self.types or not self.access.can(name, "read"):
            raise Refused(404, "NOT_FOUND", f"The requested resource does not exist: {name}")
        return name

    def _queried_type(self, name: str) -> str:
        """A type of this org named in SOQL; Salesforce answers 400 INVALID_TYPE for any other."""
        if name not in self.types or not self.access.can(name, "read"):
            raise Refused(400, "INVALID_TYPE", f"sObject type '{name}' is not supported.")
        return name

    def _window(self, request: Request) -> tuple[datetime, datetime]:
        bounds = []
        for name in ("start", "end"):
            try:
                when = datetime.fromisoformat(request.arg(name) or "")
            except ValueError:
                when = None
            if when is None or when.tzinfo is None:
                raise Refused(400, "INVALID_QUERY_PARAMETER_VALUE",
                               f"{name} must be a dateTime with a time zone")
            bounds.append(to_minute(when))
        return bounds[0], bounds[1]

    def _limits(self, request: Request, match: re.Match[str]) -> Response:
        return Response(200, {"DailyApiRequests": {"Max": self.api_limit,
                                                   "Remaining": self.api_limit - self.api_used}})

    def _updated(self, request: Request, match: re.Match[str]) -> Response:
        sobject = self._sobject(match["type"])
        start, end = self._window(request)
        ids = [r.id for r in self._records.values() if r.type == sobject and r.deleted_at is None
               and start < r.values["SystemModstamp"] <= end]
        return Response(200, {"ids": ids, "latestDateCovered": render(end)})

    def _deleted(self, request: Request, match: re.Match[str]) -> Response:
        sobject = self._sobject(match["type"])
        start, end = self._window(request)
        earliest = self._earliest_deleted()
        gone = [{"id": r.id, "deletedDate": render(r.deleted_at)} for r in self._records.values()
                if r.type == sobject and r.deleted_at is not None
                and r.deleted_at >= earliest and start < r.deleted_at <= end]
        return Response(200, {"deletedRecords": gone,
                              "earliestDateAvailable": render(earliest),
                              "latestDateCovered": render(end)})

    def _query(self, request: Request, match: re.Match[str]) -> Response:
        query = Parser(request.arg("q") or "", self._lookup,
                       lambda column: column.rsplit(".", 1)[-1] in DATETIMES).parse()
        if query.type == "UserPermissionAccess":
            return self._paged([self._permissions_row(query.fields)])
        self._queried_type(query.type)
        check_columns(query.type, query.touched,
                      lambda sobject, name: self.access.field(sobject, name, "read"))
        include_deleted = match["kind"] == "queryAll"
        hits = [r for r in self._records.values() if r.type == query.type
                and (r.deleted_at is None or include_deleted)
                and (query.where is None or query.where(r))]
        if query.order is not None:
            column, descending = query.order
            hits.sort(key=lambda r: (self._lookup(r, column) is None, self._lookup(r, column)),
                      reverse=descending)
        return self._paged([self._row(r, query.fields) for r in hits[:query.limit]])

    def _permissions_row(self, columns: list[str]) -> Row:
        """The one UserPermissionAccess row: the current user's user permissions."""
        row: Row = {"attributes": {"type": "UserPermissionAccess",
                                   "url": f"{API}/sobjects/UserPermissionAccess/x"}}
        for column in columns:
            if column not in USER_PERMISSIONS:
                raise Refused(400, "INVALID_FIELD",
                              f"No such column '{column}' on entity 'UserPermissionAccess'")
            row[column] = self.access.permission(column)
        return row

    def _paged(self, rows: list[Row]) -> Response:
        self._seq += 1
        locator = f"01g{self._seq:015d}"
        self._cursors[locator] = rows
        return self._page(locator, 0)

    def _more(self, request: Request, match: re.Match[str]) -> Response:
        if match["locator"] not in self._cursors:
            raise Refused(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(match["locator"], int(match["offset"]))

    def _page(self, locator: str, offset: int) -> Response:
        rows = self._cursors[locator]
        end = offset + self.page_size
        body: Row = {"totalSize": len(rows), "done": end >= len(rows),
                     "records": rows[offset:end]}
        if body["done"]:
            del self._cursors[locator]
        else:
            body["nextRecordsUrl"] = f"{API}/query/{locator}-{end}"
        return Response(200, body)

    def _row(self, rec: _Record, columns: list[str]) -> Row:
        row: Row = {"attributes": {"type": rec.type, "url": f"{API}/sobjects/{rec.type}/{rec.id}"}}
        for column in columns:
            if "." in column and rec.type != "Individual":
                parent_id = rec.values.get("IndividualId")
                parent = self._records.get(str(parent_id))
                if parent is None:
                    row["Individual"] = None
                    continue
                nested = row.get("Individual") or self._row(parent, [])
                nested[column.split(".", 1)[1]] = as_json(self._lookup(rec, column))
                row["Individual"] = nested
            else:
                row[column] = as_json(rec.values.get(column))
        return row

    def _describe(self, request: Request, match: re.Match[str]) -> Response:
        sobject = self._sobject(match["type"])
        access = self.access
        return Response(200, describe(
            sobject, lambda name: access.field(sobject, name, "read"),
            lambda name: access.field(sobject, name, "edit"),
            {"createable": access.can(sobject, "create"),
             "updateable": access.can(sobject, "edit"),
             "deletable": access.can(sobject, "delete")}))

    def _get(self, request: Request, match: re.Match[str]) -> Response:
        rec = self._live(match["id"], self._sobject(match["type"]))
        readable = [f for f in FIELDS[rec.type] if self.access.field(rec.type, f, "read")]
        return Response(200, self._row(rec, readable))

    def _create(self, request: Request, match: re.Match[str]) -> Response:
        sobject = self._sobject(match["type"])
        values = self._body(request) or {}
        if not self.access.can(sobject, "create"):
            raise Refused(400, "INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights")
        probe = _Record(sobject, dict.fromkeys(FIELDS[sobject]))
        problem = self._write_error(probe, values)
        if problem is not None:
            raise Refused(400, problem[0], problem[1])
        required = REQUIRED.get(sobject)
        if required is not None and not values.get(required):
            raise Refused(400, "REQUIRED_FIELD_MISSING",
                          f"Required fields are missing: [{required}]")
        record_id = self._insert(sobject, values)
        return Response(201, {"id": record_id, "success": True, "errors": []})

    def _patch(self, request: Request, match: re.Match[str]) -> Response:
        rec = self._live(match["id"], self._sobject(match["type"]))
        values = self._body(request) or {}
        problem = self._write_error(rec, values, api=True)
        if problem is not None:
            raise Refused(400, problem[0], problem[1])
        self._store(rec, values)
        return Response(204)

    def _delete(self, request: Request, match: re.Match[str]) -> Response:
        problem = self._api_delete(self._live(match["id"], self._sobject(match["type"])))
        if problem is not None:
            # Assumption: a refused single delete answers 400 with the item's code.
            raise Refused(400, problem[0], problem[1])
        return Response(204)

    def _collection_update(self, request: Request, match: re.Match[str]) -> Response:
        body = self._body(request)
        if isinstance(body, dict) and len(body.get("records") or []) > COLLECTION_LIMIT:
            raise _too_many()
        try:
            update = CollectionUpdate.model_validate(body)
        except ValidationError as exc:
            raise Refused(400, "JSON_PARSER_ERROR", _first(exc)) from None
        plans: list[tuple[_Record | None, Row, Problem | None]] = []
        for record in update.records:
            rec = self._records.get(record.id)
            fields = {k: v for k, v in (record.model_extra or {}).items()}
            if (rec is None or rec.purged_at is not None or rec.type != record.attributes.type
                    or not self.access.can(rec.type, "read")):
                plans.append((None, fields, ("INVALID_ID_FIELD", "invalid record id", ["Id"])))
            elif rec.deleted_at is not None:
                plans.append((rec, fields, ("ENTITY_IS_DELETED", "entity is deleted", [])))
            else:
                plans.append((rec, fields, self._write_error(rec, fields, api=True)))
        rollback = update.allOrNone and any(p[2] for p in plans)
        results: list[Row] = []
        for rec, fields, problem in plans:
            if problem is None and rollback:
                problem = ("ALL_OR_NONE_OPERATION_ROLLED_BACK", "Record rolled back", [])
            if problem is not None:
                results.append(_failure(problem))
                continue
            assert rec is not None
            self._store(rec, fields)
            results.append({"id": rec.id, "success": True, "errors": []})
        return Response(200, results)

    def _collection_delete(self, request: Request, match: re.Match[str]) -> Response:
        ids = [i for i in (request.arg("ids") or "").split(",") if i]
        if len(ids) > COLLECTION_LIMIT:
            raise _too_many()
        try:
            asked = CollectionDelete.model_validate(
                {"ids": ids, "allOrNone": request.arg("allOrNone", "false")})
        except ValidationError as exc:
            raise Refused(400, "INVALID_QUERY_PARAMETER_VALUE", _first(exc)) from None
        results: list[Row] = [{} for _ in asked.ids]
        binned: list[_Record] = []
        # Last to first: the guide promises the results' order, not the processing order.
        for index in reversed(range(len(asked.ids))):
            rec = self._records.get(asked.ids[index])
            problem: Problem | None
            if rec is None or rec.purged_at is not None or not self.access.can(rec.type, "read"):
                problem = ("INVALID_ID_FIELD", "invalid record id", [])
            elif rec.deleted_at is not None:
                problem = ("ENTITY_IS_DELETED", "entity is deleted", [])
            else:
                problem = self._api_delete(rec)
            if problem is None:
                assert rec is not None
                binned.append(rec)
                results[index] = {"id": rec.id, "success": True, "errors": []}
            else:
                results[index] = _failure(problem)
        if asked.allOrNone and len(binned) < len(asked.ids):
            for rec in binned:
                rec.deleted_at = None
                rec.values["IsDeleted"] = False
            results = [r if not r["success"] else _failure(
                ("ALL_OR_NONE_OPERATION_ROLLED_BACK", "Record rolled back", [])) for r in results]
        return Response(200, results)

    def _soap(self, request: Request, match: re.Match[str]) -> Response:
        """``emptyRecycleBin()`` over SOAP; any other call is a fault."""
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "text/xml":
            return _soap_fault(415, "INVALID_OPERATION", f"content type '{media}' not supported")
        session, ids = soap.read(request.body.decode("utf-8", "replace"))
        if session != self.session_id:
            return _soap_fault(500, "INVALID_SESSION_ID", "Invalid Session ID found in "
                               "SessionHeader: Illegal Session")
        if ids is None:
            return _soap_fault(500, "INVALID_OPERATION", "this emulator answers emptyRecycleBin")
        if len(ids) > EMPTY_RECYCLE_BIN_LIMIT:
            return _soap_fault(500, "LIMIT_EXCEEDED", "emptyRecycleBin takes at most 200 ids")
        with self.lock:
            self.api_used += 1
            results = self._empty(ids)
        return Response(200, soap.answer(results), content_type="text/xml; charset=utf-8")


def _failure(problem: Problem) -> Row:
    """A failed collections item: ``success`` false, the errors, and no ``id``."""
    return {"success": False, "errors": [
        {"statusCode": problem[0], "message": problem[1], "fields": problem[2]}]}


def _too_many() -> Refused:
    # Assumption: the guides say "up to 200" but print no code; this is Salesforce's
    # code for an id limit (API StatusCode EXCEEDED_ID_LIMIT).
    return Refused(400, "EXCEEDED_ID_LIMIT",
                   "record limit reached. cannot submit more than 200 records")


def _first(exc: ValidationError) -> str:
    error = exc.errors()[0]
    return f"{'.'.join(str(p) for p in error['loc']) or 'body'}: {error['msg']}"


def _soap_fault(status: int, code: str, message: str) -> Response:
    return Response(status, soap.fault(code, message), content_type="text/xml; charset=utf-8")
