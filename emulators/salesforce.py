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
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from emulators.http import Emulator, Request, Response
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

API = "/services/data/v59.0"
COLLECTION_LIMIT = 200
REQUIRED = {"Contact": "LastName", "Lead": "LastName", CONSENT: "Name"}

Row = dict[str, Any]


@dataclass
class _Record:
    type: str
    values: Row
    deleted_at: datetime | None = None
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
                 consent_objects: bool = True) -> None:
        super().__init__()
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
        self._earliest_deleted = to_minute(datetime.now(UTC) - timedelta(days=15))
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
        if request.path.rstrip("/") == "/services/data":
            return None  # the version list needs no session
        if request.headers.get("authorization") != f"Bearer {self.session_id}":
            return self._fail(401, "INVALID_SESSION_ID", "Session expired or invalid")
        return None

    def admit(self, request: Request) -> Response | None:
        if request.path.rstrip("/") == "/services/data":
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
        if request.path.rstrip("/") == "/services/data":
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
        with self.lock:
            rec = self._live(record_id)
            now = self._tick()
            rec.deleted_at = now
            rec.values.update(IsDeleted=True, SystemModstamp=now)

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
        """Simulate an emptied recycle bin: deletes before ``when`` are gone."""
        with self.lock:
            self._earliest_deleted = when.astimezone(UTC)

    def record(self, record_id: str) -> dict[str, Any] | None:
        with self.lock:
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
        rec = self._records.get(record_id)
        if rec is None and len(record_id) == 15:
            rec = next((r for i, r in self._records.items() if i[:15] == record_id), None)
        if rec is None or rec.deleted_at is not None or (sobject and rec.type != sobject):
            raise Refused(404, "NOT_FOUND", "The requested resource does not exist")
        return rec

    def _lookup(self, rec: _Record, column: str) -> Any:
        if "." not in column:
            return rec.values.get(column)
        parent = self._records.get(str(rec.values.get("IndividualId")))
        return parent.values.get(column.split(".", 1)[1]) if parent is not None else None

    def _is_individual(self, record_id: str) -> bool:
        rec = self._records.get(record_id)
        return rec is not None and rec.type == "Individual"

    def _write_error(self, rec: _Record, values: Row) -> Problem | None:
        for name, value in values.items():
            problem = (None if name == "attributes"
                       else field_problem(rec.type, name, value, self._is_individual))
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
                    return handler(request, match)
            except Refused as refused:
                return self._fail(refused.status, refused.code, refused.message)
        return run

    def _fail(self, status: int, code: str, message: str) -> Response:
        return Response(status, [{"message": message, "errorCode": code}])

    def _sobject(self, name: str) -> str:
        """A type of this org named in a REST path; Salesforce answers 404 for any other."""
        if name not in self.types:
            raise Refused(404, "NOT_FOUND", f"The requested resource does not exist: {name}")
        return name

    def _queried_type(self, name: str) -> str:
        """A type of this org named in SOQL; Salesforce answers 400 INVALID_TYPE for any other."""
        if name not in self.types:
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
        gone = [{"id": r.id, "deletedDate": render(r.deleted_at)} for r in self._records.values()
                if r.type == sobject and r.deleted_at is not None
                and r.deleted_at >= self._earliest_deleted and start < r.deleted_at <= end]
        return Response(200, {"deletedRecords": gone,
                              "earliestDateAvailable": render(self._earliest_deleted),
                              "latestDateCovered": render(end)})

    def _query(self, request: Request, match: re.Match[str]) -> Response:
        query = Parser(request.arg("q") or "", self._lookup,
                       lambda column: column.rsplit(".", 1)[-1] in DATETIMES).parse()
        self._queried_type(query.type)
        check_columns(query.type, query.touched)
        include_deleted = match["kind"] == "queryAll"
        hits = [r for r in self._records.values() if r.type == query.type
                and (include_deleted or r.deleted_at is None)
                and (query.where is None or query.where(r))]
        if query.order is not None:
            column, descending = query.order
            hits.sort(key=lambda r: (self._lookup(r, column) is None, self._lookup(r, column)),
                      reverse=descending)
        rows = [self._row(r, query.fields) for r in hits[:query.limit]]
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
        return Response(200, describe(self._sobject(match["type"])))

    def _get(self, request: Request, match: re.Match[str]) -> Response:
        rec = self._live(match["id"], self._sobject(match["type"]))
        return Response(200, self._row(rec, list(FIELDS[rec.type])))

    def _create(self, request: Request, match: re.Match[str]) -> Response:
        sobject = self._sobject(match["type"])
        values = request.json() or {}
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
        values = request.json() or {}
        problem = self._write_error(rec, values)
        if problem is not None:
            raise Refused(400, problem[0], problem[1])
        self._store(rec, values)
        return Response(204)

    def _delete(self, request: Request, match: re.Match[str]) -> Response:
        self.ui_delete(self._live(match["id"], self._sobject(match["type"])).id)
        return Response(204)

    def _collection_update(self, request: Request, match: re.Match[str]) -> Response:
        body = request.json() or {}
        records = body.get("records") or []
        if len(records) > COLLECTION_LIMIT:
            raise Refused(400, "EXCEEDED_ID_LIMIT",
                           "record limit reached. cannot submit more than 200 records")
        plans: list[tuple[_Record | None, Row, Problem | None]] = []
        for values in records:
            rec = self._records.get(str(values.get("id")))
            sobject = (values.get("attributes") or {}).get("type")
            fields = {k: v for k, v in values.items() if k not in {"attributes", "id"}}
            if rec is None or rec.type != sobject:
                plans.append((None, fields, ("INVALID_ID_FIELD", "invalid record id", ["Id"])))
            elif rec.deleted_at is not None:
                plans.append((rec, fields, ("ENTITY_IS_DELETED", "entity is deleted", [])))
            else:
                plans.append((rec, fields, self._write_error(rec, fields)))
        rollback = bool(body.get("allOrNone")) and any(p[2] for p in plans)
        results: list[Row] = []
        for rec, fields, problem in plans:
            if problem is None and rollback:
                problem = ("ALL_OR_NONE_OPERATION_ROLLED_BACK", "Record rolled back", [])
            if problem is not None:
                results.append({"success": False, "errors": [
                    {"statusCode": problem[0], "message": problem[1], "fields": problem[2]}]})
                continue
            assert rec is not None
            self._store(rec, fields)
            results.append({"id": rec.id, "success": True, "errors": []})
        return Response(200, results)

    def _collection_delete(self, request: Request, match: re.Match[str]) -> Response:
        ids = [i for i in (request.arg("ids") or "").split(",") if i]
        if len(ids) > COLLECTION_LIMIT:
            raise Refused(400, "EXCEEDED_ID_LIMIT",
                           "record limit reached. cannot submit more than 200 records")
        results: list[Row] = []
        for record_id in ids:
            rec = self._records.get(record_id)
            code = ("INVALID_ID_FIELD" if rec is None or rec.type not in self.types
                    else "ENTITY_IS_DELETED" if rec.deleted_at is not None
                    else rec.reject_delete_with)
            if code is not None:
                results.append({"id": record_id, "success": False, "errors": [
                    {"statusCode": code, "message": "cannot delete", "fields": []}]})
                continue
            self.ui_delete(record_id)
            results.append({"id": record_id, "success": True, "errors": []})
        return Response(200, results)

