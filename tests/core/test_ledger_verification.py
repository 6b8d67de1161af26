"""The scheduler's periodic ledger check, on both backends: incremental from the last
entry it found intact, and a break stays reported."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from core import ledger

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def _add(engine, n: int, start: int = 0) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        for i in range(n):
            ledger.append(conn, at=T0 + timedelta(seconds=start + i), kind="test.entry",
                          detail={"i": start + i})
        ledger.chain(conn)


def test_new_entries_are_checked_from_the_last_good_one(engine):  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        assert ledger.last_verification(conn) is None
    assert ledger.verify_new(engine, T0).ok  # an empty ledger holds
    _add(engine, 3)
    first = ledger.verify_new(engine, T0 + timedelta(minutes=5))
    assert (first.ok, first.seq, first.bad_seq) == (True, 3, None)
    _add(engine, 2, start=3)
    second = ledger.verify_new(engine, T0 + timedelta(minutes=10))
    assert (second.ok, second.seq) == (True, 5)
    with engine.connect() as conn:
        stored = ledger.last_verification(conn)
    assert stored is not None and stored.seq == 5 and stored.at == T0 + timedelta(minutes=10)


def test_an_altered_entry_is_reported_and_stays_reported(engine):  # type: ignore[no-untyped-def]
    _add(engine, 2)
    assert ledger.verify_new(engine, T0).ok
    _add(engine, 3, start=2)
    with engine.begin() as conn:
        conn.execute(text("UPDATE ledger SET kind = 'altered' WHERE seq = 4"))
    broken = ledger.verify_new(engine, T0 + timedelta(minutes=5))
    assert (broken.ok, broken.seq, broken.bad_seq) == (False, 3, 4)
    _add(engine, 1, start=5)  # later entries do not paper over the break
    again = ledger.verify_new(engine, T0 + timedelta(minutes=10))
    assert (again.ok, again.bad_seq) == (False, 4)
    with engine.connect() as conn:
        assert ledger.verify(conn).first_bad_seq == 4  # the full check agrees
