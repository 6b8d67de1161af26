"""The append-only, hash-chained ledger: what was done, when, for whom (Art. 5(2), 30).

Each entry's hash covers the previous hash and the entry's fields, with the
detail included as ciphertext: shredding a subject's key makes the detail
unreadable without breaking the chain. Appends serialise on the single
``ledger_head`` row so concurrent writers cannot fork the chain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from core.crypto import Keyring
from core.db import ledger, ledger_head, subject_keys

GENESIS = "0" * 64


def _entry_hash(prev_hash: str, seq: int, at: datetime, kind: str, subject_id: str | None,
                detail: bytes | None) -> str:
    h = hashlib.sha256()
    detail_hash = hashlib.sha256(detail).hexdigest() if detail is not None else "-"
    for part in (prev_hash, str(seq), at.isoformat(), kind, subject_id or "-", detail_hash):
        h.update(part.encode())
        h.update(b"\x1f")
    return h.hexdigest()


def append(conn: Connection, *, at: datetime, kind: str, subject_id: str | None = None,
           detail: Mapping[str, object] | None = None) -> int:
    """Append one entry in the caller's transaction; returns its sequence number.

    ``detail`` must hold no more personal data than needed; with a subject it is
    encrypted under that subject's key.
    """
    head = conn.execute(select(ledger_head.c.seq, ledger_head.c.hash)
                        .where(ledger_head.c.id == 1).with_for_update()).first()
    if head is None:
        conn.execute(insert(ledger_head).values(id=1, seq=0, hash=GENESIS))
        prev_seq, prev_hash = 0, GENESIS
    else:
        prev_seq, prev_hash = head.seq, head.hash
    blob = _seal(conn, subject_id, detail)
    seq = prev_seq + 1
    digest = _entry_hash(prev_hash, seq, at, kind, subject_id, blob)
    conn.execute(insert(ledger).values(seq=seq, at=at, kind=kind, subject_id=subject_id,
                                       detail=blob, prev_hash=prev_hash, hash=digest))
    conn.execute(update(ledger_head).where(ledger_head.c.id == 1).values(seq=seq, hash=digest))
    return seq


def _seal(conn: Connection, subject_id: str | None,
          detail: Mapping[str, object] | None) -> bytes | None:
    if detail is None:
        return None
    raw = json.dumps(detail, sort_keys=True, default=str).encode()
    if subject_id is None:
        return raw
    key = conn.execute(select(subject_keys.c.key)
                       .where(subject_keys.c.subject_id == subject_id)).scalar_one_or_none()
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
