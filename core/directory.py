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
        page.append({"system": system, "digest": keyring.email_digest(address), "seen_at": now})
        if len(page) >= PAGE:
            seen += _upsert(engine, page)
            page = []
    seen += _upsert(engine, page)
    with engine.begin() as conn:
        conn.execute(delete(directory).where(directory.c.system == system,
                                             directory.c.seen_at < now))
    return seen


def _upsert(engine: Engine, rows: list[dict[str, object]]) -> int:
    if rows:
        with engine.begin() as conn:
            stmt = insert_for(conn, directory)
            conn.execute(stmt.on_conflict_do_update(index_elements=["system", "digest"],
                                                    set_={"seen_at": stmt.excluded.seen_at}),
                         rows)
    return len(rows)


def listed(conn: Connection, system: str, subject_ids: Iterable[str]) -> set[str]:
    """Which of these subjects have an address on ``system``'s list."""
    ids = list(dict.fromkeys(subject_ids))
    if not ids:
        return set()
    return set(conn.execute(select(identifiers.c.subject_id).distinct()
                            .join(directory, directory.c.digest == identifiers.c.digest)
                            .where(directory.c.system == system, identifiers.c.kind == "email",
                                   identifiers.c.subject_id.in_(ids))).scalars())
