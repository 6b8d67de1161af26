"""Bring a database to the current schema with Alembic (``privasync db upgrade``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Engine

from core.crypto import Keyring

_HERE = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_HERE))
    config.attributes["engine"] = engine
    return config


MIGRATION_LOCK = 0x70726976  # "priv": processes starting together migrate one at a time


def upgrade(engine: Engine, keyring: Keyring | None = None) -> None:
    """Apply every pending migration; safe to call at each start, from several processes
    at once (PostgreSQL: an advisory lock; SQLite: the write lock). A migration that wraps
    stored keys needs the ``keyring`` (its KEK): without one it raises ConfigError if
    there is anything to wrap."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        config = alembic_config(engine)
        config.attributes["connection"] = conn
        config.attributes["keyring"] = keyring
        command.upgrade(config, "head")


def is_current(engine: Engine) -> bool:
    """Whether the database is at the newest migration (a process that does not migrate
    at start checks this, so it never runs against a schema it does not know).
    Raises SQLAlchemy's OperationalError when the database is unreachable."""
    heads = set(ScriptDirectory.from_config(alembic_config(engine)).get_heads())
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    return current == heads


def revision(engine: Engine, message: str) -> None:
    """Autogenerate a migration from the tables in core.db (developer tool)."""
    with engine.begin() as conn:
        config = alembic_config(engine)
        config.attributes["connection"] = conn
        command.revision(config, message=message, autogenerate=True, rev_id=None)


def pending(engine: Engine) -> str | None:
    """Why the database cannot be read as it is, or None when it is at the current schema:
    ``"empty"`` (no schema yet), ``"behind"`` (migrations pending) or ``"ahead"`` (made
    by a newer privasync). Raises sqlalchemy's OperationalError when it cannot connect."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    script = ScriptDirectory.from_config(alembic_config(engine))
    if current is None:
        return "empty"
    if current == script.get_current_head():
        return None
    known = {r.revision for r in script.walk_revisions()}
    return "behind" if current in known else "ahead"
