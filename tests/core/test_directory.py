"""A destination's list, learned in bulk as keyed digests, on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from core import directory, state
from core.db import directory as directory_table
from core.errors import TransientError
from core.model import Channel, ConsentChange, ConsentChanged, ConsentStatus, EventMeta, SubjectHint
from tests.core.conftest import at

NOW = datetime(2026, 11, 1, 13, 0, tzinfo=UTC)


def person(core, email: str) -> str:  # type: ignore[no-untyped-def]
    core.accept([ConsentChanged(EventMeta("hubspot", email, at(1)), SubjectHint(email=email),
                                (ConsentChange("offers", Channel.EMAIL,
                                               ConsentStatus.WITHDRAWN),))], NOW)
    with core.engine.connect() as conn:
        found = core.identity.by_email(conn, email)
    assert found is not None
    return str(found)


def test_who_is_on_a_list_is_learned_in_bulk_and_forgotten_when_gone(engine, core):  # type: ignore[no-untyped-def]
    ann, bob = person(core, "ann@example.org"), person(core, "bob@example.org")
    listed = directory.refresh(engine, core.keyring, "mailchimp",
                               ["ANN@example.org", "zoe@example.org"], NOW)
    assert listed == 2
    with engine.connect() as conn:
        assert directory.listed(conn, core.keyring, "mailchimp", [ann, bob]) == {ann}
        assert directory.listed(conn, core.keyring, "salesforce", [ann, bob]) == set()
        stored = conn.execute(select(directory_table.c.digest)).scalars().all()
    assert all("@" not in d for d in stored) and len(stored) == 2
    directory.refresh(engine, core.keyring, "mailchimp", ["bob@example.org"],
                      NOW + timedelta(hours=6))
    with engine.connect() as conn:
        assert directory.listed(conn, core.keyring, "mailchimp", [ann, bob]) == {bob}
        assert len(conn.execute(select(directory_table)).all()) == 1


def test_a_read_that_ended_says_since_when_those_missing_from_it_were_not_on_the_list(  # type: ignore[no-untyped-def]
        engine, core):
    ann, bob, cy = (person(core, f"{n}@example.org") for n in ("ann", "bob", "cy"))
    with engine.connect() as conn:
        assert directory.read_at(conn, "mailchimp") is None
        unread = state.snapshots(conn, core.keyring, [ann, bob, cy], "mailchimp")
    assert {s.unlisted_at for s in unread.values()} == {None}  # never read: nobody known absent
    directory.refresh(engine, core.keyring, "mailchimp", ["ann@example.org"], NOW,
                      kept=["bob@example.org"])
    with engine.connect() as conn:
        assert directory.read_at(conn, "mailchimp") == NOW
        assert directory.listed(conn, core.keyring, "mailchimp", [ann, bob, cy]) == {ann}
        snaps = state.snapshots(conn, core.keyring, [ann, bob, cy], "mailchimp")
    # A member is listed; an archived contact is neither listed nor known absent.
    assert (snaps[ann].listed, snaps[ann].unlisted_at) == (True, None)
    assert (snaps[bob].listed, snaps[bob].unlisted_at) == (False, None)
    assert (snaps[cy].listed, snaps[cy].unlisted_at) == (False, NOW)


def test_a_read_that_fails_leaves_the_last_whole_read_and_its_time(engine, core):  # type: ignore[no-untyped-def]
    ann, bob = person(core, "ann@example.org"), person(core, "bob@example.org")
    directory.refresh(engine, core.keyring, "mailchimp", ["ann@example.org"], NOW)

    def broken() -> Iterator[str]:
        yield "bob@example.org"
        raise TransientError("the list moved under the read")

    later = NOW + timedelta(hours=6)
    with pytest.raises(TransientError):
        directory.refresh(engine, core.keyring, "mailchimp", broken(), later)
    with engine.connect() as conn:
        assert directory.read_at(conn, "mailchimp") == NOW
        # ann, not seen by the broken read, is still there.
        assert directory.listed(conn, core.keyring, "mailchimp", [ann, bob]) == {ann}
    directory.refresh(engine, core.keyring, "mailchimp", ["bob@example.org"], later)
    directory.refresh(engine, core.keyring, "mailchimp", ["bob@example.org"], NOW)  # overlapped
    with engine.connect() as conn:
        assert directory.read_at(conn, "mailchimp") == later
        assert directory.listed(conn, core.keyring, "mailchimp", [ann, bob]) == {bob}
