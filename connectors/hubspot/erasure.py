"""Erasing people from HubSpot (Art. 17) with its GDPR delete, verified by reading back.

Per call: one batch read by e-mail first (which contacts exist: the count, and which
refs the addresses already reach); one GDPR delete per address, since HubSpot has no
batch form and blocklists an address it does not hold, so every address is sent; one
per ref that no known address reaches (a 404 there means already gone); then one batch
read by e-mail and one by id. A contact still readable is not erased, whatever the
deletes answered. The deletes and the read-back take their slots of the shared rate
window together, before the first delete, so a batch never meets the limit halfway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from hubspot.crm.contacts import PublicGdprDeleteInput

from connectors.hubspot.contacts import (
    IDENTITY_PROPERTY,
    ContactReader,
    Read,
    addresses,
    contact_ids,
)
from connectors.hubspot.sdk import Answer, HubSpotSdk
from core.errors import AuthError, DeliveryError, PermanentError, Throttled, TransientError
from core.model import ErasureReceipt, PersonAt

ERASE_BATCH = 50
VERIFY_CALLS = 2  # the read-back: one batch read by e-mail, one by id
# The Contacts v3 spec lists only 204 and ``default`` for gdpr-delete; that an unknown id
# is answered 404 is HubSpot's observed behaviour (assumption), read as "already gone".
_GONE = 404
# Failures that every later delete of the call would meet as well: stop asking.
_CALL_WIDE = frozenset({"http_429", "network", "rate_limited", "rate_limiter_unavailable"})


@dataclass
class _Erasure:
    """One person's erasure as it goes: what was asked, answered and read back."""

    person: PersonAt
    emails: list[str]
    ids: list[str]
    existed: set[str] = field(default_factory=set)
    removed_by_id: set[str] = field(default_factory=set)
    statuses: list[int] = field(default_factory=list)
    request_ids: list[str] = field(default_factory=list)
    error: DeliveryError | None = None
    verified: str = ""
    records: int = 0

    def checked_ids(self) -> list[str]:
        """Contact ids to read back: the refs and every contact found or removed."""
        return sorted(set(self.ids) | self.existed | self.removed_by_id, key=int)

    def receipt(self) -> ErasureReceipt:
        return ErasureReceipt(
            subject_id=self.person.subject_id, error=self.error,
            vendor_status=min(self.statuses) if self.statuses else None,
            vendor_request_id=",".join(self.request_ids) or None, verified=self.verified,
            records=self.records)


def _not_attempted(stop: DeliveryError) -> DeliveryError:
    """The error of a person not asked for because an earlier delete met ``stop``."""
    message = f"hubspot gdpr delete not attempted after {stop.error_class} on an earlier subject"
    if isinstance(stop, AuthError):
        return AuthError(message, error_class=stop.error_class)
    retry_after = stop.retry_after if isinstance(stop, TransientError) else None
    kind = Throttled if isinstance(stop, Throttled) else TransientError
    return kind(message, retry_after=retry_after, error_class=stop.error_class)


class Eraser:
    """GDPR-deletes people's contacts and proves, by reading, that they are gone."""

    def __init__(self, sdk: HubSpotSdk, reader: ContactReader) -> None:
        self._sdk = sdk
        self._basic_api = sdk.client.crm.contacts.basic_api
        self._reader = reader
        self._window = sdk.window

    def erase(self, people: Sequence[PersonAt]) -> list[ErasureReceipt]:
        """One receipt per person, in order. Raises DeliveryError when nothing could be done
        (the first read failed, or the first delete met a rate limit, network or auth error)."""
        work = [self._plan(p) for p in people]
        todo = [w for w in work if w.error is None]
        if todo:
            found = self._read_emails(todo).found
            for w in todo:
                w.existed = {found[e].id for e in w.emails if e in found}
            todo, slots = self._within_budget(todo)
            with self._window.reserved(slots):
                self._delete_all(todo)
                self._verify([w for w in todo if w.error is None])
        return [w.receipt() for w in work]

    def _within_budget(self, todo: list[_Erasure]) -> tuple[list[_Erasure], list[str]]:
        """The people whose deletes and read-back fit in what is free of HubSpot's rate
        window now, with those slots; the others are not asked for now (Throttled: no
        attempt spent). Meeting the limit after the deletes would throw their read-back
        away, and the next try would send every delete again."""
        costs = [len(w.emails) + sum(1 for i in w.ids if i not in w.existed) for w in todo]
        try:
            slots = self._window.take(sum(costs) + VERIFY_CALLS,
                                      at_least=costs[0] + VERIFY_CALLS)
            wait = self._window.seconds
        except Throttled as full:
            slots, wait = [], full.retry_after or self._window.seconds
        room, kept = len(slots) - VERIFY_CALLS, 0
        for cost in costs:
            if cost > room:
                break
            room, kept = room - cost, kept + 1
        used = len(slots) - room if kept else 0
        self._window.give_back(slots[used:])
        for w in todo[kept:]:
            w.error = Throttled("hubspot gdpr delete not attempted: the rate window is spent",
                                retry_after=wait, error_class="rate_budget")
        return todo[:kept], slots[:used]

    @staticmethod
    def _plan(person: PersonAt) -> _Erasure:
        work = _Erasure(person, addresses(person.emails), contact_ids(person.refs))
        if not work.emails and not work.ids:
            work.error = PermanentError(f"subject {person.subject_id} has no e-mail address or "
                                        "contact ref for HubSpot", error_class="no_identifier")
        return work

    def _read_emails(self, todo: Sequence[_Erasure]) -> Read:
        emails = [e for w in todo for e in w.emails]
        return self._reader.read(emails, by_email=True, properties=[IDENTITY_PROPERTY]) \
            if emails else Read()

    def _delete_all(self, todo: Sequence[_Erasure]) -> None:
        """Delete person by person; a rate limit, network or auth failure ends the round."""
        stop: DeliveryError | None = None
        for work in todo:
            if stop is not None:
                work.error = _not_attempted(stop)
                continue
            try:
                self._delete(work)
            except DeliveryError as exc:
                work.error = exc
                if isinstance(exc, AuthError) or exc.error_class in _CALL_WIDE:
                    if not any(w.statuses for w in todo):
                        raise
                    stop = exc

    def _delete(self, work: _Erasure) -> None:
        """Every address (one HubSpot does not hold gets blocklisted), then each ref no
        address reached; a 404 by id means the contact is already gone."""
        for email in work.emails:
            self._note(work, self._sdk.send(
                "hubspot gdpr delete by email", self._basic_api.purge_with_http_info,
                PublicGdprDeleteInput(object_id=email, id_property=IDENTITY_PROPERTY)))
        for contact_id in (i for i in work.ids if i not in work.existed):
            answer = self._sdk.send(
                "hubspot gdpr delete by id", self._basic_api.purge_with_http_info,
                PublicGdprDeleteInput(object_id=contact_id), tolerated=(_GONE,))
            self._note(work, answer)
            if answer.status != _GONE:
                work.removed_by_id.add(contact_id)

    @staticmethod
    def _note(work: _Erasure, answer: Answer) -> None:
        work.statuses.append(answer.status)
        if answer.correlation_id:
            work.request_ids.append(answer.correlation_id)

    def _verify(self, done: Sequence[_Erasure]) -> None:
        """Read every address and contact id back; anything found means not erased."""
        if not done:
            return
        ids = [i for w in done for i in w.checked_ids()]
        try:
            by_email = self._read_emails(done)
            by_id = self._reader.read(ids, by_email=False, properties=[IDENTITY_PROPERTY])
        except DeliveryError as exc:
            for work in done:  # counted from what the deletes answered, as nothing was read
                work.error, work.verified = exc, "not verified: the read-back failed"
                work.records = len(work.existed | work.removed_by_id)
            return
        for work in done:
            self._judge(work, by_email, by_id)

    @staticmethod
    def _judge(work: _Erasure, by_email: Read, by_id: Read) -> None:
        """Say what was read back; a contact found, or a read not answered, is not done."""
        sid, ids = work.person.subject_id, work.checked_ids()
        left = {by_email.found[e].id for e in work.emails if e in by_email.found} | \
            {i for i in ids if i in by_id.found}
        checks = [("batch read by email", work.emails, by_email), ("contacts by id", ids, by_id)]
        work.verified = "; ".join(_tally(*check) for check in checks if check[1])
        work.records = len((work.existed | work.removed_by_id) - left)
        unanswered = sum(k in read.unanswered for _, keys, read in checks for k in keys)
        if left:
            work.error = TransientError(f"hubspot: {len(left)} contact(s) of subject {sid} "
                                        "still readable after gdpr delete",
                                        error_class="still_readable")
        elif unanswered:
            work.error = TransientError(f"hubspot: {unanswered} read-back(s) of subject {sid} "
                                        "unanswered", error_class="not_verified")


def _tally(label: str, keys: Sequence[str], read: Read) -> str:
    """``label: found of asked found`` and, if any, how many HubSpot did not answer."""
    found, unanswered = sum(k in read.found for k in keys), sum(k in read.unanswered for k in keys)
    return f"{label}: {found} of {len(keys)} found" + \
        (f", {unanswered} unanswered" if unanswered else "")
