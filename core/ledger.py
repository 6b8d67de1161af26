"""The append-only, hash-chained ledger: what was done, when, for whom (Art. 5(2), 30).

Each entry's hash covers the previous hash and the entry's fields, with the
detail included as ciphertext: shredding a subject's key makes the detail
unreadable without breaking the chain.

The chain has one writer: the applier, of which one is active at a time (its
lease). Everyone else ``append``s to ``ledger_pending`` without taking any
lock, and the applier ``chain``s those entries, in order, in its own
transaction with its own. The head moves with a compare-and-set, so a second
writer (a lease lost mid-transaction) fails instead of forking the chain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Connection, Engine

from core.canonical import canonical
from core.crypto import Keyring
from core.db import (
    cursors,
    insert_for,
    ledger,
    ledger_head,
    ledger_pending,
    reader,
    write_many,
)
from core.errors import PrivasyncError
from core.keys import subject_key

GENESIS = "0" * 64


class ChainMoved(PrivasyncError):
    """Another writer moved the chain's head during this transaction: roll it back."""


def _entry_hash(prev_hash: str, seq: int, at: datetime, kind: str, subject_id: str | None,
                detail: bytes | None) -> str:
    h = hashlib.sha256()
    detail_hash = hashlib.sha256(detail).hexdigest() if detail is not None else "-"
    for part in (prev_hash, str(seq), at.isoformat(), kind, subject_id or "-", detail_hash):
        h.update(part.encode())
        h.update(b"\x1f")
    return h.hexdigest()


@dataclass(frozen=True)
class Entry:
    """An entry on its way into the chain, its detail already sealed."""

    at: datetime
    kind: str
    subject_id: str | None
    detail: bytes | None


def seal(key: bytes | None, detail: Mapping[str, object] | None) -> bytes | None:
    """The stored form of a detail: its RFC 8785 JSON (so anyone can recompute the hash
    of a clear detail from the JSON shown), encrypted under the subject's key if given."""
    if detail is None:
        return None
    raw = canonical(detail)
    return Keyring.encrypt(key, raw) if key is not None else raw


def entry(at: datetime, kind: str, subject_id: str | None, key: bytes | None,
          detail: Mapping[str, object] | None = None) -> Entry:
    """An entry whose detail is sealed with ``key`` (the subject's, or None for none)."""
    return Entry(at, kind, subject_id, seal(key, detail))


def append(conn: Connection, *, at: datetime, kind: str, subject_id: str | None = None,
           detail: Mapping[str, object] | None = None, sealed: bool = True,
           keyring: Keyring | None = None) -> None:
    """Queue one entry in the caller's transaction; the applier chains it shortly.

    ``detail`` must hold no more personal data than needed; with a subject it is
    encrypted under that subject's key, unless ``sealed`` is False (proof that must stay
    readable after the key is destroyed, such as a request's receipts); sealing needs the
    ``keyring`` (to unwrap the subject's key). Takes no lock.
    """
    key = None
    if subject_id is not None and sealed:
        if keyring is None:
            raise ValueError("a sealed ledger entry about a subject needs the keyring")
        key = subject_key(conn, keyring, subject_id)
    conn.execute(ledger_pending.insert().values(at=at, kind=kind, subject_id=subject_id,
                                                detail=seal(key, detail)))


def chain(conn: Connection, own: Sequence[Entry] = (), *, limit: int = 5000) -> int:
    """Chain up to ``limit`` pending entries, then ``own``, in the caller's transaction.

    Returns how many entries were chained. Raises ChainMoved when another writer
    moved the head meanwhile (the caller rolls back and tries again).
    """
    head = conn.execute(select(ledger_head.c.seq, ledger_head.c.hash)
                        .where(ledger_head.c.id == 1)).first()
    if head is None:
        conn.execute(insert_for(conn, ledger_head).values(id=1, seq=0, hash=GENESIS)
                     .on_conflict_do_nothing())
        head = conn.execute(select(ledger_head.c.seq, ledger_head.c.hash)
                            .where(ledger_head.c.id == 1)).one()
    pending = conn.execute(select(ledger_pending).order_by(ledger_pending.c.id)
                           .limit(limit)).all()
    queue = [Entry(r.at, r.kind, r.subject_id, r.detail) for r in pending] + list(own)
    if not queue:
        return 0
    seq, prev = int(head.seq), str(head.hash)
    rows = []
    for e in queue:
        seq += 1
        digest = _entry_hash(prev, seq, e.at, e.kind, e.subject_id, e.detail)
        rows.append({"seq": seq, "at": e.at, "kind": e.kind, "subject_id": e.subject_id,
                     "detail": e.detail, "prev_hash": prev, "hash": digest})
        prev = digest
    write_many(conn, ledger, rows)
    if pending:
        conn.execute(delete(ledger_pending).where(
            ledger_pending.c.id.in_([r.id for r in pending])))
    moved = conn.execute(update(ledger_head).where(
        ledger_head.c.id == 1, ledger_head.c.seq == head.seq).values(seq=seq, hash=prev))
    if moved.rowcount != 1:
        raise ChainMoved("the ledger head moved under this transaction")
    return len(rows)


def pending_count(conn: Connection) -> int:
    """Entries appended but not chained yet (the applier chains them within a tick)."""
    return int(conn.execute(select(func.count()).select_from(ledger_pending)).scalar_one())


@dataclass(frozen=True)
class Break:
    """Where the chain breaks and why: the entry's sequence number, what is wrong with
    it, and (when the entry is there) its kind and its stored hash, the entry's id."""

    seq: int
    reason: str
    kind: str | None = None
    hash: str | None = None

    def __str__(self) -> str:
        named = f" ({self.kind}, hash {self.hash[:16]})" if self.hash else ""
        return f"entry {self.seq}{named}: {self.reason}"


ALTERED = "its hash does not match its contents (the entry was altered)"
UNLINKED = "its previous hash is not the hash of entry {prev} (the link was altered)"
MISSING = "the entry is missing (deleted, or the chain's head claims more than it holds)"
RENUMBERED = "it is stored under sequence {stored}, not {seq} (entries were renumbered)"
HEAD = ("the chain's head records another hash for it (it, or entries before it, were "
        "rewritten with recomputed hashes)")
HEADLESS = "entries exist but the chain has no head"


@dataclass(frozen=True)
class ChainReport:
    """``entries``: how long the chain is (as its head records it); ``intact``: how many
    entries, from the first, recompute; ``broken``: the first that does not, and why."""

    entries: int
    ok: bool
    intact: int = 0
    broken: Break | None = None

    @property
    def first_bad_seq(self) -> int | None:
        return self.broken.seq if self.broken is not None else None

    def __str__(self) -> str:
        if self.broken is None:
            return f"ledger intact: {self.entries} entries, chain verified"
        return (f"ledger BROKEN at {self.broken}; {self.intact} of {self.entries} entries "
                f"before it are intact")


def _check(row: Any, seq: int, prev_hash: str) -> Break | None:
    """What is wrong with ``row`` as entry ``seq + 1`` after an entry hashed ``prev_hash``."""
    if row.seq > seq + 1:
        return Break(seq + 1, MISSING)
    if row.seq != seq + 1:
        return Break(seq + 1, RENUMBERED.format(stored=row.seq, seq=seq + 1), row.kind,
                     row.hash)
    if row.prev_hash != prev_hash:
        return Break(row.seq, UNLINKED.format(prev=seq), row.kind, row.hash)
    if row.hash != _entry_hash(prev_hash, row.seq, row.at, row.kind, row.subject_id,
                               row.detail):
        return Break(row.seq, ALTERED, row.kind, row.hash)
    return None


def _walk(conn: Connection, seq: int, prev_hash: str, end: int,
          batch: int) -> tuple[int, int, str, Break | None]:
    """Recompute entries ``seq+1 .. end`` from ``prev_hash``: (entries checked, last good
    seq, its hash, the first break or None)."""
    count = 0
    while seq < end:
        rows = conn.execute(select(ledger).where(ledger.c.seq > seq, ledger.c.seq <= end)
                            .order_by(ledger.c.seq).limit(batch)).all()
        if not rows:
            break
        for row in rows:
            broken = _check(row, seq, prev_hash)
            if broken is not None:
                return count, seq, prev_hash, broken
            prev_hash, seq, count = row.hash, row.seq, count + 1
    return count, seq, prev_hash, None if seq == end else Break(seq + 1, MISSING)


def verify(conn: Connection, batch: int = 5000) -> ChainReport:
    """Recompute the chain up to the head as it is now; report the first entry that
    does not match, and why. Entries appended while it runs are left for the next check."""
    head = conn.execute(select(ledger_head.c.seq, ledger_head.c.hash)
                        .where(ledger_head.c.id == 1)).first()
    end = head.seq if head is not None else 0
    count, last_seq, prev_hash, bad = _walk(conn, 0, GENESIS, end, batch)
    if bad is not None:
        return ChainReport(end, False, count, bad)
    if head is not None and head.hash != prev_hash:
        row = conn.execute(select(ledger.c.kind, ledger.c.hash)
                           .where(ledger.c.seq == last_seq)).first()
        return ChainReport(end, False, count - 1, Break(
            last_seq, HEAD, row.kind if row else None, row.hash if row else None))
    extra = conn.execute(select(ledger.c.seq).where(ledger.c.seq > end).limit(1)).first()
    if head is None and extra is not None:
        return ChainReport(end, False, count, Break(int(extra.seq), HEADLESS))
    return ChainReport(end, True, count)


VERIFIED = "ledger.verified"  # the cursor of the periodic check


@dataclass(frozen=True)
class Verification:
    """The periodic check's last word: the chain was intact up to ``seq`` (whose hash is
    ``hash``) at ``at``, or broken at ``bad_seq``."""

    ok: bool
    seq: int
    hash: str
    at: datetime
    bad_seq: int | None = None


def last_verification(conn: Connection) -> Verification | None:
    row = conn.execute(select(cursors.c.value, cursors.c.updated_at)
                       .where(cursors.c.name == VERIFIED)).first()
    if row is None:
        return None
    value = json.loads(row.value)
    return Verification(bool(value["ok"]), int(value["seq"]), str(value["hash"]),
                        row.updated_at, value.get("bad_seq"))


def verify_new(engine: Engine, now: datetime, batch: int = 5000) -> Verification:
    """Check the entries chained since the last good check (cheap: each entry is
    recomputed once while it stays intact) and record the result for the metrics.
    A break stays reported until the chain from the last good entry holds again;
    ``privasync audit verify`` recomputes everything."""
    with reader(engine).connect() as conn:
        last = last_verification(conn)
        head = conn.execute(select(ledger_head.c.seq).where(ledger_head.c.id == 1)).scalar()
        seq, prev = (last.seq, last.hash) if last is not None else (0, GENESIS)
        _, good_seq, good_hash, broken = _walk(conn, seq, prev, int(head or 0), batch)
    bad = broken.seq if broken is not None else None
    result = Verification(bad is None, good_seq, good_hash, now, bad)
    value = json.dumps({"ok": result.ok, "seq": good_seq, "hash": good_hash,
                        "bad_seq": bad})
    with engine.begin() as conn:
        if not conn.execute(update(cursors).where(cursors.c.name == VERIFIED)
                            .values(value=value, updated_at=now)).rowcount:
            conn.execute(insert_for(conn, cursors).values(
                name=VERIFIED, value=value, updated_at=now).on_conflict_do_nothing())
    return result
