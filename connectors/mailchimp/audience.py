"""Reading the audience's members list a page at a time, whole or not at all.

privasync relies on a read of the list that ended having seen everyone on it
(core.directory): an address missing from it was not there. Offset pages alone do
not promise that: a member removed from a page already read moves everyone after
it one place up, and the first of the next page is skipped. So each page starts
``OVERLAP`` members before the end of the one before and must hold one of them;
if none is there (more removed between two pages than the overlap), the read
raises ``ListMoved`` rather than end with someone missing. Members added during a
read may be missed; they are the list's changes since it began (``changed_since``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from connectors.mailchimp.client import MailchimpApi
from core.errors import TransientError

PAGE = 1000  # the API's largest page ([S1] count: "Maximum value is 1000")
OVERLAP = 50  # members each page shares with the one before
# How far before a known time a change is looked for: Mailchimp stamps ``last_changed`` by
# its own clock, and privasync's may run ahead of it.
CLOCK_MARGIN = timedelta(minutes=15)


class ListMoved(TransientError):
    """The list changed under a read more than the pages' overlap absorbs."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what}: the list changed under the read; read it again later",
                         error_class="list_moved")


class OverBudget(Exception):
    """A read would take more calls than it was allowed."""


@dataclass
class Budget:
    """Calls a read may still make."""

    left: int


def calls_for(total: int) -> int:
    """The calls a read of ``total`` members takes, pages overlapping."""
    return 1 if total <= PAGE else 1 + -(-(total - PAGE) // (PAGE - OVERLAP))


def members(api: MailchimpApi, list_id: str, what: str, *, fields: tuple[str, ...] = (),
            status: str | None = None, since: datetime | None = None,
            budget: Budget | None = None, reserve: int = 0) -> Iterator[dict[str, Any]]:
    """Every member of the list (archived ones only with ``status="archived"``; changed at or
    after ``since`` if given), each with its ``id`` (the subscriber hash) and ``fields``.
    With a ``budget``, every call is taken from it, and ``reserve`` calls are left in it for
    later reads. Raises ListMoved, OverBudget (known from the first page), DeliveryError."""
    query = {"fields": ",".join(("members.id", *(f"members.{f}" for f in fields),
                                 "total_items"))}
    if status is not None:
        query["status"] = status
    if since is not None:
        query["since_last_changed"] = since.isoformat(timespec="seconds")
    offset, tail, first = 0, set[str](), True
    while True:
        if budget is not None and budget.left - reserve < 1:
            raise OverBudget(what)
        page = api.call("GET", f"/lists/{list_id}/members?"
                        + urlencode({**query, "count": PAGE, "offset": offset}), what)
        found = page.get("members") if isinstance(page, dict) else None
        total = page.get("total_items") if isinstance(page, dict) else None
        if not isinstance(found, list) or not isinstance(total, int):
            raise ListMoved(what)
        if budget is not None:
            budget.left -= 1
            if first and calls_for(total) - 1 > budget.left - reserve:
                raise OverBudget(what)
        first = False
        ids = [str(m.get("id")) for m in found if isinstance(m, dict)]
        if tail and not tail & set(ids):
            raise ListMoved(what)
        yield from (m for m in found if isinstance(m, dict) and str(m.get("id")) not in tail)
        end = offset + len(found)
        if end >= total:
            return
        if len(found) < PAGE:  # a short page before the end the list itself names
            raise ListMoved(what)
        tail, offset = set(ids[-OVERLAP:]), end - OVERLAP


def changed_since(api: MailchimpApi, list_id: str, since: datetime, *, archived: bool,
                  max_calls: int) -> set[str] | None:
    """The subscriber hashes of members changed since ``since`` (less CLOCK_MARGIN): added,
    re-addressed, re-subscribed, unsubscribed, and with ``archived`` also those archived.
    None when that would take more than ``max_calls`` calls or the list moved under the
    read: nothing may then be concluded from it. Raises DeliveryError."""
    statuses: tuple[str | None, ...] = (None, "archived") if archived else (None,)
    budget, changed = Budget(max_calls), set[str]()
    try:
        for n, status in enumerate(statuses):
            changed |= {str(m.get("id")) for m in members(
                api, list_id, "mailchimp changed members", status=status,
                since=since - CLOCK_MARGIN, budget=budget, reserve=len(statuses) - 1 - n)}
    except (ListMoved, OverBudget):
        return None
    return changed
