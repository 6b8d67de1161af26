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


def _verified_after(engine, tamper: str):  # type: ignore[no-untyped-def]
    _add(engine, 20)
    with engine.begin() as conn:
        conn.execute(text(tamper))
    with engine.connect() as conn:
        return ledger.verify(conn)


def test_an_altered_last_entry_is_named_with_its_id_and_the_chain_counted_right(
        engine):  # type: ignore[no-untyped-def]
    report = _verified_after(engine, "UPDATE ledger SET kind = 'altered' WHERE seq = 20")
    assert report.broken is not None and report.broken.seq == 20
    assert report.broken.reason == ledger.ALTERED and report.broken.kind == "altered"
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT hash FROM ledger WHERE seq = 20")).scalar_one()
    assert (report.broken.hash, report.entries, report.intact) == (stored, 20, 19)
    assert str(report) == (f"ledger BROKEN at entry 20 (altered, hash {stored[:16]}): "
                           f"{ledger.ALTERED}; 19 of 20 entries before it are intact")


def test_a_deleted_entry_is_named_as_missing_not_its_successor(
        engine):  # type: ignore[no-untyped-def]
    report = _verified_after(engine, "DELETE FROM ledger WHERE seq = 1")
    assert report.broken == ledger.Break(1, ledger.MISSING)
    assert (report.entries, report.intact) == (20, 0)


def test_a_deleted_last_entry_is_named_as_missing(engine):  # type: ignore[no-untyped-def]
    report = _verified_after(engine, "DELETE FROM ledger WHERE seq = 20")
    assert report.broken == ledger.Break(20, ledger.MISSING)
    assert (report.entries, report.intact) == (20, 19)


def test_a_relinked_entry_is_named_as_a_broken_link(engine):  # type: ignore[no-untyped-def]
    report = _verified_after(engine, f"UPDATE ledger SET prev_hash = '{'1' * 64}' "
                                     "WHERE seq = 7")
    assert report.broken is not None and report.broken.seq == 7
    assert report.broken.reason == ledger.UNLINKED.format(prev=6)


def test_a_last_entry_replaced_with_a_recomputed_hash_is_caught_by_the_head(
        engine):  # type: ignore[no-untyped-def]
    _add(engine, 20)
    with engine.begin() as conn:
        last = conn.execute(text("SELECT * FROM ledger WHERE seq = 20")).one()
        forged = ledger._entry_hash(last.prev_hash, 20, T0, "forged", None, None)
        conn.execute(text("UPDATE ledger SET kind = 'forged', detail = NULL, hash = :h, "
                          "at = :at WHERE seq = 20"), {"h": forged, "at": T0})
    with engine.connect() as conn:
        report = ledger.verify(conn)
    assert report.broken == ledger.Break(20, ledger.HEAD, "forged", forged)
    assert (report.entries, report.intact) == (20, 19)
