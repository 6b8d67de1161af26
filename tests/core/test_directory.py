"""A destination's list, learned in bulk as keyed digests, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from core import directory
from core.db import directory as directory_table
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
