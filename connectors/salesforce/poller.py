"""Change capture by polling: a complete getUpdated path and a low-latency SOQL path.

Every poll runs both, getUpdated first:

* **getUpdated/getDeleted** (completeness and deletes). Salesforce truncates
  their windows to the minute, so they report a change only after the next
  minute boundary. Their ``latestDateCovered`` is Salesforce's promise that
  every change stamped up to it has been reported (it lags for transactions
  still in flight). The ids they report are read with one query per 200,
  except those the SOQL path of the same poll already returned.
* **SOQL on SystemModstamp** (low latency), for the changes getUpdated cannot
  report yet: one query per type, ``SELECT <COLUMNS> FROM Contact WHERE
  SystemModstamp > <since> ORDER BY SystemModstamp LIMIT 2000``, the same for
  Lead, and ``SELECT Id, SystemModstamp FROM Individual`` with the same filter.
  ``since`` is the modstamp cursor less a 5 s overlap (late commits), but never
  earlier than what getUpdated has covered, this poll included; with no
  modstamp cursor yet it is that coverage. Changed Individuals (from both
  paths) ride along in the person queries as ``OR IndividualId IN (...)``: the
  first 200; any more, or all when a person query hit LIMIT, are read like
  getUpdated's ids. A change shows up on the next poll, seconds after it was
  made.

Every query of a person type also selects the mapped fields that type has
(``people.mapped_fields``), so a changed row yields, besides its consent
events, a ``RecordChanged`` with all of them under their canonical names: the
state, not a delta (intake drops values it has seen). Its id is the row's ref
and own SystemModstamp plus ``:record``, so both paths make the same event.

Individuals are polled too, because ticking "Don't Solicit" or "Forget this
Individual" changes the Individual, not the Contact's SystemModstamp.

API calls per poll:

* **8 when nothing changed**: getUpdated for Contact, Lead and Individual (3),
  the SOQL queries for Individual, Contact and Lead (3), getDeleted for Contact
  and Lead (2). A change the SOQL path finds costs nothing more.
* **+1 per type per 200 ids** getUpdated reports that this poll's SOQL did not
  return. Usually that is a change the SOQL path reported a poll or more ago,
  reported again by getUpdated after the minute boundary: one opt-out costs
  one extra call, once, about a minute after it was first reported.
* **+1 per type per 200 changed Individuals** past the first 200 (or all of
  them when that type's SOQL query hit LIMIT).
* A full resync (deletes or updates past Salesforce's horizon) adds one paged
  query per type.

The modstamp cursor is the latest ``SystemModstamp`` the SOQL path returned
(held at the last row of any query that hit LIMIT, so the next poll pages on
from there). It never moves backwards and never past ``now``. Rows in the
overlap come back on the next polls until getUpdated's coverage passes them,
at most about a minute. They become the same events, with the same
``source_event_id`` (which includes the SystemModstamp), and intake drops them
as duplicates. The same happens with a burst of more than 2000 changes in
5 s: the SOQL path cannot page past it, and getUpdated reads it after the
minute boundary. Both paths turn a row into events with the same code, so a
row found by both yields one event.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import zip_longest
from typing import Any

from connectors.salesforce.client import SalesforceClient, any_in, select, soql_datetime
from connectors.salesforce.people import PEOPLE, as_text, mapped_fields
from core.errors import BadInput
from core.mappings import SystemMapping
from core.model import (
    CanonicalEvent,
    Channel,
    ConsentChange,
    ConsentChanged,
    ConsentStatus,
    ErasureRequested,
    EventMeta,
    FieldValue,
    RecordChanged,
    SubjectDeleted,
    SubjectHint,
    SystemRef,
    require_aware,
)

log = logging.getLogger(__name__)

SOURCE = "salesforce"
CHUNK = 200
FIRST_LOOKBACK = timedelta(days=1)
UPDATED_HORIZON = timedelta(days=30)  # getUpdated serves at most the last 30 days
DELETED_HORIZON = timedelta(days=15)  # getDeleted at most the last 15
MODSTAMP_OVERLAP = timedelta(seconds=5)  # commits can become visible after later stamps
MODSTAMP_LIMIT = 2000  # one query page: one API call
COLUMNS = ("Id, Email, HasOptedOutOfEmail, SystemModstamp, IndividualId, "
           "Individual.HasOptedOutSolicit, Individual.ShouldForget, Individual.SystemModstamp")


def parse_sf_datetime(text: str) -> datetime:
    """``2024-01-02T10:00:00.000+0000`` as an aware datetime."""
    return require_aware(datetime.fromisoformat(text), "Salesforce dateTime")


@dataclass(frozen=True)
class SalesforceCursor:
    """Where the next poll starts.

    ``updated_until``/``deleted_until`` are the ``latestDateCovered`` of the
    last getUpdated/getDeleted calls; ``modstamp_until`` is the latest
    ``SystemModstamp`` the SOQL path has seen (None until it has seen one, and
    in cursors stored before it existed).
    """

    updated_until: datetime
    deleted_until: datetime
    modstamp_until: datetime | None = None

    def __post_init__(self) -> None:
        require_aware(self.updated_until, "updated_until")
        require_aware(self.deleted_until, "deleted_until")
        if self.modstamp_until is not None:
            require_aware(self.modstamp_until, "modstamp_until")

    def to_json(self) -> str:
        modstamp = self.modstamp_until.isoformat() if self.modstamp_until is not None else None
        return json.dumps({"updated_until": self.updated_until.isoformat(),
                           "deleted_until": self.deleted_until.isoformat(),
                           "modstamp_until": modstamp})

    @classmethod
    def from_json(cls, text: str) -> SalesforceCursor:
        """Parse a stored cursor (with or without ``modstamp_until``); raise BadInput
        if it is not one."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise TypeError("a cursor is a JSON object")
            modstamp = data.get("modstamp_until")
            return cls(datetime.fromisoformat(data["updated_until"]),
                       datetime.fromisoformat(data["deleted_until"]),
                       datetime.fromisoformat(modstamp) if modstamp is not None else None)
        except (ValueError, TypeError, KeyError) as exc:
            raise BadInput("not a Salesforce cursor: expected JSON with aware updated_until "
                           "and deleted_until, and optionally modstamp_until") from exc


@dataclass(frozen=True)
class PollResult:
    events: tuple[CanonicalEvent, ...]
    cursor: SalesforceCursor
    full_resync: bool


class Poller:
    """Turns Salesforce changes since a cursor into canonical events."""

    def __init__(self, client: SalesforceClient, mapping: SystemMapping) -> None:
        self._client = client
        self._purposes = tuple(mapping.consent.all_email)
        self._fields = {t: mapped_fields(mapping, t) for t in PEOPLE}
        # The mapped fields ride along in every person query (Email is selected anyway).
        self._columns = {t: ", ".join([COLUMNS, *(f for f in fields
                                                  if f not in COLUMNS.split(", "))])
                         for t, fields in self._fields.items()}
        held = {f for fields in self._fields.values() for f in fields}
        if unknown := sorted(set(mapping.fields) - held):
            log.warning("salesforce: mapped field(s) %s exist on neither Contact nor Lead; "
                        "they are not read", ", ".join(unknown))

    def poll(self, cursor: SalesforceCursor | None, now: datetime) -> PollResult:
        require_aware(now, "now")
        if cursor is None:
            start = now - FIRST_LOOKBACK
            previous, lost = SalesforceCursor(start, start), False
        else:
            previous = cursor
            lost = (previous.updated_until < now - UPDATED_HORIZON
                    or previous.deleted_until < now - DELETED_HORIZON)
        covered, changed = self._updated_ids(
            max(previous.updated_until, now - UPDATED_HORIZON), now)
        updated_until = max(previous.updated_until, covered)
        recent = self._recent(_modstamp_from(previous.modstamp_until, updated_until),
                              changed["Individual"])
        events = recent.events
        for sobject in PEOPLE:
            unread = [i for i in changed[sobject] if i not in recent.fetched[sobject]]
            for row in self._read(sobject, unread, recent.unread_individuals[sobject]):
                events.extend(self._record_events(sobject, row, "updated"))
        deleted_until, earliest, deletions = self._deletes(
            max(previous.deleted_until, now - DELETED_HORIZON), now)
        events.extend(deletions)
        if lost or (cursor is not None and earliest > cursor.deleted_until):
            lost = True
            log.warning("salesforce: deletes or updates may be lost; running a full resync")
            events.extend(self._resync())
        unique = {e.meta.source_event_id: e for e in events}
        next_cursor = SalesforceCursor(updated_until,
                                       max(previous.deleted_until, deleted_until),
                                       _next_modstamp(previous.modstamp_until, recent.until, now))
        return PollResult(tuple(unique.values()), next_cursor, lost)

    def _updated_ids(self, start: datetime,
                     end: datetime) -> tuple[datetime, dict[str, list[str]]]:
        """Ids getUpdated reports per type, and the latest date every call covered."""
        changed: dict[str, list[str]] = {}
        covered: list[datetime] = []
        for sobject in (*PEOPLE, "Individual"):
            answer = self._window(sobject, "updated", start, end)
            changed[sobject] = list(answer["ids"])
            covered.append(parse_sf_datetime(answer["latestDateCovered"]))
        return min(covered), changed

    def _recent(self, since: datetime, individuals: Sequence[str]) -> _Recent:
        """The SOQL path: Individuals, then Contacts and Leads, changed after ``since``.

        The person queries also take the first 200 changed Individuals (from
        here and from getUpdated) as ``OR IndividualId IN``; the rest, or all of
        them when a person query hit LIMIT, are left to ``_read``.
        """
        recent = _Recent()
        changed_individuals = self._since("Individual", "Id, SystemModstamp", since, [], recent)
        joined = list(dict.fromkeys([*individuals, *(r["Id"] for r in changed_individuals)]))
        for sobject in PEOPLE:
            rows = self._since(sobject, self._columns[sobject], since, joined[:CHUNK], recent)
            recent.fetched[sobject] = {str(r["Id"]) for r in rows}
            complete = len(rows) < MODSTAMP_LIMIT
            recent.unread_individuals[sobject] = joined[CHUNK:] if complete else joined
            for row in rows:
                recent.events.extend(self._record_events(sobject, row, "updated"))
        return recent

    def _since(self, sobject: str, columns: str, since: datetime, individuals: Sequence[str],
               recent: _Recent) -> list[dict[str, Any]]:
        """One SOQL query for rows of ``sobject`` changed after ``since`` (or linked
        to ``individuals``), oldest first; records their stamps in ``recent``."""
        where = f"SystemModstamp > {soql_datetime(since)}"
        if individuals:
            where += f" OR {any_in(IndividualId=individuals)}"
        soql = select(columns, sobject, where, order_by="SystemModstamp", limit=MODSTAMP_LIMIT)
        rows = self._client.query_all(f"{sobject} modstamp query", soql)
        stamps = [parse_sf_datetime(r["SystemModstamp"]) for r in rows]
        recent.saw(stamps, truncated=len(rows) >= MODSTAMP_LIMIT)
        if len(rows) >= MODSTAMP_LIMIT:
            log.info("salesforce: %s modstamp query hit LIMIT %d; the next poll goes on",
                     sobject, MODSTAMP_LIMIT)
        return rows

    def _deletes(self, start: datetime,
                 end: datetime) -> tuple[datetime, datetime, list[CanonicalEvent]]:
        """Deleted Contacts and Leads; the latest date covered; the earliest still known."""
        covered: list[datetime] = []
        earliest: list[datetime] = []
        events: list[CanonicalEvent] = []
        for sobject in PEOPLE:
            answer = self._window(sobject, "deleted", start, end)
            covered.append(parse_sf_datetime(answer["latestDateCovered"]))
            earliest.append(parse_sf_datetime(answer["earliestDateAvailable"]))
            events.extend(self._deleted_event(sobject, gone) for gone in answer["deletedRecords"])
        return min(covered), max(earliest), events

    def _window(self, sobject: str, kind: str, start: datetime, end: datetime) -> Any:
        return self._client.call(f"{sobject}.{kind}",
                                 lambda sf: getattr(getattr(sf, sobject), kind)(start, end))

    def _read(self, sobject: str, ids: Sequence[str],
              individuals: Sequence[str]) -> Iterable[dict[str, Any]]:
        """One query per 200 changed ids: the records, and those whose Individual changed."""
        for id_chunk, ind_chunk in zip_longest(_chunks(ids), _chunks(individuals)):
            soql = select(self._columns[sobject], sobject,
                          any_in(Id=id_chunk or [], IndividualId=ind_chunk or []))
            yield from self._client.query_all(f"{sobject} query", soql)

    def _resync(self) -> Iterable[CanonicalEvent]:
        for sobject in PEOPLE:
            soql = select(self._columns[sobject], sobject, "HasOptedOutOfEmail = true"
                          " OR Individual.HasOptedOutSolicit = true")
            for row in self._client.query_all(f"{sobject} resync", soql):
                yield from self._record_events(sobject, row, "resync")

    def _record_events(self, sobject: str, row: dict[str, Any],
                       kind: str) -> list[CanonicalEvent]:
        individual = row.get("Individual") or {}
        stamps = [parse_sf_datetime(row["SystemModstamp"])]
        if individual.get("SystemModstamp"):
            stamps.append(parse_sf_datetime(individual["SystemModstamp"]))
        occurred = max(stamps)
        ref = f"{sobject}:{row['Id']}"
        hint = SubjectHint(ref=SystemRef(SOURCE, ref), email=row.get("Email") or None)
        event_id = f"{ref}:{occurred.isoformat()}"
        events: list[CanonicalEvent] = []
        if self._purposes:
            withdrawn = bool(row.get("HasOptedOutOfEmail") or individual.get("HasOptedOutSolicit"))
            status = ConsentStatus.WITHDRAWN if withdrawn else ConsentStatus.GRANTED
            events.append(ConsentChanged(
                EventMeta(SOURCE, event_id, occurred, kind=f"{sobject}.{kind}"), hint,
                tuple(ConsentChange(p, Channel.EMAIL, status) for p in self._purposes)))
        if individual.get("ShouldForget"):
            events.append(ErasureRequested(
                EventMeta(SOURCE, f"{event_id}:forget", occurred, kind=f"{sobject}.forget"), hint))
        if self._fields[sobject]:
            events.append(self._field_event(sobject, row, stamps[0], hint))
        return events

    def _field_event(self, sobject: str, row: dict[str, Any], stamp: datetime,
                     hint: SubjectHint) -> RecordChanged:
        """Every mapped field of the row as it stands (intake drops unchanged values),
        collected at the row's own SystemModstamp, which also makes the event's id."""
        meta = EventMeta(SOURCE, f"{sobject}:{row['Id']}:{stamp.isoformat()}:record", stamp,
                         kind=f"{sobject}.fields")
        return RecordChanged(meta, hint, tuple(
            (canonical, FieldValue(as_text(row.get(vendor)), stamp))
            for vendor, canonical in self._fields[sobject].items()))

    @staticmethod
    def _deleted_event(sobject: str, gone: dict[str, Any]) -> SubjectDeleted:
        ref = f"{sobject}:{gone['id']}"
        return SubjectDeleted(
            EventMeta(SOURCE, f"{ref}:deleted:{gone['deletedDate']}",
                      parse_sf_datetime(gone["deletedDate"]), kind=f"{sobject}.deleted"),
            SubjectHint(ref=SystemRef(SOURCE, ref)))


@dataclass
class _Recent:
    """What the SOQL path of one poll found."""

    events: list[CanonicalEvent] = field(default_factory=list)
    fetched: dict[str, set[str]] = field(default_factory=dict)
    unread_individuals: dict[str, list[str]] = field(default_factory=dict)
    latest: datetime | None = None
    held_at: datetime | None = None  # the last stamp of a query that hit LIMIT

    def saw(self, stamps: Sequence[datetime], *, truncated: bool) -> None:
        if not stamps:
            return
        self.latest = max(stamps) if self.latest is None else max(self.latest, *stamps)
        if truncated:
            last = max(stamps)
            self.held_at = last if self.held_at is None else min(self.held_at, last)

    @property
    def until(self) -> datetime | None:
        """The latest stamp the cursor may move to: every query is complete up to it."""
        if self.latest is None or self.held_at is None:
            return self.latest
        return min(self.latest, self.held_at)


def _modstamp_from(modstamp_until: datetime | None, updated_until: datetime) -> datetime:
    """Where the SOQL path starts: the modstamp cursor less the overlap, but not
    before what getUpdated has covered (this poll included), which reported the rest."""
    if modstamp_until is None:
        return updated_until
    return max(modstamp_until - MODSTAMP_OVERLAP, updated_until)


def _next_modstamp(previous: datetime | None, seen: datetime | None,
                   now: datetime) -> datetime | None:
    """The latest stamp seen, capped at ``now``; never earlier than ``previous``."""
    if seen is None:
        return previous
    seen = min(seen, now)
    return seen if previous is None else max(previous, seen)


def _chunks(items: Sequence[str]) -> list[list[str]]:
    return [list(items[i:i + CHUNK]) for i in range(0, len(items), CHUNK)]
