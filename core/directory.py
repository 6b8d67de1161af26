"""Who is on a destination's own list, learned in bulk: keyed digests of addresses only.

A mailing tool's bulk write creates anyone it does not hold, so privasync
sends only people it knows are there. Asking one by one costs a call per
person; instead the list is read a page at a time on a schedule (``refresh``)
and kept as the same keyed digests the identity map uses: enough to answer
"is this subject's address on the list?", unreadable without the secret,
nothing else about anyone.

A read that ended is complete, and when it began is kept (``read_at``): an
address found in none of its entries (members and kept addresses alike) was not
on the list when the read reached it, so a person on the list since before the
read began, and not changed since, is in it. What changed after that a
destination must learn from the list itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection, Engine

from core import keys, runtime
from core.crypto import Keyring
from core.db import cursors, directory, identifiers, insert_for

PAGE = 1000


def _cursor(system: str) -> str:
    return f"directory:{system}"


def refresh(engine: Engine, keyring: Keyring, system: str, addresses: Iterable[str],
            now: datetime, kept: Iterable[str] = ()) -> int:
    """Replace ``system``'s directory with ``addresses`` (its members) and ``kept`` (what
    it keeps without counting as members), read from it from ``now`` on, a page per
    transaction. Only once both reads have ended are entries not seen dropped and ``now``
    recorded as the start of a complete read, in one transaction; a read that raises
    leaves the last complete read's entries (with this one's added) and its time. Returns
    the number of addresses read."""
    seen = _pages(engine, keyring, system, addresses, now, kept=False)
    seen += _pages(engine, keyring, system, kept, now, kept=True)
    with engine.begin() as conn:
        conn.execute(delete(directory).where(directory.c.system == system,
                                             directory.c.seen_at < now))
        last = read_at(conn, system)
        if last is None or last < now:  # two overlapping reads: the later start stays
            runtime.write_cursor(conn, _cursor(system), now.isoformat(), now)
    return seen


def read_at(conn: Connection, system: str) -> datetime | None:
    """When the last complete read of ``system``'s list began; None if none has ended."""
    value = conn.execute(select(cursors.c.value).where(
        cursors.c.name == _cursor(system))).scalar_one_or_none()
    return datetime.fromisoformat(value) if value else None


def _pages(engine: Engine, keyring: Keyring, system: str, addresses: Iterable[str],
           now: datetime, *, kept: bool) -> int:
    seen, page = 0, []
    for address in addresses:
        page.append(address)
        if len(page) >= PAGE:
            seen += _upsert(engine, keyring, system, page, now, kept)
            page = []
    return seen + _upsert(engine, keyring, system, page, now, kept)


def _upsert(engine: Engine, keyring: Keyring, system: str, addresses: list[str],
            now: datetime, kept: bool) -> int:
    """A page of addresses as digests at the current version (read, with the key state, in
    the writing transaction: a rotation never misses them)."""
    if addresses:
        with engine.begin() as conn:
            keys.fence(conn, keyring)
            version = keyring.digest_version
            rows = {keyring.email_digest(a): {"system": system, "seen_at": now,
                                              "key_version": version, "kept": kept}
                    for a in addresses}
            stmt = insert_for(conn, directory)
            conn.execute(stmt.on_conflict_do_update(
                index_elements=["system", "digest"],
                set_={"seen_at": stmt.excluded.seen_at, "key_version": stmt.excluded.key_version,
                      "kept": stmt.excluded.kept}),
                [{"digest": d, **r} for d, r in rows.items()])
    return len(addresses)


def listed(conn: Connection, keyring: Keyring, system: str,
           subject_ids: Iterable[str]) -> set[str]:
    """Which of these subjects have an address that is a member of ``system``'s list."""
    return {sid for sid, member in held(conn, keyring, system, subject_ids).items() if member}


def held(conn: Connection, keyring: Keyring, system: str,
         subject_ids: Iterable[str]) -> dict[str, bool]:
    """The subjects with an address in ``system``'s directory: True if one is a member,
    False if the list only keeps them. During a digest rotation an address and its
    directory entry may carry different versions: each address's digest is carried forward
    to every later version and looked for at each (directory entries are moved first, so
    they are never behind the addresses)."""
    ids = list(dict.fromkeys(subject_ids))
    if not ids:
        return {}
    owners: dict[str, str] = {}
    for row in conn.execute(select(identifiers.c.subject_id, identifiers.c.digest,
                                   identifiers.c.key_version).where(
            identifiers.c.kind == "email", identifiers.c.subject_id.in_(ids))):
        owners[row.digest] = row.subject_id
        for version in range(row.key_version + 1, keyring.digest_version + 1):
            owners[keyring.rekey(row.digest, row.key_version, version)] = row.subject_id
    found: dict[str, bool] = {}
    wanted = list(owners)
    for start in range(0, len(wanted), 500):
        for digest, kept in conn.execute(select(directory.c.digest, directory.c.kept).where(
                directory.c.system == system,
                directory.c.digest.in_(wanted[start:start + 500]))):
            sid = owners[digest]
            found[sid] = found.get(sid, False) or not kept
    return found
