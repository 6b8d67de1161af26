"""Erasing people (Art. 17): their Contacts and Leads, the Individuals only they use and
those Individuals' consent rows; then reading back to prove them gone.

A person's records are the Contacts and Leads carrying one of their addresses or
named by their refs, and the Individuals those point at. An Individual that a
Contact or Lead of anyone else still points at is kept, and so are its
ContactPointTypeConsent rows: they record that other person's consent (an
opt-out among them must keep being honoured). Deletes follow Salesforce's
dependencies: consent rows, then Contacts and Leads, then Individuals, each tier in
its own sObject Collections calls of up to 200 ids. A collections DELETE promises
the order of its results, not the order it deletes in ("Delete Records Using sObject
Collections", REST API Developer Guide), so a parent never shares a call with its
children.

Deleted records sit in the Recycle Bin for 15 days: ``queryAll`` and getDeleted
still return them (IsDeleted = true, every field intact) and ``undelete`` restores
them, until Salesforce purges them ("emptyRecycleBin()", SOAP API Developer Guide).
This module does not purge them; the read-back uses ``query``, which does not see
the bin.

API calls per batch:

* **one lookup query per type** (Contact, Lead): ``SELECT Id, Email,
  IndividualId`` by every address and ref of the batch;
* when those point at Individuals, **one query per type** for every Contact and
  Lead pointing at them, and **one** for the consent rows of the Individuals
  to delete (an org without the object answers INVALID_TYPE: it holds none);
* **one collections DELETE per tier and 200 records**: consent rows, then Contacts
  and Leads, then Individuals;
* when anything was deleted, the **verification**: the lookup queries again,
  and one query each for the deleted Individuals and consent rows by id.

A person with a Contact, a Lead, one Individual and a consent row costs 12
calls; a batch of 50 such people costs the same 12. A person Salesforce does
not hold costs the 2 lookups, which are the verification.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.salesforce.client import SalesforceClient, any_in, select
from connectors.salesforce.people import COLLECTION_LIMIT, PEOPLE, Spot, locate, look_up_spots
from core.errors import DeliveryError, PermanentError, TransientError
from core.model import ErasureReceipt, PersonAt

CONSENT = "ContactPointTypeConsent"
# Children before parents, one tier per call: a consent row's PartyId and a Contact's or
# Lead's IndividualId point at the Individual.
DELETE_TIERS: tuple[tuple[str, ...], ...] = ((CONSENT,), PEOPLE, ("Individual",))
# How an org without Data Protection and Privacy answers for its consent object.
ABSENT_OBJECT = frozenset({"invalid_type", "not_found"})
ALREADY_GONE = "ENTITY_IS_DELETED"
# A record locked by another transaction: the next attempt will likely get it.
RETRYABLE = frozenset({"UNABLE_TO_LOCK_ROW"})


@dataclass
class _Erasure:
    """One person's records to delete (id to type, in the order found) and what came of it."""

    spot: Spot
    doomed: dict[str, str] = field(default_factory=dict)
    kept: set[str] = field(default_factory=set)
    deleted: int = 0
    error: DeliveryError | None = None
    read: list[str] = field(default_factory=lambda: list(PEOPLE))
    left: int = 0

    def ids(self, sobject: str) -> set[str]:
        return {i for i, t in self.doomed.items() if t == sobject}


class Eraser:
    """Deletes people's records from Salesforce and reads back to verify."""

    def __init__(self, client: SalesforceClient) -> None:
        self._client = client

    def erase(self, people: Sequence[PersonAt]) -> list[ErasureReceipt]:
        jobs = [_Erasure(locate(p)) for p in people]
        pointers = self._find(jobs)
        if pointers:
            self._doom_individuals(jobs, pointers)
        self._delete(jobs)
        if any(job.doomed for job in jobs):
            self._verify(jobs)
        return [_receipt(p.subject_id, job) for p, job in zip(people, jobs, strict=True)]

    def _find(self, jobs: list[_Erasure]) -> dict[str, list[_Erasure]]:
        """Each person's Contacts and Leads (one query per type); which Individuals they
        point at, and whose records point at each."""
        pointers: dict[str, list[_Erasure]] = {}
        for sobject in PEOPLE:
            for row in look_up_spots(self._client, sobject, [j.spot for j in jobs]):
                for job in (j for j in jobs if j.spot.holds(sobject, row)):
                    job.doomed[str(row["Id"])] = sobject
                    if row.get("IndividualId"):
                        pointers.setdefault(str(row["IndividualId"]), []).append(job)
        return pointers

    def _doom_individuals(self, jobs: list[_Erasure],
                          pointers: dict[str, list[_Erasure]]) -> None:
        """Doom the Individuals no surviving record points at, and their consent rows."""
        doomed = {i for job in jobs for i in job.doomed}
        used = self._still_used(pointers, doomed)
        for individual, owners in pointers.items():
            for job in owners:
                if individual in used:
                    job.kept.add(individual)
                else:
                    job.doomed[individual] = "Individual"
        lonely = sorted(set(pointers) - used)
        for row in self._consents(lonely) if lonely else []:
            for job in pointers[str(row["PartyId"])]:
                job.doomed[str(row["Id"])] = CONSENT

    def _still_used(self, individuals: Collection[str], doomed: set[str]) -> set[str]:
        """The Individuals a Contact or Lead outside ``doomed`` points at (one query per type)."""
        where = any_in(IndividualId=sorted(individuals))
        used: set[str] = set()
        for sobject in PEOPLE:
            rows = self._client.query_all(f"{sobject} by Individual",
                                          select("Id, IndividualId", sobject, where))
            used.update(str(r["IndividualId"]) for r in rows if str(r["Id"]) not in doomed)
        return used

    def _consents(self, individuals: list[str]) -> list[dict[str, Any]]:
        """The consent rows of these Individuals; none in an org without the object."""
        try:
            return self._client.query_all(f"{CONSENT} lookup", select(
                "Id, PartyId", CONSENT, any_in(PartyId=individuals)))
        except PermanentError as exc:
            if exc.error_class in ABSENT_OBJECT:
                return []  # the org has no consent object, so it holds no consent rows
            raise

    def _delete(self, jobs: list[_Erasure]) -> None:
        """Delete every doomed record, tier after tier (DELETE_TIERS), 200 per call; settle
        each person. Results are matched to ids by position, as failures carry no id."""
        records = {i: t for job in jobs for i, t in job.doomed.items()}
        codes: dict[str, str | None] = {}
        for tier in DELETE_TIERS:
            ids = [i for i, sobject in records.items() if sobject in tier]
            for start in range(0, len(ids), COLLECTION_LIMIT):
                chunk = ids[start:start + COLLECTION_LIMIT]
                codes.update(zip(chunk, self._client.delete_collection(chunk), strict=True))
        for job in jobs:
            for record_id, sobject in job.doomed.items():
                code = codes[record_id]
                if code is None:
                    job.deleted += 1
                elif code != ALREADY_GONE and job.error is None:
                    job.error = _refused(sobject, record_id, code)

    def _verify(self, jobs: list[_Erasure]) -> None:
        """Read back: the lookup again, then the deleted Individuals and consent rows by id."""
        for sobject in PEOPLE:
            rows = look_up_spots(self._client, sobject, [j.spot for j in jobs])
            for job in jobs:
                job.left += sum(1 for row in rows if job.spot.holds(sobject, row))
        for sobject in ("Individual", CONSENT):
            ids = sorted({i for job in jobs for i in job.ids(sobject)})
            if not ids:
                continue
            rows = self._client.query_all(f"{sobject} verify",
                                          select("Id", sobject, any_in(Id=ids)))
            found = {str(r["Id"]) for r in rows}
            for job in (j for j in jobs if j.ids(sobject)):
                job.read.append(sobject)
                job.left += len(found & job.ids(sobject))


def _refused(sobject: str, record_id: str, code: str) -> DeliveryError:
    message = f"salesforce refused to delete {sobject} {record_id}: {code}"
    if code in RETRYABLE:
        return TransientError(message, error_class=code.lower())
    return PermanentError(message, error_class=code.lower())


def _receipt(subject_id: str, job: _Erasure) -> ErasureReceipt:
    """The person's proof: counts, the delete's status and what the read-back found."""
    verified = f"query {', '.join(job.read)} by address and id: {job.left} found"
    if job.kept:
        verified += f"; {len(job.kept)} Individual(s) shared with other records kept"
    error = job.error
    if error is None and job.left:
        error = TransientError(f"salesforce: {job.left} record(s) still readable after delete",
                               error_class="still_readable")
    return ErasureReceipt(subject_id, error=error, vendor_status=200 if job.doomed else None,
                          verified=verified, records=job.deleted)
