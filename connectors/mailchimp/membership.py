"""Whether people privasync has not seen on the audience are on it, in as few calls as is safe.

A withdrawal or a record for someone whose member privasync does not know must learn
whether the list holds them: one look-up each (``GET .../members/{hash}``, 404 when the
list holds no member at that address, archived ones included). Two things privasync may
already know answer "no" instead:

- the directory (core.directory): a complete read of the list that began at the
  subject's ``unlisted_at``, no older than ``directory_max_age``, held none of the
  person's addresses;
- a look-up answered 404 a moment ago (``Absent``: in this process's memory only,
  bounded in size and age, keyed by subscriber hash, never logged).

Both say the person was not on the list *then*. They may have joined since (a signup
form, an import, another tool), and a webhook saying so may reach another process, late
or never, so neither is trusted alone: one read of the members changed since the oldest
of those times (``audience.changed_since``) serves the whole batch, and whoever is in it
is looked up. When that read would cost more calls than the look-ups it saves, or cannot
be completed, everyone is looked up, as before.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from connectors.mailchimp.audience import changed_since
from connectors.mailchimp.client import MailchimpApi

ABSENT_FOR = timedelta(minutes=10)
ABSENT_LIMIT = 50_000  # subscriber hashes held; the oldest go first


class Absent:
    """Subscriber hashes a look-up found absent, each with when: at most ``limit`` of them,
    each for ``lifetime``. Memory only: an MD5 of an address is no secret."""

    def __init__(self, lifetime: timedelta = ABSENT_FOR, limit: int = ABSENT_LIMIT) -> None:
        self._lifetime, self._limit = lifetime, limit
        self._seen: OrderedDict[str, datetime] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, member_hash: str, at: datetime) -> None:
        with self._lock:
            self._seen[member_hash] = at
            self._seen.move_to_end(member_hash)
            while len(self._seen) > self._limit:
                self._seen.popitem(last=False)

    def since(self, member_hash: str, now: datetime) -> datetime | None:
        """When a look-up last found ``member_hash`` absent, unless that is too long ago."""
        with self._lock:
            at = self._seen.get(member_hash)
            if at is not None and now - at > self._lifetime:
                del self._seen[member_hash]
                return None
            return at

    def forget(self, member_hashes: Iterable[str]) -> None:
        with self._lock:
            for member_hash in member_hashes:
                self._seen.pop(member_hash, None)


@dataclass(frozen=True)
class Question:
    """Is the member at ``member_hash`` on the list? ``unlisted_at`` as DestinationSubject's."""

    member_hash: str
    unlisted_at: datetime | None


class Membership:
    """Answers Questions about one list; see the module docstring."""

    def __init__(self, api: MailchimpApi, list_id: str, *, directory_max_age: timedelta,
                 clock: Callable[[], datetime], absent: Absent) -> None:
        self._api, self._list = api, list_id
        self._max_age, self._clock, self.absent = directory_max_age, clock, absent

    def statuses(self, questions: Sequence[Question], *,
                 archived_counts: bool) -> dict[str, str | None]:
        """Each hash asked about -> its member's status, or None when the list holds no
        member there. ``archived_counts``: an archived member matters (a withdrawal still
        reaches it), so the changes read must show them too. Raises DeliveryError."""
        now = self._clock()
        known: dict[str, datetime] = {}
        ask: list[str] = []
        for q in dict((q.member_hash, q) for q in questions).values():
            since = [t for t in (self._unlisted(q, now), self.absent.since(q.member_hash, now))
                     if t is not None]
            if since:
                known[q.member_hash] = max(since)
            else:
                ask.append(q.member_hash)
        answers: dict[str, str | None] = {}
        listings = 2 if archived_counts else 1
        changed = changed_since(self._api, self._list, min(known.values()),
                                archived=archived_counts, max_calls=len(known)) \
            if len(known) > listings else None
        for member_hash in known:
            if changed is None or member_hash in changed:
                ask.append(member_hash)
            else:
                answers[member_hash] = None
        self.absent.forget(ask)
        for member_hash in ask:
            answers[member_hash] = self._look_up(member_hash)
        return answers

    def _unlisted(self, q: Question, now: datetime) -> datetime | None:
        fresh = q.unlisted_at is not None and now - q.unlisted_at <= self._max_age
        return q.unlisted_at if fresh and self._max_age > timedelta(0) else None

    def _look_up(self, member_hash: str) -> str | None:
        asked = self._clock()
        member = self._api.call("GET", f"/lists/{self._list}/members/{member_hash}"
                                "?fields=id,status", "mailchimp look up member", missing_ok=True)
        if member is None:
            self.absent.add(member_hash, asked)
            return None
        status = member.get("status") if isinstance(member, dict) else None
        return str(status) if status is not None else ""
