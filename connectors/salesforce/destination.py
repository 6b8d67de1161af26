"""Writing consent: one lookup query per type, then one sObject Collections PATCH per batch.

The e-mail opt-out covers every purpose in ``mapping.consent.all_email``, so a
single withdrawn purpose sets it (withdrawals win). The poller also reads
"Don't Solicit" on the Individual as an opt-out; a grant clears it, or the
next poll would read the grant straight back as a withdrawal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.salesforce.client import SalesforceClient, any_in, select
from core.errors import PermanentError
from core.model import Channel, ConsentStatus, DestinationSubject, Outcome

PEOPLE = ("Contact", "Lead")
COLLECTION_LIMIT = 200

Key = tuple[str, str]  # (sObject type, record id)


@dataclass
class _Plan:
    """What one subject needs: the opt-out value and the records it lands on."""

    opted_out: bool | None
    targets: list[Key] = field(default_factory=list)
    individuals: list[str] = field(default_factory=list)
    learned: list[str] = field(default_factory=list)
    by_email: str = ""
    error: Exception | None = None


def parse_ref(ref: str) -> Key | None:
    """``Contact:003...`` (optionally prefixed ``salesforce:``) as a key; None if not ours."""
    sobject, _, record_id = ref.removeprefix("salesforce:").partition(":")
    return (sobject, record_id) if sobject in PEOPLE and record_id else None


class Destination:
    """Makes Contacts and Leads hold each subject's e-mail opt-out."""

    def __init__(self, client: SalesforceClient, purposes: Sequence[str]) -> None:
        self._client = client
        self._purposes = tuple(purposes)

    def desired(self, subject: DestinationSubject) -> bool | None:
        """True if any covered purpose is withdrawn, False if one is granted, else None."""
        known = [subject.status(p, Channel.EMAIL) for p in self._purposes]
        if ConsentStatus.WITHDRAWN in known:
            return True
        return False if ConsentStatus.GRANTED in known else None

    def apply(self, subjects: Sequence[DestinationSubject]) -> list[Outcome]:
        plans = [_Plan(self.desired(s)) for s in subjects]
        for subject, plan in zip(subjects, plans, strict=True):
            plan.targets = [k for k in map(parse_ref, subject.refs) if k is not None]
            if plan.opted_out is not None and not plan.targets and subject.email:
                plan.by_email = subject.email.lower()
        self._look_up(plans)
        records, owners = self._records(plans)
        for start in range(0, len(records), COLLECTION_LIMIT):
            self._write(records[start:start + COLLECTION_LIMIT],
                        owners[start:start + COLLECTION_LIMIT], plans)
        return [self._outcome(s, p) for s, p in zip(subjects, plans, strict=True)]

    def _look_up(self, plans: list[_Plan]) -> None:
        """One query per type: records of unknown subjects by e-mail, and the
        Individuals behind the records a grant will be written to."""
        emails = {p.by_email for p in plans if p.by_email}
        for sobject in PEOPLE:
            ids = sorted({i for p in plans if p.opted_out is False
                          for t, i in p.targets if t == sobject})
            if not emails and not ids:
                continue
            rows = self._client.query_all(
                f"{sobject} lookup",
                select("Id, Email, IndividualId", sobject, any_in(Email=sorted(emails), Id=ids)))
            for plan in plans:
                self._match(sobject, rows, plan)

    @staticmethod
    def _match(sobject: str, rows: list[dict[str, Any]], plan: _Plan) -> None:
        if plan.opted_out is None:
            return
        email = plan.by_email
        known_ids = {i for t, i in plan.targets if t == sobject}
        for row in rows:
            found = bool(email) and str(row.get("Email") or "").lower() == email
            if found:
                plan.learned.append(f"{sobject}:{row['Id']}")
                plan.targets.append((sobject, str(row["Id"])))
            if (found or row["Id"] in known_ids) and row.get("IndividualId"):
                plan.individuals.append(str(row["IndividualId"]))

    @staticmethod
    def _records(plans: list[_Plan]) -> tuple[list[dict[str, Any]], list[list[int]]]:
        """One record per Contact/Lead/Individual, withdrawal winning; and who owns it."""
        fields: dict[Key, dict[str, Any]] = {}
        owners: dict[Key, list[int]] = {}
        for index, plan in enumerate(plans):
            if plan.opted_out is None:
                continue
            for key in dict.fromkeys(plan.targets):
                value = fields.setdefault(key, {}).get("HasOptedOutOfEmail", False)
                fields[key]["HasOptedOutOfEmail"] = value or plan.opted_out
                owners.setdefault(key, []).append(index)
            if plan.opted_out:
                continue
            for individual in dict.fromkeys(plan.individuals):
                fields[("Individual", individual)] = {"HasOptedOutSolicit": False}
                owners.setdefault(("Individual", individual), []).append(index)
        records = [{"attributes": {"type": t}, "id": i, **values}
                   for (t, i), values in fields.items()]
        return records, [owners[k] for k in fields]

    def _write(self, records: list[dict[str, Any]], owners: list[list[int]],
               plans: list[_Plan]) -> None:
        body = {"allOrNone": False, "records": records}
        results = self._client.call(
            "composite/sobjects",
            lambda sf: sf.restful("composite/sobjects", method="PATCH", json=body))
        if not isinstance(results, list) or len(results) != len(records):
            raise PermanentError("composite/sobjects: answer does not match the records sent",
                                 error_class="unexpected_answer")
        for record, result, indexes in zip(records, results, owners, strict=True):
            if result.get("success"):
                continue
            errors = result.get("errors") or [{}]
            code = str(errors[0].get("statusCode") or "unknown")
            failure = PermanentError(
                f"salesforce rejected {record['attributes']['type']} {record['id']}: {code}",
                error_class=code.lower())
            for index in indexes:
                plans[index].error = plans[index].error or failure

    @staticmethod
    def _outcome(subject: DestinationSubject, plan: _Plan) -> Outcome:
        if plan.opted_out is None:
            note = "no e-mail consent to write"
        elif not plan.targets:
            note = "not in salesforce"
        else:
            state = "opted out" if plan.opted_out else "opted in"
            note = f"{state} on {len(plan.targets)} record(s)"
        return Outcome(subject.subject_id, error=plan.error,
                       learned_refs=tuple(plan.learned), note=note)
