"""Change capture by polling: getUpdated/getDeleted windows plus one SOQL read per 200 ids.

Individuals are polled too, because ticking "Don't Solicit" or "Forget this
Individual" changes the Individual, not the Contact's SystemModstamp.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import zip_longest
from typing import Any

from connectors.salesforce.client import SalesforceClient, any_in, select
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
COLUMNS = ("Id, Email, HasOptedOutOfEmail, SystemModstamp, IndividualId, "
           "Individual.HasOptedOutSolicit, Individual.ShouldForget, Individual.SystemModstamp")


def parse_sf_datetime(text: str) -> datetime:
    """``2024-01-02T10:00:00.000+0000`` as an aware datetime."""
    return require_aware(datetime.fromisoformat(text), "Salesforce dateTime")


@dataclass(frozen=True)
class SalesforceCursor:
    """Where the next poll starts: the ``latestDateCovered`` of the last one."""

    updated_until: datetime
    deleted_until: datetime

    def __post_init__(self) -> None:
        require_aware(self.updated_until, "updated_until")
        require_aware(self.deleted_until, "deleted_until")

    def to_json(self) -> str:
        return json.dumps({"updated_until": self.updated_until.isoformat(),
                           "deleted_until": self.deleted_until.isoformat()})

    @classmethod
    def from_json(cls, text: str) -> SalesforceCursor:
        """Parse a stored cursor; raise BadInput if it is not one."""
        try:
            data = json.loads(text)
            return cls(datetime.fromisoformat(data["updated_until"]),
                       datetime.fromisoformat(data["deleted_until"]))
        except (ValueError, TypeError, KeyError) as exc:
            raise BadInput("not a Salesforce cursor: expected JSON with aware "
                           "updated_until and deleted_until") from exc


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
        updated_until, events = self._updates(
            max(previous.updated_until, now - UPDATED_HORIZON), now)
        deleted_until, earliest, deletions = self._deletes(
            max(previous.deleted_until, now - DELETED_HORIZON), now)
        events.extend(deletions)
        if lost or (cursor is not None and earliest > cursor.deleted_until):
            lost = True
            log.warning("salesforce: deletes or updates may be lost; running a full resync")
            events.extend(self._resync())
        unique = {e.meta.source_event_id: e for e in events}
        next_cursor = SalesforceCursor(max(previous.updated_until, updated_until),
                                       max(previous.deleted_until, deleted_until))
        return PollResult(tuple(unique.values()), next_cursor, lost)

    def _updates(self, start: datetime, end: datetime) -> tuple[datetime, list[CanonicalEvent]]:
        """Changed Contacts and Leads, and those whose Individual changed; and the
        latest date every getUpdated call covered."""
        changed: dict[str, list[str]] = {}
        covered: list[datetime] = []
        for sobject in (*PEOPLE, "Individual"):
            answer = self._window(sobject, "updated", start, end)
            changed[sobject] = list(answer["ids"])
            covered.append(parse_sf_datetime(answer["latestDateCovered"]))
        events: list[CanonicalEvent] = []
        for sobject in PEOPLE:
            for row in self._read(sobject, changed[sobject], changed["Individual"]):
                events.extend(self._record_events(sobject, row, "updated"))
        return min(covered), events

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


def _chunks(items: Sequence[str]) -> list[list[str]]:
    return [list(items[i:i + CHUNK]) for i in range(0, len(items), CHUNK)]
