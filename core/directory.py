"""Who is on a destination's own list, learned in bulk: keyed digests of addresses only.

A mailing tool's bulk write creates anyone it does not hold, so privasync
sends only people it knows are there. Asking one by one costs a call per
person; instead the list is read a page at a time on a schedule (``refresh``)
and kept as the same keyed digests the identity map uses: enough to answer
"is this subject's address on the list?", unreadable without the secret,
nothing else about anyone.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection, Engine

from core import keys
from core.crypto import Keyring
from core.db import directory, identifiers, insert_for

PAGE = 1000


def refresh(engine: Engine, keyring: Keyring, system: str, addresses: Iterable[str],
            now: datetime) -> int:
    """Replace ``system``'s directory with ``addresses`` (read from it just now), a page
    per transaction; entries not seen in this read are dropped at the end. Returns the
    number of addresses listed."""
    seen, page = 0, []
    for address in addresses:
        page.append(address)
        if len(page) >= PAGE:
            seen += _upsert(engine, keyring, system, page, now)
            page = []
    seen += _upsert(engine, keyring, system, page, now)
    with engine.begin() as conn:
        conn.execute(delete(directory).where(directory.c.system == system,
                                             directory.c.seen_at < now))
    return seen


def _upsert(engine: Engine, keyring: Keyring, system: str, addresses: list[str],
            now: datetime) -> int:
    """A page of addresses as digests at the current version (read, with the key state, in
    the writing transaction: a rotation never misses them)."""
    if addresses:
        with engine.begin() as conn:
            keys.fence(conn, keyring)
            version = keyring.digest_version
            rows = {keyring.email_digest(a): {"system": system, "seen_at": now,
                                              "key_version": version} for a in addresses}
            stmt = insert_for(conn, directory)
            conn.execute(stmt.on_conflict_do_update(
                index_elements=["system", "digest"],
                set_={"seen_at": stmt.excluded.seen_at, "key_version": stmt.excluded.key_version}),
                [{"digest": d, **r} for d, r in rows.items()])
    return len(addresses)


def listed(conn: Connection, keyring: Keyring, system: str,
           subject_ids: Iterable[str]) -> set[str]:
    """Which of these subjects have an address on ``system``'s list. During a digest
    rotation an address and its directory entry may carry different versions: each
    address's digest is carried forward to every later version and looked for at each
    (directory entries are moved first, so they are never behind the addresses)."""
    ids = list(dict.fromkeys(subject_ids))
    if not ids:
        return set()
    owners: dict[str, str] = {}
    for row in conn.execute(select(identifiers.c.subject_id, identifiers.c.digest,
                                   identifiers.c.key_version).where(
            identifiers.c.kind == "email", identifiers.c.subject_id.in_(ids))):
        owners[row.digest] = row.subject_id
        for version in range(row.key_version + 1, keyring.digest_version + 1):
            owners[keyring.rekey(row.digest, row.key_version, version)] = row.subject_id
    found: set[str] = set()
    wanted = list(owners)
    for start in range(0, len(wanted), 500):
        found |= {owners[d] for d in conn.execute(select(directory.c.digest).where(
            directory.c.system == system, directory.c.digest.in_(wanted[start:start + 500])))
            .scalars()}
    return found
