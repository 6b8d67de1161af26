"""The migrations build exactly the tables core.db declares, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from core.db import metadata


def test_migrations_match_the_table_definitions(engine):  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == [], "core/db.py changed without a migration: " + repr(diff)[:500]
