"""``/api/v1/audit``: verify the ledger's chain, and read its entries a page at a time.

An entry is shown with its hashes; its detail only when it is stored in clear
(request steps, tokens, delivery receipts, retries: ids, names and states). A
detail sealed under a subject's key (what the person's own events said) is
never decrypted here: the entry says ``sealed`` and gives the SHA-256 of the
stored bytes, which is all the chain needs to be checked.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, select
from sqlalchemy.engine import Connection

from core import ledger as chain
from core.db import ledger, reader, requests
from core.errors import BadInput
from privasync.app.views import Records
from privasync.web.admin.openapi import Call, Operation

SCAN = 500  # rows read at a time while filtering by request


class Verified(BaseModel):
    """The chain recomputed up to its head as it was when the check began."""

    ok: bool
    entries: int = Field(description="Entries in the chain, as its head records it.")
    intact: int = Field(description="Entries, from the first, that recompute.")
    first_bad_seq: int | None = Field(description="The first entry that does not match.")
    first_bad_hash: str | None = Field(default=None, description="That entry's stored hash "
                                       "(its id), when the entry is there at all.")
    reason: str | None = Field(default=None, description="Why it does not match: altered, "
                               "a broken link, missing, renumbered, or replaced.")
    pending: int = Field(description="Newer entries waiting to be chained (within seconds).")
    checked_at: datetime


class EntriesQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str | None = Field(default=None, min_length=1, max_length=36)
    request: str | None = Field(default=None, min_length=1, max_length=36)
    start: datetime | None = Field(default=None, alias="from", description="Inclusive.")
    end: datetime | None = Field(default=None, alias="to", description="Exclusive.")
    limit: int = Field(default=100, ge=1, le=1000)
    cursor: str | None = Field(default=None, pattern=r"^[0-9]{1,18}$",
                               description="The `next_cursor` of the previous page.")


class Entry(BaseModel):
    seq: int
    at: datetime
    kind: str
    subject_id: str | None
    prev_hash: str
    hash: str
    detail_sha256: str | None
    sealed: bool = Field(description="The detail is encrypted under the subject's key and "
                         "not shown.")
    detail: dict[str, Any] | None


class EntryPage(BaseModel):
    entries: list[Entry]
    next_cursor: str | None


def verify_ledger(call: Call[Records]) -> Verified:
    with reader(call.uses.engine).connect() as conn:
        report = chain.verify(conn)
        waiting = chain.pending_count(conn)
    broken = report.broken
    return Verified(ok=report.ok, entries=report.entries, intact=report.intact,
                    first_bad_seq=report.first_bad_seq,
                    first_bad_hash=broken.hash if broken else None,
                    reason=broken.reason if broken else None, pending=waiting,
                    checked_at=call.now)


def _clear(detail: bytes | None) -> dict[str, Any] | None:
    if detail is None:
        return None
    try:
        found = json.loads(detail)
    except (ValueError, UnicodeDecodeError):
        return None  # ciphertext
    return found if isinstance(found, dict) else None


def _entry(row: Any) -> Entry:
    clear = _clear(row.detail)
    return Entry(seq=row.seq, at=row.at, kind=row.kind, subject_id=row.subject_id,
                 prev_hash=row.prev_hash, hash=row.hash,
                 detail_sha256=hashlib.sha256(row.detail).hexdigest()
                 if row.detail is not None else None,
                 sealed=row.detail is not None and clear is None, detail=clear)


def list_entries(call: Call[Records]) -> EntryPage:
    q = call.query(EntriesQuery)
    for when in (q.start, q.end):
        if when is not None and when.tzinfo is None:
            raise BadInput("from and to need a time zone")
    with reader(call.uses.engine).connect() as conn:
        where = _where(conn, q)
        if where is None:
            return EntryPage(entries=[], next_cursor=None)
        found, last, more = _page(conn, where, q)
    return EntryPage(entries=found, next_cursor=str(last) if more else None)


def _where(conn: Connection, q: EntriesQuery) -> list[ColumnElement[bool]] | None:
    where: list[ColumnElement[bool]] = []
    subject = q.subject
    if q.request is not None:
        owner = conn.execute(select(requests.c.subject_id)
                             .where(requests.c.id == q.request)).scalar_one_or_none()
        if owner is None or (subject is not None and subject != owner):
            return None
        subject = owner
    if subject is not None:
        where.append(ledger.c.subject_id == subject)
    if q.start is not None:
        where.append(ledger.c.at >= q.start)
    if q.end is not None:
        where.append(ledger.c.at < q.end)
    return where


def _page(conn: Connection, where: list[ColumnElement[bool]],
          q: EntriesQuery) -> tuple[list[Entry], int, bool]:
    """Up to ``limit`` matching entries, the last seq looked at, and whether more may
    follow. Filtering by request reads the subject's entries a batch at a time."""
    found: list[Entry] = []
    last = int(q.cursor or 0)
    batch = q.limit if q.request is None else SCAN
    while True:
        rows = conn.execute(select(ledger).where(*where, ledger.c.seq > last)
                            .order_by(ledger.c.seq).limit(batch)).all()
        for row in rows:
            last = row.seq
            if q.request is not None and (_clear(row.detail) or {}).get("request") != q.request:
                continue
            found.append(_entry(row))
            if len(found) == q.limit:
                return found, last, True
        if len(rows) < batch:
            return found, last, False


OPERATIONS = (
    Operation("GET", "/audit/verify", "Recompute the ledger's hash chain", "audit:read",
              verify_ledger, response=Verified, tag="audit",
              description="200 either way: `ok` false names the first entry that does not "
                          "match."),
    Operation("GET", "/audit/entries", "Ledger entries, oldest first, a page at a time",
              "audit:read", list_entries, response=EntryPage, query=EntriesQuery, tag="audit",
              description="Filter by `subject`, `request`, `from`, `to`; a detail sealed "
                          "under a subject's key is never shown."),
)
