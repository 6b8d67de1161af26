"""Subject keys and digest keys in the database: stored wrapped, opened per transaction.

A subject key is stored only wrapped under a key-encryption key (KEK) that the
database never holds (core.crypto); ``subject_key`` unwraps it. Inside
``cached(conn)`` a subject's key is fetched at most once; the cache dies with the
block, so a key shredded by another transaction is never served from it later.

``key_state`` says which KEK is current and which digest versions stored digests
may carry. Every transaction that wraps a key or writes a digest reads it first
(``fence``), locking it for share on PostgreSQL, so a rotation that changes it
waits for those writers and then sees all they wrote.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from core.crypto import DigestView, Keyring
from core.db import digest_keys, insert_for, key_state, reader, subject_keys
from core.errors import ConfigError, PrivasyncError

_CACHE = "privasync.subject_keys"


class KeysMoved(PrivasyncError):
    """A rotation changed the digest versions after this writer computed its digests:
    decide again (nothing was written)."""


@dataclass(frozen=True)
class KeyState:
    kek_id: str
    digest_version: int
    digest_floor: int


def subject_key(conn: Connection, keyring: Keyring, subject_id: str) -> bytes | None:
    """The subject's key, unwrapped; None once it was shredded. Raises KeyUnavailable if
    this process does not hold the KEK it is wrapped under."""
    cache: dict[str, bytes | None] | None = conn.info.get(_CACHE)
    if cache is not None and subject_id in cache:
        return cache[subject_id]
    row = conn.execute(select(subject_keys.c.key, subject_keys.c.kek_id).where(
        subject_keys.c.subject_id == subject_id)).first()
    key = keyring.unwrap(row.key, row.kek_id, subject_id) if row is not None else None
    if cache is not None:
        cache[subject_id] = key
    return key


def keys_of(conn: Connection, keyring: Keyring, subject_ids: Iterable[str]) -> dict[str, bytes]:
    """The live keys of these subjects, unwrapped (a shredded one is absent)."""
    ids = list(dict.fromkeys(subject_ids))
    found: dict[str, bytes] = {}
    for start in range(0, len(ids), 500):
        for r in conn.execute(select(subject_keys).where(
                subject_keys.c.subject_id.in_(ids[start:start + 500]))):
            found[r.subject_id] = keyring.unwrap(r.key, r.kek_id, r.subject_id)
    return found


def wrapped(keyring: Keyring, subject_id: str, key: bytes) -> dict[str, object]:
    """The ``subject_keys`` row of a new key."""
    blob, kek = keyring.wrap(key, subject_id)
    return {"subject_id": subject_id, "key": blob, "kek_id": kek}


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


# -- which keys are current ------------------------------------------------------------
def read_state(conn: Connection, *, lock: bool = False) -> KeyState | None:
    query = select(key_state.c.kek_id, key_state.c.digest_version, key_state.c.digest_floor
                   ).where(key_state.c.id == 1)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update(read=True)
    row = conn.execute(query).first()
    return KeyState(row.kek_id, row.digest_version, row.digest_floor) if row else None


def _initialise(conn: Connection, keyring: Keyring) -> None:
    """A database without key state: the installation secret becomes digest key 1 (what
    every digest so far was made with), wrapped under this process's KEK."""
    now = datetime.now(UTC)
    blob, kek = keyring.wrap(keyring.secret, "digest:1")
    conn.execute(insert_for(conn, digest_keys).values(version=1, key=blob, kek_id=kek,
                                                      created_at=now).on_conflict_do_nothing())
    conn.execute(insert_for(conn, key_state).values(
        id=1, kek_id=kek, digest_version=1, digest_floor=1, updated_at=now)
        .on_conflict_do_nothing())


def adopt(conn: Connection, keyring: Keyring, found: KeyState) -> None:
    """Make ``keyring`` use the database's current KEK and digest keys."""
    if not keyring.holds(found.kek_id):
        held = ", ".join(keyring.kek_ids) or "none"
        raise ConfigError(f"the database's keys are wrapped under KEK {found.kek_id}, which "
                          f"this process does not hold (it holds: {held}); set PRIVASYNC_KEK "
                          "to that key (see SECURITY.md, rotating the KEK)")
    keyring.wrap_under = found.kek_id
    view = keyring.digest_view
    # Read at least once: digest key 1 is the one captured in the database, which stays
    # when PRIVASYNC_SECRET_KEY is replaced.
    if keyring.checked_at is None \
            or (view.current, view.floor) != (found.digest_version, found.digest_floor) \
            or set(view.keys) != set(range(1, found.digest_version + 1)):
        keys = {r.version: keyring.unwrap(r.key, r.kek_id, f"digest:{r.version}")
                for r in conn.execute(select(digest_keys).where(
                    digest_keys.c.version <= found.digest_version))}
        missing = set(range(1, found.digest_version + 1)) - set(keys)
        if missing:
            raise ConfigError(f"digest key versions {sorted(missing)} are missing from the "
                              "database")
        keyring.use_digests(DigestView(keys, found.digest_version, found.digest_floor))
    keyring.checked_at = time.monotonic()


def fence(conn: Connection, keyring: Keyring) -> bool:
    """In a transaction that wraps keys or writes digests: read (and share-lock) the key
    state, initialising it if there is none, and adopt it. True if the digest versions
    changed from what this process used (digests computed before are stale)."""
    found = read_state(conn, lock=True)
    if found is None:
        _initialise(conn, keyring)
        found = read_state(conn, lock=True)
        assert found is not None
    before = keyring.digest_view
    adopt(conn, keyring, found)
    after = keyring.digest_view
    return (before.current, before.floor) != (after.current, after.floor)


def ensure(engine: Engine, keyring: Keyring) -> None:
    """At start: the key state exists, this process holds the current KEK, and the
    keyring uses the stored digest keys. Raises ConfigError otherwise."""
    with engine.begin() as conn:
        fence(conn, keyring)


def refresh(engine: Engine, keyring: Keyring, max_age: float = 2.0) -> None:
    """Adopt the key state if it was last read more than ``max_age`` seconds ago (so a
    rotation's new digest version is known here before rows move to it)."""
    checked = keyring.checked_at
    if checked is not None and time.monotonic() - checked < max_age:
        return
    with reader(engine).connect() as conn:
        found = read_state(conn)
        if found is not None:
            adopt(conn, keyring, found)
        else:
            keyring.checked_at = time.monotonic()


def unwrap_rows(keyring: Keyring, rows: Sequence[Any]) -> dict[str, bytes]:
    """``subject_keys`` rows -> subject id: key."""
    return {r.subject_id: keyring.unwrap(r.key, r.kek_id, r.subject_id) for r in rows}
