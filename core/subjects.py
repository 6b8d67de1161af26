"""A subject as an administrator may see it: ids and states, never a personal value.

Consent per purpose and channel with where its evidence lies, which kinds of
identifier and which systems' references privasync holds (counted, not shown),
the person's requests and jobs. Addresses, names and field values are only ever
given out through a data-subject request (an access or portability export).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from core import state
from core.crypto import Keyring
from core.db import identifiers, jobs, requests, subjects, system_refs

# Proof references that are only event or request ids; any other (one may embed a
# vendor's unkeyed hash of the address) is shown by its kind alone.
_ID_ONLY_PROOF = ("hubspot-event:", "request:")


@dataclass(frozen=True)
class Subject:
    id: str
    created_at: datetime
    merged_into: str | None
    erased_at: datetime | None
    is_customer: bool
    consents: list[dict[str, Any]]
    identifiers: dict[str, int]
    systems: dict[str, int]
    requests: list[dict[str, Any]]
    jobs: dict[str, dict[str, int]]


def describe(conn: Connection, keyring: Keyring, subject_id: str) -> Subject | None:
    """The subject's states and counts, or None if there is no such subject (evidence is
    read with the subject's key, unwrapped by ``keyring``)."""
    row = conn.execute(select(subjects).where(subjects.c.id == subject_id)).first()
    if row is None:
        return None
    consents = [_consent(c) for _, c in sorted(state.load(conn, subject_id, keyring).items(),
                                               key=lambda kv: (kv[0][0], kv[0][1].value))]
    kinds = {r[0]: int(r[1]) for r in conn.execute(
        select(identifiers.c.kind, func.count()).where(identifiers.c.subject_id == subject_id)
        .group_by(identifiers.c.kind))}
    systems = {r[0]: int(r[1]) for r in conn.execute(
        select(system_refs.c.system, func.count()).where(system_refs.c.subject_id == subject_id)
        .group_by(system_refs.c.system))}
    asked = [{"id": r.id, "kind": r.kind, "status": r.status,
              "received_at": r.received_at.isoformat()}
             for r in conn.execute(select(requests.c.id, requests.c.kind, requests.c.status,
                                          requests.c.received_at)
                                   .where(requests.c.subject_id == subject_id)
                                   .order_by(requests.c.received_at))]
    by_destination: dict[str, dict[str, int]] = {}
    for destination, status, n in conn.execute(
            select(jobs.c.destination, jobs.c.status, func.count())
            .where(jobs.c.subject_id == subject_id).group_by(jobs.c.destination, jobs.c.status)):
        by_destination.setdefault(destination, {})[status] = int(n)
    return Subject(row.id, row.created_at, row.merged_into, row.erased_at, bool(row.is_customer),
                   consents, kinds, systems, asked, by_destination)


def _consent(c: Any) -> dict[str, Any]:
    evidence = None
    if c.evidence is not None:
        ref = c.evidence.proof_reference or ""
        evidence = {"source": c.evidence.source, "method": c.evidence.method,
                    "wording_version": c.evidence.wording_version,
                    "reference_kind": ref.split(":", 1)[0] or None,
                    "reference": ref if ref.startswith(_ID_ONLY_PROOF) else None}
    return {"purpose": c.purpose, "channel": c.channel.value, "status": c.status.value,
            "occurred_at": c.occurred_at.isoformat(), "source": c.source, "evidence": evidence}
