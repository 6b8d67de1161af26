"""Subject keys, read once per transaction.

Inside ``cached(conn)`` a subject's key is fetched at most once; the cache dies
with the block, so a key shredded by another transaction is never served from
it later.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import select
from sqlalchemy.engine import Connection

from core.db import subject_keys

_CACHE = "privasync.subject_keys"


def subject_key(conn: Connection, subject_id: str) -> bytes | None:
    cache: dict[str, bytes | None] | None = conn.info.get(_CACHE)
    if cache is not None and subject_id in cache:
        return cache[subject_id]
    key: bytes | None = conn.execute(select(subject_keys.c.key).where(
        subject_keys.c.subject_id == subject_id)).scalar_one_or_none()
    if cache is not None:
        cache[subject_id] = key
    return key


def remember(conn: Connection, subject_id: str, key: bytes | None) -> None:
    """Tell the cache about a key just created (or shredded: None)."""
    cache: dict[str, bytes | None] | None = conn.info.get(_CACHE)
    if cache is not None:
        cache[subject_id] = key


@contextmanager
def cached(conn: Connection) -> Iterator[None]:
    conn.info[_CACHE] = {}
    try:
        yield
    finally:
        conn.info.pop(_CACHE, None)
