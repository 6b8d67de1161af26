"""Writing record fields: canonical names in, each type's own fields out, one PATCH per batch.

The core has already minimised the fields. Here a canonical field this system
does not map is ignored, ``Email`` (how subjects are found) is never written,
nor is a field the record's type lacks (``Birthdate`` on a Lead). A subject
with no record in Salesforce is reported, never created.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.people import (
    IDENTITY,
    PEOPLE,
    Key,
    has_field,
    look_up,
    matches,
    parse_ref,
    write,
)
from core.mappings import SystemMapping
from core.model import DestinationRecord, Outcome


@dataclass
class _Push:
    """One subject's fields and the records they land on."""

    fields: Mapping[str, str | None]
    targets: list[Key]
    by_email: str = ""
    learned: list[str] = field(default_factory=list)
    written: set[str] = field(default_factory=set)
    error: Exception | None = None


class RecordWriter:
    """Makes Contacts and Leads hold subjects' (already minimised) field values."""

    def __init__(self, client: SalesforceClient, mapping: SystemMapping) -> None:
        self._client = client
        self._mapping = mapping

    def vendor_fields(self, sobject: str, fields: Mapping[str, str | None]) -> dict[str, Any]:
        """The fields ``sobject`` takes, under its own names: never Email, nor one it lacks."""
        out: dict[str, Any] = {}
        for canonical, value in fields.items():
            vendor = self._mapping.vendor_field(canonical)
            if vendor is not None and vendor != IDENTITY and has_field(sobject, vendor):
                out[vendor] = value
        return out

    def push(self, records: Sequence[DestinationRecord]) -> list[Outcome]:
        pushes = [_Push(r.fields, [k for k in map(parse_ref, r.refs) if k is not None])
                  for r in records]
        for record, push in zip(records, pushes, strict=True):
            if not push.targets and record.email:
                push.by_email = record.email.lower()
        self._look_up(pushes)
        for index, error in write(self._client, *self._records(pushes)).items():
            pushes[index].error = error
        return [self._outcome(r.subject_id, p) for r, p in zip(records, pushes, strict=True)]

    def _look_up(self, pushes: list[_Push]) -> None:
        """One query per type, for the subjects without refs that have a field it takes."""
        for sobject in PEOPLE:
            wanting = [p for p in pushes if p.by_email and self.vendor_fields(sobject, p.fields)]
            if not wanting:
                continue
            rows = look_up(self._client, sobject, {p.by_email for p in wanting})
            for push in wanting:
                found = [str(row["Id"]) for row in matches(rows, push.by_email)]
                push.learned.extend(f"{sobject}:{i}" for i in found)
                push.targets.extend((sobject, i) for i in found)

    def _records(self, pushes: list[_Push]) -> tuple[list[dict[str, Any]], list[list[int]]]:
        """One collection record per Contact/Lead, and which subjects' fields it carries."""
        values: dict[Key, dict[str, Any]] = {}
        owners: dict[Key, list[int]] = {}
        for index, push in enumerate(pushes):
            for key in dict.fromkeys(push.targets):
                fields = self.vendor_fields(key[0], push.fields)
                if fields:
                    values.setdefault(key, {}).update(fields)
                    owners.setdefault(key, []).append(index)
                    push.written.update(c for c in push.fields
                                        if self._mapping.vendor_field(c) in fields)
        records = [{"attributes": {"type": t}, "id": i, **v} for (t, i), v in values.items()]
        return records, [owners[k] for k in values]

    @staticmethod
    def _outcome(subject_id: str, push: _Push) -> Outcome:
        skipped = sorted(set(push.fields) - push.written)
        detail = {"sent": ",".join(sorted(push.written)), "skipped": ",".join(skipped)}
        if not push.targets:
            note = "not in salesforce"
        elif not push.written:
            note = "no field salesforce holds"
        else:
            note = f"{len(push.written)} field(s) on {len(set(push.targets))} record(s)"
        return Outcome(subject_id, error=push.error, learned_refs=tuple(push.learned),
                       note=note, detail=detail)
