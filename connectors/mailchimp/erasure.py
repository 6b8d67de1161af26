"""Art. 17 at Mailchimp: permanently delete a person's members, then read back to prove it.

- ``POST .../members/{hash}/actions/delete-permanent`` (204) is the only call that
  removes a member's personal data. ``DELETE`` on a member only archives it: the
  data stays and the member still reads back. It is never used, not as a fallback
  either.
- One call per member, one at a time. Mailchimp has no bulk delete-permanent,
  and ``/batches`` runs asynchronously, so its outcome could not be verified
  within the job. One connection at a time also keeps us far from the cap of 10
  simultaneous connections per key.
- A 404 means not a member: nothing to erase there.
- Mailchimp's 400 compliance problems ("Member In Compliance State", "Forgotten
  Email Not Subscribed") answer attempts to re-subscribe or re-add a member
  (VENDOR_APIS.md C), not deletions. If delete-permanent is refused anyway (any
  status other than 2xx, 404, 401/403 and the transient ones), the refusal goes
  on that person's receipt as a PermanentError named by the problem title:
  trying again will not change Mailchimp's answer, a person has to look. The
  person's other members are still deleted, and everything is verified.
- After delete-permanent, Mailchimp refuses the address except through its own
  hosted form. Nothing here writes a member, so nothing can try to re-add one.
- Verification: every address and member hash must then read 404. A member still
  readable is not DONE but a TransientError receipt (``still_readable``).
  ``records`` counts the members whose deletion was both acknowledged and verified.
- A 429 (the connection cap), a 5xx or a network failure stops the batch. That
  person and everyone after them get a receipt carrying the error, with its
  Retry-After. The people before keep their receipts: a deletion cannot be
  replayed, so a retry would read 404 and lose the count of members removed.
  (A person interrupted half-way loses that count: their retry reports the rest.)
  Before anybody was touched (the list check), the failure is raised.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from connectors.mailchimp.client import MailchimpApi
from connectors.mailchimp.locate import member_hashes, no_identifier, require_list
from core.errors import AuthError, PermanentError, TransientError
from core.model import ErasureReceipt, PersonAt

ERASE_BATCH = 50  # at two calls per member, a batch stays within a couple of minutes
STILL_READABLE = "still_readable"


class MailchimpErasure:
    """Erases people from one list (audience) and verifies they are gone."""

    def __init__(self, api: MailchimpApi, list_id: str) -> None:
        self._api = api
        self._list = list_id

    def erase(self, people: Sequence[PersonAt]) -> list[ErasureReceipt]:
        """One receipt per person, in order (see the module's docstring for what stops a batch).

        Raises TransientError, PermanentError or AuthError when the list cannot be read,
        and AuthError when Mailchimp rejects the key.
        """
        require_list(self._api, self._list, "mailchimp erase")
        receipts: list[ErasureReceipt] = []
        for person in people:
            receipt = self._erase(person)
            receipts.append(receipt)
            if _stops_the_batch(receipt.error):
                receipts += [ErasureReceipt(p.subject_id, error=receipt.error)
                             for p in people[len(receipts):]]
                break
        return receipts

    def _member(self, member_hash: str) -> str:
        return f"/lists/{self._list}/members/{member_hash}"

    def _erase(self, person: PersonAt) -> ErasureReceipt:
        hashes = member_hashes(person)
        if not hashes:
            return ErasureReceipt(person.subject_id, error=no_identifier(person.subject_id))
        statuses: dict[str, int] = {}
        refusals: list[PermanentError] = []
        try:
            for member_hash in hashes:
                answer = self._delete(member_hash)
                if isinstance(answer, PermanentError):
                    refusals.append(answer)
                else:
                    statuses[member_hash] = answer
            absent = {h for h in hashes if self._absent(h)}
        except TransientError as exc:
            return ErasureReceipt(person.subject_id, error=exc, vendor_status=_erasing(statuses))
        return _receipt(person.subject_id, hashes, statuses, absent,
                        refusals[0] if refusals else None)

    def _delete(self, member_hash: str) -> int | PermanentError:
        """The status of delete-permanent (204, or 404 if not a member), or its refusal."""
        try:
            return self._api.status("POST", f"{self._member(member_hash)}/actions/delete-permanent",
                                    "mailchimp delete member permanently")
        except AuthError:
            raise
        except PermanentError as refused:
            return refused

    def _absent(self, member_hash: str) -> bool:
        """Whether the member now reads 404 (an archived member still reads back)."""
        return self._api.call("GET", f"{self._member(member_hash)}?fields=status",
                              "mailchimp verify member erased", missing_ok=True) is None


def _receipt(subject_id: str, hashes: Sequence[str], statuses: Mapping[str, int],
             absent: set[str], refused: PermanentError | None) -> ErasureReceipt:
    """DONE only when every member reads 404; ``records`` counts deletions acknowledged
    and verified; a refusal outranks a member still readable as the error."""
    still = len(hashes) - len(absent)
    error = refused or (TransientError(
        f"mailchimp: {still} member(s) of subject {subject_id} still readable after "
        "delete-permanent", error_class=STILL_READABLE) if still else None)
    removed = sum(1 for h, status in statuses.items() if status // 100 == 2 and h in absent)
    return ErasureReceipt(subject_id, error=error, vendor_status=_erasing(statuses),
                          verified=f"GET member: 404 for {len(absent)} of {len(hashes)}",
                          records=removed)


def _erasing(statuses: Mapping[str, int]) -> int | None:
    """The status that says what erasing did: a 2xx if a member was removed, else 404."""
    answered = list(statuses.values())
    return next((s for s in answered if s // 100 == 2), answered[0] if answered else None)


def _stops_the_batch(error: Exception | None) -> bool:
    """Rate limits and outages stop the batch; a member still readable is that person's."""
    return isinstance(error, TransientError) and error.error_class != STILL_READABLE
