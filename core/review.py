"""Records held for review in an access answer, decided by an admin (RequestStep.REVIEW).

A system may return, for the person, a record that matched only by an address
another record shares (two family members with one address): it is kept apart
from the answer, sealed under the person's key, and named by id in the
destination's receipt (``held_for_review``). An admin decides each such record
once, with a reason: an included record joins the answer (its fields move into
the gathered export, so ``requests export`` shows them), an excluded one is
dropped (its fields deleted from the export). The receipt then lists it under
``included_after_review`` or ``excluded_after_review`` instead. While any record is
held, the destination stands ``awaiting_review`` and an open request waits (it is not
complete, its deadline and overdue flag run on): the decision on the last one makes
the destination done and finishes the request like any last answer. Only a record
still held for that request can be decided: not one decided already, not after
a rejection, not once the gathered answer is gone (past its keeping time, or
with the person's key at an erasure).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from core import subject_requests as rq
from core.crypto import Keyring
from core.db import request_exports
from core.errors import BadInput
from core.model import EXCLUDE, INCLUDE, RequestAction, RequestKind

HELD, INCLUDED, EXCLUDED = "held_for_review", "included_after_review", "excluded_after_review"
_DONE = {INCLUDE: INCLUDED, EXCLUDE: EXCLUDED}
# (request, subject, destination, record -> include or exclude): decided, to be written
Reviewed = tuple[str, str, str, dict[str, str]]


def waiting(held: int) -> str:
    """A destination's reason while records of it wait for an admin's decision."""
    return f"awaiting review: {held} record(s) held, not in the answer"


def decide(changes: rq.Changes, kept: set[tuple[str, str]], request: rq.Request,
           ev: RequestAction) -> dict[str, dict[str, str]]:
    """The decisions of ``ev`` by destination (record -> include or exclude), against the
    request as ``changes`` left it; ``kept``: the (request, destination) pairs whose
    gathered answer is still kept. Raises BadInput, naming why, when any one cannot be
    taken: then none is."""
    if request.kind not in (RequestKind.ACCESS, RequestKind.PORTABILITY):
        raise BadInput("only an access or portability request holds records for review")
    if request.status == rq.REJECTED:
        raise BadInput("the request was rejected: nothing is sent to the person")
    if not ev.records:
        raise BadInput("name at least one held record to include or exclude")
    if not ev.reason.strip():
        raise BadInput("a review decision needs a reason")
    names = [name for name, _ in ev.records]
    if len(set(names)) != len(names):
        raise BadInput("a record is named twice: decide each once")
    if any(decision not in (INCLUDE, EXCLUDE) for _, decision in ev.records):
        raise BadInput("a record is either included or excluded")
    found = changes.receipts(request)
    decided: dict[str, dict[str, str]] = {}
    for name, decision in ev.records:
        destination, record = _locate(found, name)
        if (request.id, destination) not in kept:
            raise BadInput(f"the answer gathered from {destination} is no longer kept (past "
                           "its keeping time, or the person was erased): nothing is left to "
                           "decide on")
        decided.setdefault(destination, {})[record] = decision
    return decided


def _locate(found: dict[str, dict[str, Any]], name: str) -> tuple[str, str]:
    """The (destination, record) a name given by the admin stands for: a record id held
    at one destination, or ``DESTINATION:RECORD``. Raises BadInput otherwise (quoting no
    input: only ids privasync listed itself)."""
    held = [(d, r) for d, receipt in sorted(found.items()) for r in receipt.get(HELD) or []
            if name in (r, f"{d}:{r}")]
    if len(held) > 1:
        raise BadInput(f"that record id is held at {', '.join(d for d, _ in held)}: name it "
                       "as DESTINATION:RECORD")
    if held:
        return held[0]
    for d, receipt in sorted(found.items()):
        for done, said in ((INCLUDED, "included"), (EXCLUDED, "excluded")):
            for r in receipt.get(done) or []:
                if name in (r, f"{d}:{r}"):
                    raise BadInput(f"record {r} at {d} was {said} already: a decision is "
                                   "final")
    waiting = [f"{d}:{r}" for d, receipt in sorted(found.items())
               for r in receipt.get(HELD) or []]
    raise BadInput("a record named is not held for review for this request; held now: "
                   + (", ".join(waiting) or "none"))


def plan_decisions(changes: rq.Changes, request: rq.Request,
                   decided: dict[str, dict[str, str]]) -> list[Reviewed]:
    """Move each decided record in its destination's receipt (into ``changes``); returns
    the changes to the gathered exports, for ``write``."""
    found = changes.receipts(request)
    status = changes.statuses(request)
    reviewed: list[Reviewed] = []
    for destination, records in sorted(decided.items()):
        receipt = found[destination]
        receipt[HELD] = [r for r in receipt.get(HELD) or [] if r not in records]
        for decision, key in _DONE.items():
            receipt[key] = sorted({*(receipt.get(key) or []),
                                   *(r for r, d in records.items() if d == decision)})
        left = len(receipt[HELD])
        state = status[destination]
        if state == rq.AWAITING_REVIEW and not left:
            state = rq.DONE  # the last held record decided: the answer is whole
        changes.move(request.move(destination, state, receipt=receipt,
                                  reason=waiting(left) if left else None))
        reviewed.append((request.id, request.subject_id, destination, dict(records)))
    return reviewed


def write(conn: Connection, reviews: Sequence[Reviewed],
          keys: Mapping[str, bytes | None]) -> None:
    """Apply the decisions to the gathered exports in the caller's transaction: included
    records' fields join the answer, excluded ones' are deleted; the system's note says
    how many of each."""
    for request_id, subject_id, destination, records in reviews:
        key = keys.get(subject_id)
        where = (request_exports.c.request_id == request_id,
                 request_exports.c.destination == destination)
        payload = conn.execute(select(request_exports.c.payload).where(*where)
                               ).scalar_one_or_none()
        plain = Keyring.decrypt(key, payload) if key is not None and payload else None
        if plain is None:  # gone since the batch was read: nothing left to change
            continue
        data = json.loads(plain)
        held = list(data.get("review") or [])
        data["fields"] = list(data["fields"]) + [
            f for h in held if records.get(h["record"]) == INCLUDE for f in h["fields"]]
        data["review"] = [h for h in held if h["record"] not in records]
        counts = data.setdefault("reviewed", {INCLUDE: 0, EXCLUDE: 0})
        for decision in records.values():
            counts[decision] = int(counts.get(decision, 0)) + 1
        assert key is not None
        conn.execute(update(request_exports).where(*where).values(
            payload=Keyring.encrypt(key, json.dumps(data).encode())))
