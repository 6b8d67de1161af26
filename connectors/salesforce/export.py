"""Exporting people (Art. 15, 20): every field of every Contact, Lead and Individual
Salesforce holds for them, the records merged into those, and their contact moments
(Tasks, Events, Cases, EmailMessages), under Salesforce's field names.

A person's records are found as for erasure: the Contacts and Leads carrying one of their
addresses or named by their refs, and the Individuals those point at. A record reached only
by an address that another Contact or Lead carries too (a family's shared mailbox) may be
someone else's: it is held for review with everything hanging off it, never put in the
answer as it is (``people.claim``). The fields of Contacts, Leads and Individuals are the
org's own, listed by describe at each call, so a custom field an admin added last week is
exported too. Compound fields (``address``, ``location``) are left out: each of their
parts is a field of its own.

Merged records: Salesforce's merge deletes the losing Contacts or Leads with
``MasterRecordId`` set to the one kept (Object Reference, Contact and Lead); they sit in the
Recycle Bin for 15 days, where ``queryAll`` finds them, and are exported with the record
they were merged into. Contact moments are the Tasks and Events whose ``WhoId`` is one of
the person's records, the Cases whose ``ContactId`` is, and the EmailMessages on those
Cases (``ParentId``) or Tasks (``ActivityId``) or naming the person's records as a sender or
recipient (EmailMessageRelation ``RelationId``). Of these only the fields that say what was
said, asked or done, and when, are read (``MOMENT_FIELDS``): not owners, links or system
stamps, and not the Cc and Bcc addresses, which are other people's (Art. 15(4)). An org
without EmailMessage (no Email-to-Case or Enhanced Email) answers INVALID_TYPE: it holds
none.

API calls per batch: **one describe and one query per type** (Contact, Lead) that someone
in the batch has an address or a ref for; when records were found, **one queryAll per
type found** for records merged into them, **one query each** for Tasks, Events, Cases and
EmailMessageRelations, **one** for EmailMessages when a Task, Case or relation was found,
and **one describe and one query for Individuals** when a record found points at one:
9 to 13 calls, whatever the batch size. A type with so many fields that their names pass
``COLUMN_BUDGET`` takes one query per budget-full, each selecting Id and its share.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.salesforce.client import SalesforceClient, any_in, select
from connectors.salesforce.people import (
    MINE,
    PEOPLE,
    REVIEW,
    SHARED_REASON,
    Spot,
    as_text,
    claim,
    locate,
    look_up_spots,
    shared_addresses,
    unsure,
)
from core.errors import PermanentError
from core.model import ExportedField, ExportResult, HeldForReview, PersonAt

COMPOUND = frozenset({"address", "location"})
# Characters of field names per query. With a batch's WHERE clause the query's URL stays
# well under the 16,384 bytes Salesforce accepts for a REST request's URI and headers.
COLUMN_BUDGET = 4000
# What a person's contact moments consist of (Object Reference, each object's fields).
MOMENT_FIELDS: dict[str, tuple[str, ...]] = {
    "Task": ("Subject", "Description", "ActivityDate", "Status", "Priority", "TaskSubtype",
             "CallType", "CallDurationInSeconds", "CreatedDate"),
    "Event": ("Subject", "Description", "Location", "StartDateTime", "EndDateTime",
              "IsAllDayEvent", "CreatedDate"),
    "Case": ("CaseNumber", "Subject", "Description", "Status", "Origin", "Priority",
             "SuppliedName", "SuppliedEmail", "SuppliedPhone", "CreatedDate", "ClosedDate"),
    "EmailMessage": ("Subject", "TextBody", "FromName", "FromAddress", "ToAddress",
                     "MessageDate", "Incoming", "Status"),
}
# The record types, in words the person reads in the answer.
KINDS = {"Contact": "contact", "Lead": "lead", "Individual": "privacy preferences",
         "Task": "task or logged call", "Event": "meeting or event",
         "Case": "case (support request)", "EmailMessage": "e-mail"}
# Orgs without Email-to-Case or Enhanced Email lack these objects.
ABSENT = frozenset({"invalid_type", "not_found"})

Row = dict[str, Any]


@dataclass(frozen=True)
class _Table:
    """The rows read of one type, and its fields in describe's order."""

    sobject: str
    columns: list[str]
    rows: list[Row]


@dataclass
class _Found:
    """One person's records, by id: type, rows and the kind they are named by, as theirs
    (``mine``) or held for review; which of the person's records each hangs off."""

    mine: dict[str, tuple[str, Row, str]] = field(default_factory=dict)
    held: dict[str, tuple[str, Row, str]] = field(default_factory=dict)

    def owner_of(self, *ids: object) -> dict[str, tuple[str, Row, str]] | None:
        """Where a record hanging off any of ``ids`` belongs: with the person's own
        records before held ones; None if off none of them."""
        keys = {str(i) for i in ids if i}
        if keys & set(self.mine):
            return self.mine
        return self.held if keys & set(self.held) else None


class Exporter:
    """Reads every field Salesforce holds for each person, and their contact moments."""

    def __init__(self, client: SalesforceClient, column_budget: int = COLUMN_BUDGET) -> None:
        self._client = client
        self._budget = column_budget

    def export(self, people: Sequence[PersonAt]) -> list[ExportResult]:
        spots = [locate(p) for p in people]
        columns: dict[str, list[str]] = {}
        tables = [self._people(sobject, spots, columns) for sobject in PEOPLE]
        shared = shared_addresses(r for t in tables for r in t.rows)
        found = [_Found() for _ in people]
        every = [(t.sobject, r) for t in tables for r in t.rows]
        for spot, mine in zip(spots, found, strict=True):
            doubtful = unsure(spot, every, shared)
            for table in tables:
                for row in table.rows:
                    where = {MINE: mine.mine, REVIEW: mine.held}.get(
                        claim(spot, table.sobject, row, shared, doubtful) or "")
                    if where is not None:
                        where[str(row["Id"])] = (table.sobject, row, KINDS[table.sobject])
        if any(f.mine or f.held for f in found):
            self._merged(found, columns)
            self._individuals(found, columns)
            self._moments(found)
        return [_result(p.subject_id, f, columns)
                for p, f in zip(people, found, strict=True)]

    def _people(self, sobject: str, spots: list[Spot],
                columns: dict[str, list[str]]) -> _Table:
        """The batch's records of a person type, every field; no call if no one needs it."""
        if not any(s.emails or any(t == sobject for t, _ in s.keys) for s in spots):
            return _Table(sobject, [], [])
        columns[sobject] = self._columns(sobject)
        return _Table(sobject, columns[sobject], self._read(
            columns[sobject], lambda cols: look_up_spots(self._client, sobject, spots, cols)))

    def _merged(self, found: list[_Found], columns: dict[str, list[str]]) -> None:
        """Records merged into the people's Contacts and Leads: deleted, MasterRecordId
        naming one of them (queryAll), with every field of their type."""
        for sobject in PEOPLE:
            masters = sorted({i for f in found for part in (f.mine, f.held)
                              for i, (t, _, _) in part.items() if t == sobject})
            if not masters or sobject not in columns:
                continue
            rows = self._read(columns[sobject], self._merged_query(sobject, masters))
            for row in rows:
                master = str(row.get("MasterRecordId"))
                kind = f"{KINDS[sobject]} merged into {sobject}:{master}"
                for f in found:
                    part = f.owner_of(master)
                    if part is not None:
                        part[str(row["Id"])] = (sobject, row, kind)

    def _merged_query(self, sobject: str, masters: list[str]) -> Callable[[str], list[Row]]:
        where = f"IsDeleted = true AND ({any_in(MasterRecordId=masters)})"
        return lambda columns: self._client.query_all(
            f"{sobject} merged", select(columns, sobject, where), include_deleted=True)

    def _individuals(self, found: list[_Found], columns: dict[str, list[str]]) -> None:
        """The Individuals the people's records point at (one describe, one query)."""
        pointed = sorted({str(row["IndividualId"]) for f in found for part in (f.mine, f.held)
                          for _, row, _ in part.values() if row.get("IndividualId")})
        if not pointed:
            return
        columns["Individual"] = self._columns("Individual")
        rows = self._read(columns["Individual"], lambda cols: self._client.query_all(
            "Individual export", select(cols, "Individual", any_in(Id=pointed))))
        for row in rows:
            for f in found:
                pointers = [i for part in (f.mine, f.held) for i, (_, r, _) in part.items()
                            if r.get("IndividualId") == row["Id"]]
                part = f.owner_of(*pointers)
                if part is not None:
                    part[str(row["Id"])] = ("Individual", row, KINDS["Individual"])

    def _moments(self, found: list[_Found]) -> None:
        """Tasks, Events and Cases of the people's records, then the e-mails on those or
        naming the records."""
        people = sorted({i for f in found for part in (f.mine, f.held) for i in part})
        for sobject, link in (("Task", "WhoId"), ("Event", "WhoId"), ("Case", "ContactId")):
            for row in self._moment_rows(sobject, (link,), any_in(**{link: people})):
                self._place(found, sobject, row, row.get(link))
        relations = self._optional(lambda: self._client.query_all(
            "EmailMessageRelation export", select("Id, EmailMessageId, RelationId",
                                                  "EmailMessageRelation",
                                                  any_in(RelationId=people))))
        related = {str(r["EmailMessageId"]): str(r["RelationId"]) for r in relations}
        where = any_in(Id=sorted(related), ParentId=_ids(found, "Case"),
                       ActivityId=_ids(found, "Task"))
        if not where:
            return
        for row in self._optional(lambda: self._moment_rows(
                "EmailMessage", ("ParentId", "ActivityId"), where)):
            self._place(found, "EmailMessage", row, related.get(str(row["Id"])),
                        row.get("ParentId"), row.get("ActivityId"))

    def _moment_rows(self, sobject: str, links: tuple[str, ...], where: str) -> list[Row]:
        columns = ", ".join(["Id", *links, *MOMENT_FIELDS[sobject]])
        return self._client.query_all(f"{sobject} export", select(columns, sobject, where))

    @staticmethod
    def _place(found: list[_Found], sobject: str, row: Row, *owners: object) -> None:
        for f in found:
            part = f.owner_of(*owners)
            if part is not None:
                part[str(row["Id"])] = (sobject, row, KINDS[sobject])

    @staticmethod
    def _optional(read: Callable[[], list[Row]]) -> list[Row]:
        try:
            return read()
        except PermanentError as exc:
            if exc.error_class in ABSENT:
                return []  # no Email-to-Case or Enhanced Email: no e-mails held
            raise

    def _read(self, columns: list[str], query: Callable[[str], list[Row]]) -> list[Row]:
        """Run ``query(columns)`` per group of columns and join the rows by Id."""
        rows: dict[str, Row] = {}
        for group in column_groups(columns, self._budget):
            for row in query(", ".join(group)):
                rows.setdefault(str(row["Id"]), {}).update(row)
        return list(rows.values())

    def _columns(self, sobject: str) -> list[str]:
        answer = self._client.call(f"{sobject} describe",
                                   lambda sf: getattr(sf, sobject).describe())
        return readable(answer.get("fields") or [])


def _ids(found: list[_Found], sobject: str) -> list[str]:
    """Every id of ``sobject`` found for anyone in the batch, theirs or held."""
    return sorted({i for f in found for part in (f.mine, f.held)
                   for i, (t, _, _) in part.items() if t == sobject})


def readable(fields: Iterable[dict[str, Any]]) -> list[str]:
    """The names of describe's fields a query reads as plain values: not the compound ones."""
    return [str(f["name"]) for f in fields if f.get("type") not in COMPOUND]


def column_groups(columns: Sequence[str], budget: int) -> list[list[str]]:
    """``Id`` plus the other columns, split so no group's names pass ``budget`` characters."""
    groups: list[list[str]] = [["Id"]]
    for name in columns:
        if name == "Id":
            continue
        if len(groups[-1]) > 1 and len(", ".join([*groups[-1], name])) > budget:
            groups.append(["Id"])
        groups[-1].append(name)
    return groups


def _fields(records: dict[str, tuple[str, Row, str]],
            columns: dict[str, list[str]]) -> list[ExportedField]:
    """Every column of a person type or an Individual (set or not, as describe lists
    them); the set moment fields of a contact moment."""
    out: list[ExportedField] = []
    for record_id, (sobject, row, kind) in records.items():
        names = MOMENT_FIELDS.get(sobject) or columns.get(sobject) or [
            k for k in row if k != "attributes"]
        out.extend(ExportedField(f"{sobject}:{record_id}", name, as_text(row.get(name)), kind)
                   for name in names
                   if sobject not in MOMENT_FIELDS or row.get(name) not in (None, ""))
    return out


def _result(subject_id: str, found: _Found, columns: dict[str, list[str]]) -> ExportResult:
    """One person's fields, and the records held for review with theirs."""
    fields = _fields(found.mine, columns)
    held = tuple(HeldForReview(f"{s}:{i}", SHARED_REASON,
                               tuple(_fields({i: (s, r, k)}, columns)))
                 for i, (s, r, k) in found.held.items())
    records = len(found.mine)
    note = f"{records} record(s)" if records else "not in salesforce"
    if held:
        note += f"; {len(held)} record(s) held for review ({SHARED_REASON})"
    return ExportResult(subject_id, tuple(fields), note=note, review=held)
