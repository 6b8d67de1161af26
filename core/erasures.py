"""The erasure log: what each completed erasure destroyed, kept outside the database.

A backup of the database taken before an erasure still holds the person's wrapped
key; restored, it would give the person back. So every completed erasure is also
written to a log that a restore does not roll back (a file the operator keeps apart
from the database backups, behind the ``ErasureLog`` port), and ``privasync
restore-check`` replays it against a restored database (core.restore).

An entry holds ids and keyed hashes only: the request id, when the erasure was
completed, the internal ids of the subjects shredded (pseudonymous, like the
ledger's), the keyed hashes of their identifiers (the suppression list's digests) and
of the vendor record ids privasync held for them, with the digest version they were
made at, and the destinations the request went to. Never an address.

Crash between commit and append: the entry is written to ``erasure_log_pending`` in
the shredding transaction itself, and appended to the log after the commit; a crash
in between leaves the row, and the next ``flush`` appends it. Appending is idempotent
by request id, so a crash after the append but before the row is deleted only makes
the next flush a no-op. A line is never written for an erasure that did not commit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Connection, Engine

from core.crypto import SYSTEM_REF, Keyring
from core.db import erasure_log_pending, identifiers, insert_for, system_refs

# Re-exported: the erasure log file (api/erasure_log.py) reads its entries from here.
from core.erasure_record import ErasureRecord

if TYPE_CHECKING:
    from core.ports import ErasureLog

# The digest kind of a vendor record id (``system:ref``): the suppression list's own, so a
# logged record id matches the suppression entry that restore-check puts back.
REF_KIND = SYSTEM_REF


def ref_digest(keyring: Keyring, system: str, ref: str, version: int) -> str:
    """The keyed hash of a vendor record id at digest ``version``."""
    return keyring.digest_at(REF_KIND, f"{system}:{ref}", version)


def record(conn: Connection, keyring: Keyring, request_id: str, subject_ids: Sequence[str],
           destinations: Iterable[str], now: datetime) -> ErasureRecord:
    """In the shredding transaction, before the rows go: the log entry of this erasure,
    queued in ``erasure_log_pending`` (the keyring has adopted the key state: the
    applier's transaction fenced it)."""
    version = keyring.digest_version
    found = conn.execute(select(identifiers.c.kind, identifiers.c.digest,
                                identifiers.c.key_version)
                         .where(identifiers.c.subject_id.in_(subject_ids))).all()
    refs = conn.execute(select(system_refs.c.system, system_refs.c.ref)
                        .where(system_refs.c.subject_id.in_(subject_ids))).all()
    entry = ErasureRecord(
        request_id, now, tuple(subject_ids), version,
        tuple(sorted({(r.kind, keyring.rekey(r.digest, r.key_version)) for r in found})),
        tuple(sorted({(r.system, ref_digest(keyring, r.system, r.ref, version))
                      for r in refs})),
        tuple(sorted(destinations)))
    conn.execute(insert_for(conn, erasure_log_pending).values(
        request_id=request_id, entry=json.dumps(entry.to_json(), sort_keys=True),
        created_at=now).on_conflict_do_nothing())
    return entry


@dataclass(frozen=True)
class Backlog:
    """Completed erasures not in the erasure log yet: a restore now would bring them back
    with nothing to erase them again."""

    entries: int
    oldest: datetime | None


def backlog(conn: Connection) -> Backlog:
    row = conn.execute(select(func.count(), func.min(erasure_log_pending.c.created_at))
                       .select_from(erasure_log_pending)).one()
    return Backlog(int(row[0]), row[1])


def pending(conn: Connection) -> list[ErasureRecord]:
    rows = conn.execute(select(erasure_log_pending.c.entry)
                        .order_by(erasure_log_pending.c.created_at,
                                  erasure_log_pending.c.request_id)).scalars()
    return [ErasureRecord.from_json(json.loads(r)) for r in rows]


def flush(engine: Engine, log: ErasureLog) -> int:
    """Append the erasures committed since the last flush to ``log``, then forget them
    here. Returns how many were appended. Whatever ``log.append`` raises (a full disk, a
    missing volume) leaves them queued for the next flush."""
    with engine.connect() as conn:
        entries = pending(conn)
    if not entries:
        return 0
    log.append(entries)
    with engine.begin() as conn:
        conn.execute(delete(erasure_log_pending).where(
            erasure_log_pending.c.request_id.in_([e.request_id for e in entries])))
    return len(entries)
