"""Withdrawals into Mailchimp: unsubscribe existing members, add nobody, re-subscribe nobody.

Mailchimp's only bulk write, ``POST /lists/{id}``, creates any member it does
not have. Adding a person just to record an opt-out would hand Mailchimp
personal data it never held, so only members known to exist are sent:

- a subject whose refs already name its member is known (``member:k<v>.<digest>``:
  a keyed hash of the address, never Mailchimp's own MD5 of it, which a list of
  addresses would reverse; the MD5 is computed from the address only in flight);
- so is one whose address was on the list at privasync's last bulk read of it
  (``listed``: the audience read a page of 1,000 at a time, on a schedule);
- any other subject is looked up with one ``GET .../members/{hash}``; a 404
  means there is nothing to withdraw. Those privasync already knows were not on
  the list (its last complete read, a recent 404) are not looked up when one
  read of the list's changes since then clears them all (membership.py).

A known member cannot silently disappear: archived members still exist, and a
permanently deleted address is refused by Mailchimp rather than re-added. So
the one batch call never creates a member. Grants are never written: an
unsubscribed member cannot be re-subscribed by API (a compliance error) and a
new subscription must come through Mailchimp's own double-opt-in form.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from connectors.mailchimp.client import MailchimpApi, subscriber_hash
from connectors.mailchimp.membership import Membership, Question
from core.crypto import normalise_email
from core.errors import PermanentError
from core.model import ConsentStatus, DestinationSubject, Outcome

log = logging.getLogger(__name__)

NOTE_GRANTS = "grants enter Mailchimp through its signup form"
NOTE_NOTHING = "no withdrawal to apply"
NOTE_ABSENT = "not a member of the list; nothing to withdraw"


class MemberKeys(Protocol):
    """Keyed references (core.crypto.Keyring): what privasync may store about a member."""

    def keyed_ref(self, kind: str, value: str) -> str: ...

    def keyed_refs(self, kind: str, value: str) -> list[str]: ...

    def delivery_key(self, body: bytes) -> str: ...


def member_ref(keys: MemberKeys, email: str) -> str:
    """The reference privasync stores for the member at ``email``: keyed, current version."""
    return f"member:{keys.keyed_ref('email', normalise_email(email))}"


def is_known_member(keys: MemberKeys, email: str, refs: Sequence[str]) -> bool:
    """Whether ``refs`` name the member at ``email`` (at any live key version)."""
    held = set(refs)
    return any(f"member:{r}" in held or f"mailchimp:member:{r}" in held
               for r in keys.keyed_refs("email", normalise_email(email)))


def no_address(subject_id: str) -> PermanentError:
    return PermanentError(f"subject {subject_id} has no e-mail address: a Mailchimp member is "
                          "found by its address", error_class="no_identifier")


@dataclass(frozen=True)
class _Pending:
    index: int
    subject_id: str
    email: str
    hash: str


class MailchimpDestination:
    """Applies subjects' current e-mail consent to one list's member status."""

    def __init__(self, api: MailchimpApi, list_id: str, purposes: tuple[str, ...],
                 keys: MemberKeys, membership: Membership) -> None:
        self._api = api
        self._list = list_id
        self._purposes = purposes
        self._keys = keys
        self._membership = membership

    def _withdrawn(self, subject: DestinationSubject) -> bool:
        return any(subject.status(p) == ConsentStatus.WITHDRAWN for p in self._purposes)

    def apply(self, subjects: Sequence[DestinationSubject]) -> list[Outcome]:
        outcomes: dict[int, Outcome] = {}
        pending: list[_Pending] = []
        unknown: list[tuple[_Pending, DestinationSubject]] = []
        for index, subject in enumerate(subjects):
            if not self._withdrawn(subject):
                granted = any(subject.status(p) == ConsentStatus.GRANTED for p in self._purposes)
                outcomes[index] = Outcome(subject.subject_id,
                                          note=NOTE_GRANTS if granted else NOTE_NOTHING)
            elif not subject.email:
                outcomes[index] = Outcome(subject.subject_id,
                                          error=no_address(subject.subject_id))
            else:
                member = _Pending(index, subject.subject_id, subject.email,
                                  subscriber_hash(subject.email))
                if subject.listed or is_known_member(self._keys, subject.email, subject.refs):
                    pending.append(member)
                else:
                    unknown.append((member, subject))
        statuses = self._membership.statuses(
            [Question(p.hash, s.unlisted_at) for p, s in unknown], archived_counts=True)
        for member, _ in unknown:
            status = statuses[member.hash]
            if status is None:
                outcomes[member.index] = Outcome(member.subject_id, note=NOTE_ABSENT)
            elif status in ("unsubscribed", "cleaned"):
                outcomes[member.index] = Outcome(
                    member.subject_id, learned_refs=(member_ref(self._keys, member.email),),
                    note=f"already {status}")
            else:  # archived ones too: unsubscribed, they stay out if ever restored
                pending.append(member)
        outcomes.update(self._unsubscribe(pending))
        return [outcomes[i] for i in range(len(subjects))]

    def _unsubscribe(self, pending: Sequence[_Pending]) -> dict[int, Outcome]:
        """One batch call for every member to unsubscribe; per-member errors per subject."""
        if not pending:
            return {}
        addresses = list(dict.fromkeys(p.email.lower() for p in pending))
        answer = self._api.call("POST", f"/lists/{self._list}", "mailchimp batch unsubscribe",
                                body={"members": [{"email_address": a, "status": "unsubscribed"}
                                                  for a in addresses],
                                      "update_existing": True})
        refused = refusals(answer)
        created(answer, self._membership)
        outcomes: dict[int, Outcome] = {}
        for p in pending:
            refusal = refused.get(p.email.lower())
            if refusal is None:
                outcomes[p.index] = Outcome(p.subject_id,
                                            learned_refs=(member_ref(self._keys, p.email),),
                                            note="unsubscribed")
            else:
                outcomes[p.index] = Outcome(p.subject_id, error=refusal.error(p.subject_id))
        return outcomes


def created(answer: Any, membership: Membership) -> None:
    """A batch that unexpectedly created members (it never should: only members known to
    exist are sent) is logged by count, and they are no longer known absent."""
    new = answer.get("new_members") if isinstance(answer, dict) else None
    if isinstance(new, list) and new:
        log.warning("mailchimp batch unexpectedly created members", extra={"count": len(new)})
        membership.absent.forget(subscriber_hash(str(m.get("email_address") or ""))
                                 for m in new if isinstance(m, dict))


# A batch answer's per-member ``error_code`` is one of two (specification: Marketing API
# "Batch update List members_errors", enum ERROR_CONTACT_EXISTS, ERROR_GENERIC). Each maps to
# a fixed error class; a code outside the enum is named as such, never passed on as a class.
BATCH_ERROR_CLASSES = {"ERROR_CONTACT_EXISTS": "contact_exists",
                       "ERROR_GENERIC": "error_generic"}
UNLISTED_BATCH_ERROR = "unlisted_batch_error"
_FIELD = re.compile(r"^[A-Za-z0-9_.]{1,64}$")


@dataclass(frozen=True)
class Refusal:
    """One member the batch refused: the error class and the field at fault, if named."""

    error_class: str
    field: str | None

    def error(self, subject_id: str) -> PermanentError:
        """ERROR_CONTACT_EXISTS: the member exists and was left as it was (the batch did
        not update it); ERROR_GENERIC: Mailchimp refused the write (a compliance state, a
        forgotten address, a field). Either way sending it again changes nothing: permanent.
        The message names the subject and the field, never the address or Mailchimp's text
        (which quotes it)."""
        field = f" (field {self.field})" if self.field else ""
        return PermanentError(f"mailchimp refused the member of subject {subject_id}{field}",
                              error_class=self.error_class)


def refusals(answer: Any) -> dict[str, Refusal]:
    """Lower-cased address -> its refusal, from a batch response's ``errors``."""
    errors = answer.get("errors") if isinstance(answer, dict) else None
    refused: dict[str, Refusal] = {}
    for entry in errors if isinstance(errors, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("email_address"), str):
            code = entry.get("error_code")
            field = entry.get("field")
            refused[entry["email_address"].lower()] = Refusal(
                BATCH_ERROR_CLASSES.get(code, UNLISTED_BATCH_ERROR) if isinstance(code, str)
                else UNLISTED_BATCH_ERROR,
                field if isinstance(field, str) and _FIELD.match(field) else None)
    return refused
