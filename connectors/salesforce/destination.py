"""Writing consent: the Contacts and Leads each subject's opt-out lands on, and their Individuals.

The e-mail opt-out covers every purpose in ``mapping.consent.all_email``, so a
single withdrawn purpose sets it (withdrawals win). The poller also reads
"Don't Solicit" (``HasOptedOutSolicit``) on the Individual as an opt-out, so
it is written with the opt-out on the Individual of every record written: a
withdrawal sets it (an unsubscribe reaches the Individual where the org has
them) and a grant clears it, or the next poll would read the grant straight
back as a withdrawal. Where a withdrawal and a grant in one batch reach the
same record or Individual, the withdrawal wins. A subject's Outcome carries the
first rejection of any record written for it, Individuals included.

API calls per batch (none when no subject has e-mail consent to write):

* **one lookup query per type** (Contact, Lead), ``SELECT Id, Email,
  IndividualId``, for the type's records named by the refs of subjects with
  consent to write (their Individuals are not known otherwise) and, for
  subjects without refs, those with their e-mail. A type no such subject
  needs is not queried. In an org without Individuals the query still costs
  its call and returns no IndividualId; then no Individual is written.
* **one sObject Collections PATCH per 200 records** written: Contacts, Leads
  and Individuals together. A subject with one record and an Individual takes
  two of them, so a full batch of such subjects takes two PATCHes.

A withdrawal for one Contact with an Individual is thus two calls: its
Contact lookup and one PATCH carrying both records.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.people import PEOPLE, Key, look_up, matches, parse_ref, write
from core.model import Channel, ConsentStatus, DestinationSubject, Outcome


@dataclass
class _Plan:
    """What one subject needs: the opt-out value and the records it lands on."""

    opted_out: bool | None
    targets: list[Key] = field(default_factory=list)
    individuals: list[str] = field(default_factory=list)
    learned: list[str] = field(default_factory=list)
    by_email: str = ""
    error: Exception | None = None


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
        for index, error in write(self._client, *self._records(plans)).items():
            plans[index].error = error
        return [self._outcome(s, p) for s, p in zip(subjects, plans, strict=True)]

    def _look_up(self, plans: list[_Plan]) -> None:
        """One query per type, when needed: the records of subjects without refs by
        e-mail, and the Individuals behind the records named by refs."""
        emails = {p.by_email for p in plans if p.by_email}
        for sobject in PEOPLE:
            ids = sorted({i for p in plans if p.opted_out is not None
                          for t, i in p.targets if t == sobject})
            if not emails and not ids:
                continue
            rows = look_up(self._client, sobject, emails, ids)
            for plan in plans:
                self._match(sobject, rows, plan)

    @staticmethod
    def _match(sobject: str, rows: list[dict[str, Any]], plan: _Plan) -> None:
        if plan.opted_out is None:
            return
        found = matches(rows, plan.by_email)
        plan.learned.extend(f"{sobject}:{row['Id']}" for row in found)
        known_ids = {i for t, i in plan.targets if t == sobject}
        plan.targets.extend((sobject, str(row["Id"])) for row in found)
        for row in [*found, *(r for r in rows if r["Id"] in known_ids)]:
            if row.get("IndividualId"):
                plan.individuals.append(str(row["IndividualId"]))

    @staticmethod
    def _records(plans: list[_Plan]) -> tuple[list[dict[str, Any]], list[list[int]]]:
        """One record per Contact/Lead/Individual, withdrawal winning; and who owns it."""
        fields: dict[Key, dict[str, Any]] = {}
        owners: dict[Key, list[int]] = {}

        def opt_out(key: Key, name: str, value: bool, index: int) -> None:
            values = fields.setdefault(key, {})
            values[name] = values.get(name, False) or value
            owners.setdefault(key, []).append(index)

        for index, plan in enumerate(plans):
            if plan.opted_out is None:
                continue
            for key in dict.fromkeys(plan.targets):
                opt_out(key, "HasOptedOutOfEmail", plan.opted_out, index)
            for individual in dict.fromkeys(plan.individuals):
                opt_out(("Individual", individual), "HasOptedOutSolicit", plan.opted_out, index)
        records = [{"attributes": {"type": t}, "id": i, **values}
                   for (t, i), values in fields.items()]
        return records, [owners[k] for k in fields]

    @staticmethod
    def _outcome(subject: DestinationSubject, plan: _Plan) -> Outcome:
        if plan.opted_out is None:
            note = "no e-mail consent to write"
        elif not plan.targets:
            note = "not in salesforce"
        else:
            state = "opted out" if plan.opted_out else "opted in"
            note = f"{state} on {len(set(plan.targets))} record(s)"
            if plan.individuals:
                note += f" and {len(set(plan.individuals))} Individual(s)"
        return Outcome(subject.subject_id, error=plan.error,
                       learned_refs=tuple(plan.learned), note=note)
