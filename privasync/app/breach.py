"""Breach scoping (Art. 33, R22): who and which fields a destination may have exposed in a
window, from privasync's delivery records and its stored references there. Ids and field
names only, never values."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.engine import Connection, Engine

from core.db import disclosures, jobs, reader, system_refs
from core.errors import BadInput
from core.mappings import Mappings


class UnknownDestination(BadInput):
    """A breach scope asked about a destination that is neither configured here nor was
    ever sent anything: "0 people" would be a false all-clear."""


def _known_destination(conn: Connection, configured: Sequence[str], destination: str) -> None:
    """Raise UnknownDestination, naming the configured ones, unless ``destination`` is
    configured, has had jobs (one configured once and removed since still counts) or is a
    system privasync holds references in."""
    if destination in configured or conn.execute(select(jobs.c.id).where(
            jobs.c.destination == destination).limit(1)).first() is not None \
            or conn.execute(select(disclosures.c.day).where(
                disclosures.c.destination == destination).limit(1)).first() is not None \
            or conn.execute(select(system_refs.c.ref).where(
                system_refs.c.system == destination).limit(1)).first() is not None:
        return
    raise UnknownDestination("no such destination (neither configured, nor ever sent "
                             "anything, nor holding anyone privasync has a reference for); "
                             f"the configured ones: {', '.join(configured)}")


def breach_scope(engine: Engine, mappings: Mappings, configured: Sequence[str],
                 destination: str, start: datetime, end: datetime) -> dict[str, Any]:
    """Who (ids) and which fields (names, never values) ``destination`` may have exposed
    between ``start`` and ``end`` (R22), counted two ways and then once per person:
    ``people_sent``, everyone privasync itself delivered something to it in the window
    (its delivery records); ``people_held``, everyone it holds according to privasync's
    stored references there (a record id, a member reference), known before ``end``,
    whoever put them there; ``people``, the two together, each person once.
    ``configured``: every destination this installation can queue jobs for.
    Raises UnknownDestination for a name privasync has never had as a destination."""
    if start.tzinfo is None or end.tzinfo is None or end <= start:
        raise BadInput("the window needs two times with zones, the second after the first")
    with reader(engine).connect() as conn:
        _known_destination(conn, configured, destination)
        rows = [*conn.execute(select(jobs.c.subject_id, jobs.c.kind, jobs.c.sent,
                                     func.min(jobs.c.done_at), func.max(jobs.c.done_at))
                              .where(and_(jobs.c.destination == destination,
                                          jobs.c.status == "done", jobs.c.done_at >= start,
                                          jobs.c.done_at < end))
                              .group_by(jobs.c.subject_id, jobs.c.kind, jobs.c.sent)),
                *_disclosed(conn, destination, start, end)]
        held = dict(conn.execute(select(system_refs.c.subject_id,
                                        func.min(system_refs.c.created_at))
                                 .where(system_refs.c.system == destination,
                                        system_refs.c.created_at < end)
                                 .group_by(system_refs.c.subject_id)).all())
    people: dict[str, dict[str, Any]] = {}
    for subject_id, kind, sent, first, last in rows:
        entry = people.setdefault(subject_id, {"subject_id": subject_id, "fields": set(),
                                               "kinds": set(), "first": first, "last": last})
        entry["fields"] |= {f for f in (sent or "").split(",") if f}
        entry["kinds"].add(kind)
        entry["first"], entry["last"] = min(entry["first"], first), max(entry["last"], last)
    partner = mappings.partners.get(destination.removeprefix("partner:"))
    identifiers = list(partner.identifiers) if partner is not None and \
        destination.startswith("partner:") else ["the destination's own record ids"]
    everyone = sorted({*people, *held})
    return {"destination": destination, "from": start.isoformat(), "to": end.isoformat(),
            "identifiers_sent": identifiers, "people": len(everyone),
            "people_sent": len(people), "people_held": len(held),
            "counts": BREACH_COUNTS,
            "fields": sorted({f for p in people.values() for f in p["fields"]}),
            "subjects": [_scoped(s, people.get(s), held.get(s)) for s in everyone]}


def _disclosed(conn: Connection, destination: str, start: datetime,
               end: datetime) -> list[Any]:
    """What ``destination`` was sent in the window by jobs pruned since (``disclosures``,
    per person and day): a day whose first and last sending enclose part of the window."""
    d = disclosures.c
    return list(conn.execute(
        select(d.subject_id, d.kind, d.sent, func.min(d.first_at), func.max(d.last_at))
        .where(d.destination == destination, d.day > start - timedelta(days=1), d.day < end,
               d.first_at < end, d.last_at >= start)
        .group_by(d.subject_id, d.kind, d.sent)).all())


BREACH_COUNTS = {
    "people": "everyone below, each person once: sent or held, or both",
    "people_sent": "people privasync itself delivered something to the destination in the "
                   "window (its delivery records; past the jobs' keeping time these are kept "
                   "per person and day, and a day with sendings before and after the window "
                   "counts)",
    "people_held": "people the destination holds according to privasync's stored references "
                   "there, known before the window's end, whoever put them there; a person "
                   "erased since is no longer referenced (their references went with their "
                   "key) but stays counted as sent"}


def _scoped(subject_id: str, sent: dict[str, Any] | None,
            held_since: datetime | None) -> dict[str, Any]:
    """One person in a breach scope: why they count (``sent``, ``held``), what was sent."""
    return {"subject_id": subject_id,
            "why": [w for w, y in (("sent", sent), ("held", held_since)) if y is not None],
            "fields": sorted(sent["fields"]) if sent else [],
            "what": sorted(sent["kinds"]) if sent else [],
            "first": sent["first"].isoformat() if sent else None,
            "last": sent["last"].isoformat() if sent else None,
            "referenced_since": held_since.isoformat() if held_since else None}
