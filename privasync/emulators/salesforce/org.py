"""The org behind the Salesforce emulator: its records, clock, Recycle Bin and user rights,
and the admin helpers tests use to act as someone clicking in Salesforce. The HTTP
side (``privasync.emulators.salesforce.emulator``) mixes this in."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from privasync.emulators.contracts.salesforce import PURGED_STILL_QUERYABLE_HOURS, RECYCLE_BIN_DAYS
from privasync.emulators.salesforce import soap
from privasync.emulators.salesforce.access import Access
from privasync.emulators.salesforce_schema import (
    BOOLEANS,
    CONSENT,
    FIELDS,
    PREFIX,
    Problem,
    blank_is_null,
    field_problem,
    to_minute,
)
from privasync.emulators.salesforce_soql import Refused, fold

# Lookups that hold their parent: an API delete of a record a live record still points at
# through one of these fails with DELETE_FAILED. Assumption: the Object Reference does not
# say what deleting a referenced Individual does; this is the strictest reading (a
# "restrict delete" lookup), so a client that relies on deletion order inside one call
# is caught.
HOLDING = ("IndividualId", "PartyId")
BIN = timedelta(days=RECYCLE_BIN_DAYS)
PURGED_VISIBLE = timedelta(hours=PURGED_STILL_QUERYABLE_HOURS)

Row = dict[str, Any]


@dataclass
class Record:
    type: str
    values: Row
    deleted_at: datetime | None = None  # in the Recycle Bin since
    purged_at: datetime | None = None  # emptied from the bin (queryAll sees it a while)
    reject_with: str | None = None
    reject_delete_with: str | None = None

    @property
    def id(self) -> str:
        return str(self.values["Id"])


class Org:
    """The records and rights of one org (a mixin: ``SalesforceEmulator`` sets the state)."""

    lock: threading.RLock
    access: Access
    types: frozenset[str]
    _records: dict[str, Record]
    _seq: int
    _last_tick: datetime | None
    _offset: timedelta
    _emptied_before: datetime | None

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
        """Take rights from the integration user (see ``privasync.emulators.salesforce.access``)."""
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

    def add(self, sobject: str, **values: Any) -> str:
        """A record of any type the org has, as a user or a flow would save it (a logged
        call, a meeting, a case, an e-mail and its relation rows); ``CreatedDate`` is now,
        a Case gets its ``CaseNumber``. Raises Refused for a field the type lacks or a
        value Salesforce would refuse."""
        with self.lock:
            if sobject not in self.types:
                raise Refused(400, "INVALID_TYPE", f"sObject type '{sobject}' is not supported.")
            probe = Record(sobject, dict.fromkeys(FIELDS[sobject]))
            problem = self._write_error(probe, values)
            if problem is not None:
                raise Refused(400, problem[0], problem[1])
            extra: Row = {"CreatedDate": self._tick()} if "CreatedDate" in FIELDS[sobject] \
                else {}
            if sobject == "Case":
                extra["CaseNumber"] = f"{self._seq + 1:08d}"
            return self._insert(sobject, {**values, **extra})

    def merge(self, master_id: str, loser_id: str) -> None:
        """Merge ``loser`` into ``master`` as Salesforce's merge does: the loser's
        activities and cases move to the master, the loser goes to the Recycle Bin with
        ``MasterRecordId`` set (Object Reference, Contact: "MasterRecordId ... If this record
        was deleted as the result of a merge, this field contains the ID of the record that
        remains"); ``queryAll`` still finds it."""
        with self.lock:
            master, loser = self._live(master_id), self._live(loser_id)
            if master.type != loser.type or master.id == loser.id:
                raise Refused(400, "INVALID_OPERATION", "merge needs two records of one type")
            for rec in self._records.values():
                for link in ("WhoId", "ContactId", "RelationId"):
                    if rec.values.get(link) == loser.id:
                        self._store(rec, {link: master.id})
            loser.values["MasterRecordId"] = master.id
            self._to_bin(loser)

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

    def _to_bin(self, rec: Record) -> None:
        now = self._tick()
        rec.deleted_at = now
        rec.values.update(IsDeleted=True, SystemModstamp=now)

    def _api_delete(self, rec: Record) -> Problem | None:
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
        self._records[record_id] = Record(sobject, row)
        return record_id

    def _store(self, rec: Record, values: Row) -> None:
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

    def _live(self, record_id: str, sobject: str | None = None) -> Record:
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

    def _lookup(self, rec: Record, column: str) -> Any:
        if "." not in column:
            return rec.values.get(column)
        parent = self._records.get(str(rec.values.get("IndividualId")))
        return parent.values.get(column.split(".", 1)[1]) if parent is not None else None

    def _is_individual(self, record_id: str) -> bool:
        rec = self._records.get(record_id)
        return rec is not None and rec.type == "Individual"

    def _write_error(self, rec: Record, values: Row, *, api: bool = False) -> Problem | None:
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

