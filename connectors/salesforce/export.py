"""Exporting people (Art. 15, 20): every field of every Contact, Lead and Individual
Salesforce holds for them, under Salesforce's field names.

A person's records are found as for erasure: the Contacts and Leads carrying one
of their addresses or named by their refs, and the Individuals those point at.
The fields are the org's own, listed by describe at each call, so a custom field
an admin added last week is exported too. Compound fields (``address``,
``location``) are left out: each of their parts is a field of its own.

API calls per batch: **one describe and one query per type** (Contact, Lead)
that someone in the batch has an address or a ref for, and **one describe and
one query for Individuals** when a record found points at one: 4 calls, or 6
with Individuals, whatever the batch size. A type with so many fields that
their names pass ``COLUMN_BUDGET`` takes one query per budget-full, each
selecting Id and its share of the fields.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from connectors.salesforce.client import SalesforceClient, any_in, select
from connectors.salesforce.people import PEOPLE, Spot, as_text, locate, look_up_spots
from core.model import ExportedField, ExportResult, PersonAt

COMPOUND = frozenset({"address", "location"})
# Characters of field names per query. With a batch's WHERE clause the query's URL stays
# well under the 16,384 bytes Salesforce accepts for a REST request's URI and headers.
COLUMN_BUDGET = 4000

Row = dict[str, Any]


@dataclass(frozen=True)
class _Table:
    """The rows read of one type, and its fields in describe's order."""

    sobject: str
    columns: list[str]
    rows: list[Row]

    def fields(self, rows: Iterable[Row]) -> list[ExportedField]:
        return [ExportedField(f"{self.sobject}:{row['Id']}", name, as_text(row.get(name)))
                for row in rows for name in self.columns]


class Exporter:
    """Reads every field Salesforce holds for each person."""

    def __init__(self, client: SalesforceClient, column_budget: int = COLUMN_BUDGET) -> None:
        self._client = client
        self._budget = column_budget

    def export(self, people: Sequence[PersonAt]) -> list[ExportResult]:
        spots = [locate(p) for p in people]
        tables = [self._people(sobject, spots) for sobject in PEOPLE]
        individuals = sorted({str(r["IndividualId"]) for t in tables for r in t.rows
                              if r.get("IndividualId")})
        found = (self._read("Individual", lambda columns: self._client.query_all(
            "Individual export", select(columns, "Individual", any_in(Id=individuals))))
            if individuals else _Table("Individual", [], []))
        return [_result(p.subject_id, spot, tables, found)
                for p, spot in zip(people, spots, strict=True)]

    def _people(self, sobject: str, spots: list[Spot]) -> _Table:
        """The batch's records of a person type, every field; no call if no one needs it."""
        if not any(s.emails or any(t == sobject for t, _ in s.keys) for s in spots):
            return _Table(sobject, [], [])
        return self._read(sobject, lambda columns: look_up_spots(
            self._client, sobject, spots, columns))

    def _read(self, sobject: str, query: Callable[[str], list[Row]]) -> _Table:
        """Describe ``sobject``, then run ``query(columns)`` per group of columns and
        join the rows by Id."""
        columns = self._columns(sobject)
        rows: dict[str, Row] = {}
        for group in column_groups(columns, self._budget):
            for row in query(", ".join(group)):
                rows.setdefault(str(row["Id"]), {}).update(row)
        return _Table(sobject, columns, list(rows.values()))

    def _columns(self, sobject: str) -> list[str]:
        answer = self._client.call(f"{sobject} describe",
                                   lambda sf: getattr(sf, sobject).describe())
        return readable(answer.get("fields") or [])


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


def _result(subject_id: str, spot: Spot, tables: list[_Table], individuals: _Table
            ) -> ExportResult:
    """One person's fields: their Contacts and Leads, then the Individuals those point at."""
    fields: list[ExportedField] = []
    pointed: set[str] = set()
    for table in tables:
        mine = [row for row in table.rows if spot.holds(table.sobject, row)]
        pointed.update(str(r["IndividualId"]) for r in mine if r.get("IndividualId"))
        fields.extend(table.fields(mine))
    mine = [row for row in individuals.rows if str(row["Id"]) in pointed]
    fields.extend(individuals.fields(mine))
    records = len({f.record for f in fields})
    return ExportResult(subject_id, tuple(fields),
                        note=f"{records} record(s)" if records else "not in salesforce")
