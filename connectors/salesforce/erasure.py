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
them. With ``hard_delete`` (the default setting) each tier's deleted ids are purged
from the bin at once by SOAP ``emptyRecycleBin()``, 200 ids a call (SOAP API Developer
Guide, "emptyRecycleBin()", "EmptyRecycleBinResult"); a per-id refusal becomes the
person's error, transient for a locked row, permanent otherwise. The lookups then use
``queryAll``, so a record deleted by an earlier attempt whose purge failed is found
again and purged (a found record already deleted skips the REST delete).

What "verified" means with ``hard_delete``: Salesforce keeps showing a purged record to
``queryAll`` for "typically 24 hours" (same page), so the read-back cannot be "queryAll
finds nothing". It is: the lookups by address and ref and the Individuals and consent
rows by id, all by ``queryAll``, find no live record (IsDeleted false) and no deleted
record that this erasure did not see out of the Recycle Bin; one out of it is one
``emptyRecycleBin()`` purged, or refused while it was already deleted before this attempt
(it is not in the bin: purged earlier, so ``undelete`` cannot restore it). The receipt
says how many such purged records ``queryAll`` still shows. Without ``hard_delete`` the
read-back uses ``query``, which does not see the bin, and the receipt says so.

API calls per batch:

* **one lookup query per type** (Contact, Lead): ``SELECT Id, Email,
  IndividualId`` by every address and ref of the batch;
* when those point at Individuals, **one query per type** for every Contact and
  Lead pointing at them, and **one** for the consent rows of the Individuals
  to delete (an org without the object answers INVALID_TYPE: it holds none);
* **one collections DELETE per tier and 200 records**: consent rows, then Contacts
  and Leads, then Individuals;
* with ``hard_delete``, **one emptyRecycleBin per tier and 200 records**;
* when anything was deleted, the **verification**: the lookup queries again,
  and one query each for the deleted Individuals and consent rows by id.

A person with a Contact, a Lead, one Individual and a consent row costs 12
calls, 15 with ``hard_delete``; a batch of 50 such people costs the same. A person Salesforce does
not hold costs the 2 lookups, which are the verification.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.salesforce.client import SalesforceClient, any_in, select
from connectors.salesforce.people import (
    COLLECTION_LIMIT,
    MINE,
    NAMED_LOOKUP_COLUMNS,
    PEOPLE,
    REVIEW,
    SHARED_REASON,
    Spot,
    claim,
    locate,
    look_up_spots,
    shared_addresses,
    unsure,
)
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
EMPTY_LIMIT = 200  # ids per emptyRecycleBin() call (SOAP API Developer Guide)


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
    binned: set[str] = field(default_factory=set)  # found already deleted
    emptied: set[str] = field(default_factory=set)  # out of the Recycle Bin
    purged_seen: int = 0  # purged records queryAll still shows
    held: set[str] = field(default_factory=set)  # reached only by a shared address: kept

    def ids(self, sobject: str) -> set[str]:
        return {i for i, t in self.doomed.items() if t == sobject}


class Eraser:
    """Deletes people's records from Salesforce, purges them from the Recycle Bin (with
    ``hard_delete``) and reads back to verify."""

    def __init__(self, client: SalesforceClient, *, hard_delete: bool = False) -> None:
        self._client = client
        self._hard = hard_delete

    def erase(self, people: Sequence[PersonAt]) -> list[ErasureReceipt]:
        jobs = [_Erasure(locate(p)) for p in people]
        pointers = self._find(jobs)
        if pointers:
            self._doom_individuals(jobs, pointers)
        self._delete(jobs)
        if any(job.doomed for job in jobs):
            self._verify(jobs)
        return [_receipt(p.subject_id, job, hard=self._hard)
                for p, job in zip(people, jobs, strict=True)]

    def _lookup(self, sobject: str, jobs: list[_Erasure]) -> list[dict[str, Any]]:
        """The lookup by address and ref; by queryAll (deleted records too) when purging."""
        columns = (f"{NAMED_LOOKUP_COLUMNS}, IsDeleted" if self._hard
                   else NAMED_LOOKUP_COLUMNS)
        return look_up_spots(self._client, sobject, [j.spot for j in jobs], columns,
                             include_deleted=self._hard)

    def _find(self, jobs: list[_Erasure]) -> dict[str, list[_Erasure]]:
        """Each person's Contacts and Leads (one query per type); which Individuals they
        point at, and whose records point at each. A record reached only by an address
        that records of another name carry too may be someone else's: it is left alone
        and named in the receipt for review (``people.claim``)."""
        pointers: dict[str, list[_Erasure]] = {}
        found = {sobject: self._lookup(sobject, jobs) for sobject in PEOPLE}
        shared = shared_addresses(r for rows in found.values() for r in rows)
        every = [(sobject, r) for sobject, rows in found.items() for r in rows]
        doubtful = [unsure(job.spot, every, shared) for job in jobs]
        for sobject, rows in found.items():
            for row in rows:
                for job, doubts in zip(jobs, doubtful, strict=True):
                    verdict = claim(job.spot, sobject, row, shared, doubts)
                    if verdict == REVIEW:
                        job.held.add(f"{sobject}:{row['Id']}")
                    if verdict != MINE:
                        continue
                    job.doomed[str(row["Id"])] = sobject
                    if row.get("IsDeleted"):
                        job.binned.add(str(row["Id"]))
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
        """Delete every doomed record, tier after tier (DELETE_TIERS), 200 per call, and
        with ``hard_delete`` purge each tier from the Recycle Bin before the next; settle
        each person. Results are matched to ids by position, as failures carry no id."""
        records = {i: t for job in jobs for i, t in job.doomed.items()}
        binned = {i for job in jobs for i in job.binned}
        codes: dict[str, str | None] = {}
        purges: dict[str, str | None] = {}
        for tier in DELETE_TIERS:
            ids = [i for i, sobject in records.items() if sobject in tier and i not in binned]
            for start in range(0, len(ids), COLLECTION_LIMIT):
                chunk = ids[start:start + COLLECTION_LIMIT]
                codes.update(zip(chunk, self._client.delete_collection(chunk), strict=True))
            if self._hard:
                gone = [i for i, sobject in records.items() if sobject in tier
                        and (i in binned or codes.get(i) in (None, ALREADY_GONE))]
                for start in range(0, len(gone), EMPTY_LIMIT):
                    chunk = gone[start:start + EMPTY_LIMIT]
                    purges.update(zip(chunk, self._client.empty_recycle_bin(chunk),
                                      strict=True))
        for job in jobs:
            for record_id, sobject in job.doomed.items():
                self._settle(job, record_id, sobject, codes.get(record_id, ALREADY_GONE),
                             purges)

    @staticmethod
    def _settle(job: _Erasure, record_id: str, sobject: str, code: str | None,
                purges: dict[str, str | None]) -> None:
        """One record's outcome: deleted or refused, then emptied from the bin or not."""
        if code is None:
            job.deleted += 1
        elif code != ALREADY_GONE:
            job.error = job.error or _refused("delete", sobject, record_id, code)
            return
        if record_id not in purges:
            return
        purge = purges[record_id]
        if purge is None or code == ALREADY_GONE:
            # Purged now; or refused while deleted before this attempt: not in the bin.
            job.emptied.add(record_id)
        else:
            job.error = job.error or _refused("purge from the Recycle Bin", sobject,
                                              record_id, purge)

    def _verify(self, jobs: list[_Erasure]) -> None:
        """Read back: the lookup again, then the deleted Individuals and consent rows by id
        (with ``hard_delete`` by queryAll, a deleted row counting only if still in the
        Recycle Bin as far as this erasure knows)."""
        for sobject in PEOPLE:
            rows = self._lookup(sobject, jobs)
            for job in jobs:
                self._count(job, [r for r in rows if job.spot.holds(sobject, r)
                                  and f"{sobject}:{r['Id']}" not in job.held])
        for sobject in ("Individual", CONSENT):
            ids = sorted({i for job in jobs for i in job.ids(sobject)})
            if not ids:
                continue
            rows = self._client.query_all(
                f"{sobject} verify", select("Id, IsDeleted" if self._hard else "Id", sobject,
                                            any_in(Id=ids)), include_deleted=self._hard)
            for job in (j for j in jobs if j.ids(sobject)):
                job.read.append(sobject)
                self._count(job, [r for r in rows if str(r["Id"]) in job.ids(sobject)])

    @staticmethod
    def _count(job: _Erasure, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            if row.get("IsDeleted") and str(row["Id"]) in job.emptied:
                job.purged_seen += 1
            else:
                job.left += 1


def _refused(verb: str, sobject: str, record_id: str, code: str) -> DeliveryError:
    message = f"salesforce refused to {verb} {sobject} {record_id}: {code}"
    if code in RETRYABLE:
        return TransientError(message, error_class=code.lower())
    return PermanentError(message, error_class=code.lower())


def _receipt(subject_id: str, job: _Erasure, *, hard: bool) -> ErasureReceipt:
    """The person's proof: counts, the delete's status and what the read-back found."""
    how = "queryAll" if hard else "query"
    verified = f"{how} {', '.join(job.read)} by address and id: {job.left} found"
    if hard and job.purged_seen:
        verified += (f" in Salesforce or its Recycle Bin; {job.purged_seen} purged record(s) "
                     "queryAll shows for about 24 h")
    if job.kept:
        verified += f"; {len(job.kept)} Individual(s) shared with other records kept"
    if job.held:
        verified += (f"; {len(job.held)} record(s) held for review, not erased ({SHARED_REASON})"
                     f": {', '.join(sorted(job.held))}")
    error = job.error
    if error is None and job.held and not job.doomed:
        # Nothing was surely theirs: an admin decides whose the records are.
        error = PermanentError(f"salesforce: {len(job.held)} record(s) reached only by a "
                               "shared address; review before erasing",
                               error_class="shared_address_review")
    if error is None and job.left:
        where = "readable or restorable" if hard else "readable"
        error = TransientError(f"salesforce: {job.left} record(s) still {where} after delete",
                               error_class="still_readable")
    return ErasureReceipt(subject_id, error=error, vendor_status=200 if job.doomed else None,
                          verified=verified, records=job.deleted)
