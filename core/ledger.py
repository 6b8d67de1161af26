"""The append-only, hash-chained ledger: what was done, when, for whom (Art. 5(2), 30).

Each entry's hash covers the previous hash and the entry's fields, with the
detail included as ciphertext: shredding a subject's key makes the detail
unreadable without breaking the chain. Appends serialise on the single
``ledger_head`` row so concurrent writers cannot fork the chain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from core.crypto import Keyring
from core.db import ledger, ledger_head
from core.keys import subject_key

GENESIS = "0" * 64


def _entry_hash(prev_hash: str, seq: int, at: datetime, kind: str, subject_id: str | None,
                detail: bytes | None) -> str:
    h = hashlib.sha256()
    detail_hash = hashlib.sha256(detail).hexdigest() if detail is not None else "-"
    for part in (prev_hash, str(seq), at.isoformat(), kind, subject_id or "-", detail_hash):
        h.update(part.encode())
        h.update(b"\x1f")
    return h.hexdigest()


_HEAD = "privasync.ledger_head"


@dataclass
class _Head:
    seq: int
    hash: str
    moved: bool = False


def _lock(conn: Connection) -> _Head:
    found = conn.execute(select(ledger_head.c.seq, ledger_head.c.hash)
                         .where(ledger_head.c.id == 1).with_for_update()).first()
    if found is None:
        conn.execute(insert(ledger_head).values(id=1, seq=0, hash=GENESIS))
        return _Head(0, GENESIS)
    return _Head(found.seq, found.hash)


@contextmanager
def writing(conn: Connection) -> Iterator[None]:
    """Take the ledger's head lock first, before any other write of the transaction.

    Every transaction that appends takes this lock first, which gives them all
    one lock order (no deadlocks between intake and deliveries). Appends in the
    block move the head in memory; it is written once, at the end.
    """
    head = conn.info[_HEAD] = _lock(conn)
    try:
        yield
        if head.moved:
            conn.execute(update(ledger_head).where(ledger_head.c.id == 1)
                         .values(seq=head.seq, hash=head.hash))
    finally:
        conn.info.pop(_HEAD, None)


def append(conn: Connection, *, at: datetime, kind: str, subject_id: str | None = None,
           detail: Mapping[str, object] | None = None) -> int:
    """Append one entry in the caller's transaction; returns its sequence number.

    ``detail`` must hold no more personal data than needed; with a subject it is
    encrypted under that subject's key.
    """
    held: _Head | None = conn.info.get(_HEAD)
    head = held or _lock(conn)
    blob = _seal(conn, subject_id, detail)
    seq = head.seq + 1
    digest = _entry_hash(head.hash, seq, at, kind, subject_id, blob)
    conn.execute(insert(ledger).values(seq=seq, at=at, kind=kind, subject_id=subject_id,
                                       detail=blob, prev_hash=head.hash, hash=digest))
    head.seq, head.hash, head.moved = seq, digest, True
    if held is None:
        conn.execute(update(ledger_head).where(ledger_head.c.id == 1)
                     .values(seq=seq, hash=digest))
    return seq


def _seal(conn: Connection, subject_id: str | None,
          detail: Mapping[str, object] | None) -> bytes | None:
    if detail is None:
        return None
    raw = json.dumps(detail, sort_keys=True, default=str).encode()
    if subject_id is None:
        return raw
    key = subject_key(conn, subject_id)
    return Keyring.encrypt(key, raw) if key is not None else raw


@dataclass(frozen=True)
class ChainReport:
    entries: int
    ok: bool
    first_bad_seq: int | None = None

    def __str__(self) -> str:
        if self.ok:
            return f"ledger intact: {self.entries} entries, chain verified"
        return f"ledger BROKEN at entry {self.first_bad_seq} (of {self.entries})"


def verify(conn: Connection, batch: int = 5000) -> ChainReport:
    """Recompute the chain up to the head as it is now; report the first entry that
    does not match. Entries appended while it runs are left for the next check."""
    head = conn.execute(select(ledger_head.c.seq, ledger_head.c.hash)
                        .where(ledger_head.c.id == 1)).first()
    end = head.seq if head is not None else 0
    prev_hash, count, last_seq = GENESIS, 0, 0
    while last_seq < end:
        rows = conn.execute(select(ledger).where(ledger.c.seq > last_seq, ledger.c.seq <= end)
                            .order_by(ledger.c.seq).limit(batch)).all()
        if not rows:
            break
        for row in rows:
            expected = _entry_hash(prev_hash, row.seq, row.at, row.kind, row.subject_id,
                                   row.detail)
            if row.prev_hash != prev_hash or row.hash != expected or row.seq != last_seq + 1:
                return ChainReport(count, False, row.seq)
            prev_hash, last_seq, count = row.hash, row.seq, count + 1
    if last_seq != end or (head is not None and head.hash != prev_hash):
        return ChainReport(count, False, last_seq + 1)
    extra = conn.execute(select(ledger.c.seq).where(ledger.c.seq > end).limit(1)).first()
    if head is None and extra is not None:
        return ChainReport(count, False, 1)
    return ChainReport(count, True)
