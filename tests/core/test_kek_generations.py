"""KEK generations and the backup horizon, on both backends: a replaced generation is kept
for the horizon (a backup from before the rotation can be restored), may be destroyed
after it (that backup then opens nothing), and never while it still wraps a key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from core import keys, rotation
from core.crypto import Keyring, KeyUnavailable
from core.db import kek_generations, key_state, ledger_pending, make_engine, subject_keys
from core.errors import ConfigError
from core.identity import IdentityMap
from tests.backups import backup, restore
from tests.core.conftest import KEK, SECRET

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
NEW = b"the-next-key-encryption-key-0123456789"
HORIZON = timedelta(days=35)
ADA = "Ada.Lovelace@example.org"


def person(engine: Engine, keyring: Keyring) -> str:
    keys.ensure(engine, keyring)
    with engine.begin() as conn:
        identity = IdentityMap(keyring)
        subject = identity.create(conn, NOW)
        identity.add_email(conn, subject, ADA)
    return subject


def by_id(found: list[rotation.Generation]) -> dict[str, rotation.Generation]:
    return {g.kek_id: g for g in found}


def test_a_replaced_generation_is_kept_for_the_horizon_then_due(engine: Engine):
    old = Keyring(SECRET, [KEK])
    person(engine, old)
    both = Keyring(SECRET, [NEW, KEK])
    rotation.rotate_kek(engine, both, lambda: NOW)
    old_id, new_id = both.kek_ids[1], both.kek_ids[0]
    found = by_id(rotation.generations(engine, both, both.kek_ids, HORIZON, NOW + HORIZON
                                       - timedelta(minutes=1)))
    assert found[new_id].current and not found[old_id].current
    assert found[old_id].retired_at == NOW and found[old_id].destroy_after == NOW + HORIZON
    assert not found[old_id].due(NOW + HORIZON - timedelta(minutes=1))
    assert found[old_id].due(NOW + HORIZON) and not found[new_id].due(NOW + HORIZON)


def test_a_generation_still_wrapping_a_key_is_never_due(engine: Engine):
    old = Keyring(SECRET, [KEK])
    person(engine, old)
    both = Keyring(SECRET, [NEW, KEK])
    # A rotation that named the new KEK current and stopped before re-wrapping.
    with engine.begin() as conn:
        conn.execute(update(key_state).values(kek_id=both.kek_ids[0]))
    later = NOW + 2 * HORIZON
    found = by_id(rotation.generations(engine, both, both.kek_ids, HORIZON, NOW))
    assert found[both.kek_ids[1]].wraps == 2  # the subject key and digest key 1
    # Replaced "now" as far as anyone recorded: the horizon counts from then, whatever
    # the wrap count; and past it, a generation wrapping keys is still refused.
    found = by_id(rotation.generations(engine, both, both.kek_ids, HORIZON, later))
    assert found[both.kek_ids[1]].retired_at == NOW
    assert not found[both.kek_ids[1]].due(later)
    rotation.rotate_kek(engine, both, lambda: later)
    found = by_id(rotation.generations(engine, both, both.kek_ids, HORIZON, later))
    assert found[both.kek_ids[1]].wraps == 0 and found[both.kek_ids[1]].due(later)


def test_destroying_an_old_generation_makes_an_old_backup_unreadable(
        engine: Engine, tmp_path: Path):
    old = Keyring(SECRET, [KEK])
    subject = person(engine, old)
    url = engine.url.render_as_string(hide_password=False)
    taken = backup(url, tmp_path / "old.bak")
    both = Keyring(SECRET, [NEW, KEK])
    rotation.rotate_kek(engine, both, lambda: NOW)

    # Within the horizon the installation still holds both: the old backup restores.
    within = make_engine(restore(url, taken, "within"))
    try:
        keys.ensure(within, both)
        with within.connect() as conn:
            assert IdentityMap(both).email(conn, subject) == ADA.lower()
    finally:
        within.dispose()

    later = NOW + HORIZON
    [due] = [g for g in rotation.generations(engine, both, both.kek_ids, HORIZON, later)
             if g.due(later)]
    rotation.destroyed(engine, [due], HORIZON, later)
    kept = Keyring(SECRET, [NEW])  # what the KEK file holds once the old one is destroyed
    keys.ensure(engine, kept)  # the live database needs only the current generation
    with engine.connect() as conn:
        assert IdentityMap(kept).email(conn, subject) == ADA.lower()
        destroyed_at = conn.execute(select(kek_generations.c.destroyed_at).where(
            kek_generations.c.kek_id == due.kek_id)).scalar_one()
        assert destroyed_at == later
        assert "keys.kek_destroyed" in conn.execute(select(ledger_pending.c.kind)).scalars()

    past = make_engine(restore(url, taken, "past"))
    try:
        with pytest.raises(ConfigError, match="does not hold"):
            keys.ensure(past, kept)
        with past.connect() as conn:
            row = conn.execute(select(subject_keys)).one()
        with pytest.raises(KeyUnavailable):
            kept.unwrap(row.key, row.kek_id, row.subject_id)
    finally:
        past.dispose()
