"""Rotating the key-encryption key (KEK) and the digest key, resumably, with ledger proof.

KEK: the key state names the new KEK current (every writer of keys then wraps
under it: they read the key state in their transaction), then every subject
key and digest key still wrapped under another KEK is unwrapped and wrapped
again, a page per transaction. The old KEK may go once none is left.

Digest key: a new random digest key (wrapped under the KEK) becomes the current
version while the old one stays live for look-ups (floor..current); after
``settle`` seconds, when every process has read the new version, each stored
digest is moved forward (core.crypto chains versions, so no value is needed:
the suppression list of erased people moves too), directory entries first;
then the floor is raised and the old version retires.

Running a rotation again resumes the one in progress; a finished one leaves
nothing to do. The ledger records each start and finish with versions, KEK ids
and counts, never a key or a value.
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, and_, delete, func, select, update
from sqlalchemy.engine import Connection, Engine

from core import keys, ledger
from core.crypto import Keyring
from core.db import (
    digest_keys,
    directory,
    field_state,
    identifiers,
    insert_for,
    kek_generations,
    key_state,
    subject_keys,
    suppression,
    system_refs,
)

PAGE = 500
_KEYED_REF = re.compile(r"^(.*)k(\d+)\.([0-9a-f]{64})$")
# Directory entries move before the addresses they are matched with (core.directory).
DIGEST_TABLES: tuple[Table, ...] = (directory, identifiers, suppression, field_state)


def _state(conn: Connection, keyring: Keyring, *, lock: bool) -> keys.KeyState:
    """The key state, adopted by ``keyring``; with ``lock``, locked for update (writers of
    keys and digests wait until this transaction ends)."""
    if keys.read_state(conn) is None:
        keys.fence(conn, keyring)  # initialises it
    query = select(key_state).where(key_state.c.id == 1)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).one()
    found = keys.KeyState(row.kek_id, row.digest_version, row.digest_floor)
    keys.adopt(conn, keyring, found)
    return found


# -- KEK ----------------------------------------------------------------------------------
def rotate_kek(engine: Engine, keyring: Keyring, now: Callable[[], datetime]) -> Counter[str]:
    """Re-wrap every key under this process's first KEK (which must be new to the database
    or already current). Returns how many subject and digest keys were re-wrapped."""
    target = keyring.kek_ids[0]
    with engine.begin() as conn:
        before = _state(conn, keyring, lock=True)
        if before.kek_id != target:
            conn.execute(update(key_state).where(key_state.c.id == 1)
                         .values(kek_id=target, updated_at=now()))
            _generation_replaced(conn, before.kek_id, target, now())
            ledger.append(conn, at=now(), kind="keys.kek_rotation_started",
                          detail={"from": before.kek_id, "to": target})
    keyring.wrap_under = target
    done: Counter[str] = Counter()
    done["subject_keys"] = _rewrap(engine, keyring, subject_keys, subject_keys.c.subject_id,
                                   target, lambda r: str(r.subject_id))
    done["digest_keys"] = _rewrap(engine, keyring, digest_keys, digest_keys.c.version,
                                  target, lambda r: f"digest:{r.version}")
    if done["subject_keys"] or done["digest_keys"] or before.kek_id != target:
        with engine.begin() as conn:
            ledger.append(conn, at=now(), kind="keys.kek_rotated",
                          detail={"kek": target, **dict(done)})
    return done


def _rewrap(engine: Engine, keyring: Keyring, table: Table, pk: Any, target: str,
            context: Callable[[Any], str]) -> int:
    moved = 0
    while True:
        with engine.begin() as conn:
            rows = conn.execute(select(table).where(table.c.kek_id != target)
                                .order_by(pk).limit(PAGE)).all()
            for row in rows:
                plain = keyring.unwrap(row.key, row.kek_id, context(row))
                blob, kek = keyring.wrap(plain, context(row))
                # Matching the old wrap: a key shredded meanwhile stays shredded.
                conn.execute(update(table).where(pk == getattr(row, pk.name),
                                                 table.c.kek_id == row.kek_id)
                             .values(key=blob, kek_id=kek))
        moved += len(rows)
        if len(rows) < PAGE:
            return moved


def kek_in_use(conn: Connection) -> dict[str, int]:
    """KEK id -> how many keys are wrapped under it."""
    found: Counter[str] = Counter()
    for table in (subject_keys, digest_keys):
        for kek, n in conn.execute(select(table.c.kek_id, func.count())
                                   .group_by(table.c.kek_id)):
            found[kek] += n
    return dict(found)


# -- KEK generations and the backup horizon ---------------------------------------------
@dataclass(frozen=True)
class Generation:
    """One KEK generation, by id: when it was replaced, from when it may be destroyed (the
    backup horizon later), how many keys it still wraps."""

    kek_id: str
    current: bool
    retired_at: datetime | None
    destroy_after: datetime | None
    wraps: int

    def due(self, now: datetime) -> bool:
        """Past the horizon and wrapping nothing: destroying it loses no live key, and makes
        every backup taken while it was current unreadable."""
        return (not self.current and self.destroy_after is not None
                and now >= self.destroy_after and self.wraps == 0)


def _generation_replaced(conn: Connection, old: str, new: str, now: datetime) -> None:
    conn.execute(insert_for(conn, kek_generations).values(kek_id=old, created_at=now)
                 .on_conflict_do_nothing())
    conn.execute(update(kek_generations).where(kek_generations.c.kek_id == old,
                                               kek_generations.c.retired_at.is_(None))
                 .values(retired_at=now))
    conn.execute(insert_for(conn, kek_generations).values(kek_id=new, created_at=now)
                 .on_conflict_do_nothing())
    conn.execute(update(kek_generations).where(kek_generations.c.kek_id == new)
                 .values(retired_at=None, destroyed_at=None))


def generations(engine: Engine, keyring: Keyring, held: Sequence[str], horizon: timedelta,
                now: datetime) -> list[Generation]:
    """The current generation and every other one in ``held`` (the KEKs this installation
    still keeps). One replaced before this was recorded (an older installation, a KEK
    given in PRIVASYNC_KEK_PREVIOUS) counts as replaced now: never destroyed early."""
    with engine.begin() as conn:
        state = _state(conn, keyring, lock=True)  # no rotation moves keys meanwhile
        in_use = kek_in_use(conn)
        rows = {r.kek_id: r for r in conn.execute(select(kek_generations))}
        found = []
        for kek in dict.fromkeys([state.kek_id, *held]):
            row = rows.get(kek)
            if kek == state.kek_id:
                if row is None:
                    conn.execute(insert_for(conn, kek_generations)
                                 .values(kek_id=kek, created_at=now).on_conflict_do_nothing())
                found.append(Generation(kek, True, None, None, in_use.get(kek, 0)))
                continue
            retired = row.retired_at if row is not None else None
            if retired is None:
                retired = now
                _generation_replaced(conn, kek, state.kek_id, now)
            found.append(Generation(kek, False, retired, retired + horizon,
                                    in_use.get(kek, 0)))
        return found


def destroyed(engine: Engine, gone: Sequence[Generation], horizon: timedelta,
              now: datetime) -> None:
    """Record that these generations were destroyed (the caller removed the KEKs), with a
    ledger entry each: ids and times only."""
    with engine.begin() as conn:
        for g in gone:
            conn.execute(update(kek_generations).where(kek_generations.c.kek_id == g.kek_id)
                         .values(destroyed_at=now))
            ledger.append(conn, at=now, kind="keys.kek_destroyed", detail={
                "kek": g.kek_id, "retired_at": g.retired_at.isoformat() if g.retired_at
                else None, "horizon_days": horizon.total_seconds() / 86400})


# -- digest key ---------------------------------------------------------------------------
def rotate_digest(engine: Engine, keyring: Keyring, now: Callable[[], datetime], *,
                  settle: float = 5.0) -> Counter[str]:
    """Start a digest key rotation (or resume the one in progress) and finish it. Returns
    how many rows of each table were moved to the new version."""
    with engine.begin() as conn:
        state = _state(conn, keyring, lock=True)
        started = state.digest_floor == state.digest_version
        if started:
            target = state.digest_version + 1
            blob, kek = keyring.wrap(os.urandom(32), f"digest:{target}")
            conn.execute(digest_keys.insert().values(version=target, key=blob, kek_id=kek,
                                                     created_at=now()))
            conn.execute(update(key_state).where(key_state.c.id == 1)
                         .values(digest_version=target, updated_at=now()))
            ledger.append(conn, at=now(), kind="keys.digest_rotation_started",
                          detail={"from": state.digest_version, "to": target})
        else:
            target = state.digest_version
    with engine.begin() as conn:
        keys.fence(conn, keyring)
    if started and settle > 0:
        time.sleep(settle)  # every process reads the key state at least this often
    moved: Counter[str] = Counter()
    while True:
        pass_moved = Counter({t.name: _rekey(engine, keyring, t, target) for t in DIGEST_TABLES})
        pass_moved["system_refs"] = _rekey_refs(engine, keyring, target)
        moved.update(pass_moved)
        with engine.begin() as conn:
            _state(conn, keyring, lock=True)  # writers wait: nothing slips in below target
            if remaining(conn, target):
                continue
            conn.execute(update(key_state).where(key_state.c.id == 1)
                         .values(digest_floor=target, updated_at=now()))
            ledger.append(conn, at=now(), kind="keys.digest_rotated",
                          detail={"version": target, "moved": dict(sorted(moved.items()))})
        with engine.begin() as conn:
            keys.fence(conn, keyring)
        return moved


def remaining(conn: Connection, target: int) -> int:
    """Stored digests (and keyed references) still below version ``target``."""
    left = sum(int(conn.execute(select(func.count()).select_from(t)
                                .where(t.c.key_version < target)).scalar_one())
               for t in DIGEST_TABLES)
    return left + sum(1 for r in _keyed_refs(conn) if int(r[1]) < target)


def _rekey(engine: Engine, keyring: Keyring, table: Table, target: int) -> int:
    moved = 0
    pk = list(table.primary_key.columns)
    while True:
        with engine.begin() as conn:
            rows = conn.execute(select(table).where(table.c.key_version < target)
                                .limit(PAGE)).all()
            for row in rows:
                _move(conn, table, pk, row, keyring.rekey(row.digest, row.key_version, target),
                      target)
        moved += len(rows)
        if len(rows) < PAGE:
            return moved


def _move(conn: Connection, table: Table, pk: list[Any], row: Any, digest: str,
          target: int) -> None:
    """Give ``row`` its digest at ``target``; if a row with that digest is already there
    (written at ``target`` meanwhile), the old one is the duplicate and goes."""
    match = and_(*(c == getattr(row, c.name) for c in pk), table.c.key_version == row.key_version)
    unique = ("system", "digest") if table is directory else ("kind", "digest") \
        if table is identifiers else ("digest",) if table is suppression else None
    if unique is not None:
        taken = conn.execute(select(func.count()).select_from(table).where(*(
            table.c[c] == (digest if c == "digest" else getattr(row, c)) for c in unique),
            table.c.key_version == target)).scalar_one()
        if taken:
            conn.execute(delete(table).where(match))
            return
    conn.execute(update(table).where(match).values(digest=digest, key_version=target))


def _keyed_refs(conn: Connection) -> list[tuple[str, str, str, str]]:
    """(system, prefix, version, digest) of every keyed reference (``...k<v>.<digest>``)."""
    found = []
    for system, ref in conn.execute(select(system_refs.c.system, system_refs.c.ref)
                                    .where(system_refs.c.ref.like("%k%.%"))):
        match = _KEYED_REF.match(ref)
        if match:
            found.append((system, match[1], match[2], match[3]))
    return found


def _rekey_refs(engine: Engine, keyring: Keyring, target: int) -> int:
    with engine.begin() as conn:
        old = [r for r in _keyed_refs(conn) if int(r[2]) < target]
    moved = 0
    for start in range(0, len(old), PAGE):
        with engine.begin() as conn:
            for system, prefix, version, digest in old[start:start + PAGE]:
                was = f"{prefix}k{version}.{digest}"
                now_ref = f"{prefix}k{target}.{keyring.rekey(digest, int(version), target)}"
                where = and_(system_refs.c.system == system, system_refs.c.ref == was)
                taken = conn.execute(select(func.count()).select_from(system_refs).where(
                    system_refs.c.system == system, system_refs.c.ref == now_ref)).scalar_one()
                if taken:
                    conn.execute(delete(system_refs).where(where))
                else:
                    conn.execute(update(system_refs).where(where).values(ref=now_ref))
                moved += 1
    return moved


def status(conn: Connection) -> dict[str, Any]:
    """What ``privasync keys status`` shows: ids and versions and counts, never a key."""
    state = keys.read_state(conn)
    if state is None:
        return {"initialised": False}
    versions: Counter[int] = Counter()
    for table in DIGEST_TABLES:
        for version, n in conn.execute(select(table.c.key_version, func.count())
                                       .group_by(table.c.key_version)):
            versions[int(version)] += n
    for _, _, version, _ in _keyed_refs(conn):
        versions[int(version)] += 1
    return {"initialised": True, "kek": state.kek_id, "keys_by_kek": kek_in_use(conn),
            "digest_version": state.digest_version, "digest_floor": state.digest_floor,
            "rotation_in_progress": state.digest_floor < state.digest_version,
            "digests_by_version": {str(v): n for v, n in sorted(versions.items())}}
