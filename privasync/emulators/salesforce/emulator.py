"""A Salesforce REST emulator: the slice of ``/services/data/v59.0/`` privasync uses.

simple-salesforce 1.12.10 talks to it unchanged but for the instance URL (its
session must rewrite https to http, VENDOR_APIS.md B1). It keeps Contact, Lead,
Individual and ContactPointTypeConsent records in memory (the types and fields
of ``privasync.emulators.salesforce_schema``, which also answers describe) with
Salesforce's id prefixes, millisecond ``SystemModstamp``s from a strictly
increasing clock, a recycle bin for getDeleted (whose windows it truncates to
the minute, as Salesforce does), the SOQL subset of ``privasync.emulators.salesforce_soql``
(including ``SystemModstamp > 2024-01-02T10:00:00Z``, ORDER BY and LIMIT) with
``nextRecordsUrl`` paging, sObject Collections, the daily API counter and
Salesforce's list-shaped error bodies. An org can be made without the consent
object (``consent_objects=False``): SOQL on it is refused with INVALID_TYPE and
its REST resources with NOT_FOUND, as in an org without Data Protection and
Privacy.

Requests are held to ``privasync.emulators.contracts.salesforce``: a body that is not JSON (415
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

The user's rights can be narrowed (``withheld``, see ``privasync.emulators.salesforce.access``):
describe then tells what is missing, and the calls that need it are refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from privasync.emulators.contracts.salesforce import (
    API_VERSION,
    COLLECTION_LIMIT,
    EMPTY_RECYCLE_BIN_LIMIT,
    CollectionDelete,
    CollectionUpdate,
)
from privasync.emulators.http import Emulator, Request, Response
from privasync.emulators.salesforce import soap
from privasync.emulators.salesforce.access import USER_PERMISSIONS, Access
from privasync.emulators.salesforce.org import Org, Record, Row
from privasync.emulators.salesforce_schema import (
    CONSENT,
    DATETIMES,
    FIELDS,
    Problem,
    as_json,
    check_columns,
    describe,
    render,
    to_minute,
)
from privasync.emulators.salesforce_soql import Parser, Refused

API = f"/services/data/v{API_VERSION}"
SOAP = f"/services/Soap/u/{API_VERSION}"
VERSIONS = "/services/data"
REQUIRED = {"Contact": "LastName", "Lead": "LastName", CONSENT: "Name"}


class SalesforceEmulator(Org, Emulator):
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
        self._records: dict[str, Record] = {}
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
    def dispatch(self, request: Request) -> Response:
        response = self._dispatch_counted(request)
        with self.lock:
            response.headers.setdefault("Sforce-Limit-Info",
                                        f"api-usage={self.api_used}/{self.api_limit}")
        return response

    def _dispatch_counted(self, request: Request) -> Response:
        """The base dispatch, but a known resource asked with another method is 405
        METHOD_NOT_ALLOWED (REST guide, "Status Codes and Error Responses"; the code
        name is an assumption)."""
        known = [m for m, pattern, _ in self._routes if pattern.match(request.path)]
        if known and request.method not in known:
            return self._fail(405, "METHOD_NOT_ALLOWED",
                              f"HTTP Method '{request.method}' not allowed. Allowed are "
                              f"{','.join(sorted(set(known)))}")
        return super().dispatch(request)

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

    def _row(self, rec: Record, columns: list[str]) -> Row:
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
        probe = Record(sobject, dict.fromkeys(FIELDS[sobject]))
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
        plans: list[tuple[Record | None, Row, Problem | None]] = []
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
        binned: list[Record] = []
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
        with self.lock:  # counted against the allocation by ``admit``, as every call
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
