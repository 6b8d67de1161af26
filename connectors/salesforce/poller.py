"""Change capture by polling: a low-latency SOQL path and a complete getUpdated path.

Every poll runs both:

* **SOQL since the modstamp cursor** (low latency). One query per type,
  ``SELECT <COLUMNS> FROM Contact WHERE SystemModstamp > <cursor - 5 s>
  ORDER BY SystemModstamp LIMIT 2000``, the same for Lead, and ``SELECT Id,
  SystemModstamp FROM Individual`` with the same filter. Changed Individuals
  ride along in the person queries as ``OR IndividualId IN (...)`` (the first
  200; any more are read like getUpdated's). A change shows up on the next
  poll, seconds after it was made.
* **getUpdated/getDeleted** (completeness and deletes). Salesforce truncates
  their windows to the minute, so they see a change only after the next
  minute boundary; whatever ids they report that this poll's SOQL queries did
  not return are read with one query per 200 ids, as are Contacts and Leads
  whose Individual changed. This catches anything the SOQL path missed (a
  commit later than the overlap, a cursor held back by clock skew).

Individuals are polled too, because ticking "Don't Solicit" or "Forget this
Individual" changes the Individual, not the Contact's SystemModstamp.

API calls per poll:

* **8 when nothing changed**: getUpdated for Contact, Lead and Individual (3),
  the SOQL queries for Individual, Contact and Lead (3), getDeleted for
  Contact and Lead (2). A change found by the SOQL path costs nothing more.
* **+1 per type per 200 ids** that getUpdated reports and this poll's SOQL
  did not return: usually a change the SOQL path reported a poll earlier,
  seen again by getUpdated after the minute boundary. So one opt-out costs one
  extra call, once, about a minute after it was reported.
* **+1 per type per 200 changed Individuals** beyond the first 200 (all of
  them if that type's SOQL query hit LIMIT 2000).
* A full resync (deletes or updates past Salesforce's horizon) adds one paged
  query per type.

The SOQL path is a cursor: its next value is the latest ``SystemModstamp``
returned (held at the last row of any query that hit LIMIT, so the next poll
pages on from there), never earlier than before and never later than
``now``. The 5-second overlap returns the rows changed just before the
cursor again, on every poll until something newer changes; they become the
same events with the same ``source_event_id`` (which includes the
SystemModstamp), so intake drops them as duplicates. Both paths turn a row
into events with the same code, so a row found by both yields one event.
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
from core.errors import BadInput
from core.model import (
    CanonicalEvent,
    Channel,
    ConsentChange,
    ConsentChanged,
    ConsentStatus,
    ErasureRequested,
    EventMeta,
    SubjectDeleted,
    SubjectHint,
    SystemRef,
    require_aware,
)

log = logging.getLogger(__name__)

SOURCE = "salesforce"
PEOPLE = ("Contact", "Lead")
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

    def __init__(self, client: SalesforceClient, purposes: Sequence[str]) -> None:
        self._client = client
        self._purposes = tuple(purposes)

    def poll(self, cursor: SalesforceCursor | None, now: datetime) -> PollResult:
        require_aware(now, "now")
        if cursor is None:
            start = now - FIRST_LOOKBACK
            previous, lost = SalesforceCursor(start, start), False
        else:
            previous = cursor
            lost = (previous.updated_until < now - UPDATED_HORIZON
                    or previous.deleted_until < now - DELETED_HORIZON)
        updated_from = max(previous.updated_until, now - UPDATED_HORIZON)
        updated_until, changed = self._updated_ids(updated_from, now)
        recent = self._recent(self._modstamp_from(previous, updated_from, now),
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
        next_cursor = SalesforceCursor(max(previous.updated_until, updated_until),
                                       max(previous.deleted_until, deleted_until),
                                       _next_modstamp(previous.modstamp_until, recent.until, now))
        return PollResult(tuple(unique.values()), next_cursor, lost)

    @staticmethod
    def _modstamp_from(previous: SalesforceCursor, updated_from: datetime,
                       now: datetime) -> datetime:
        """Where the SOQL path starts: the cursor less the overlap, or (no cursor
        yet) where getUpdated starts."""
        if previous.modstamp_until is None:
            return updated_from
        return max(previous.modstamp_until - MODSTAMP_OVERLAP, now - UPDATED_HORIZON)

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
            rows = self._since(sobject, COLUMNS, since, joined[:CHUNK], recent)
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
            soql = select(COLUMNS, sobject, any_in(Id=id_chunk or [], IndividualId=ind_chunk or []))
            yield from self._client.query_all(f"{sobject} query", soql)

    def _resync(self) -> Iterable[CanonicalEvent]:
        for sobject in PEOPLE:
            soql = select(COLUMNS, sobject, "HasOptedOutOfEmail = true"
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
        return events

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


def _next_modstamp(previous: datetime | None, seen: datetime | None,
                   now: datetime) -> datetime | None:
    """The latest stamp seen, capped at ``now``; never earlier than ``previous``."""
    if seen is None:
        return previous
    seen = min(seen, now)
    return seen if previous is None else max(previous, seen)


def _chunks(items: Sequence[str]) -> list[list[str]]:
    return [list(items[i:i + CHUNK]) for i in range(0, len(items), CHUNK)]
