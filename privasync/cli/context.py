"""What every command takes from where it runs: the settings the root command loaded, the
composition root built from them, the database opened, the mappings loaded.

Every group module imports this one, never ``main`` (which imports them). The heavy
modules (SQLAlchemy, Dramatiq, the vendor SDKs) are imported inside the functions, when
a command asks, so that ``privasync --help`` waits for none of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from privasync.cli.errors import CheckFailed, OperatorError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from core.crypto import Keyring
    from core.mappings import Mappings
    from privasync.app.bootstrap import Container
    from privasync.app.settings import Settings


def settings() -> Settings:
    """The settings loaded at start (the root command keeps them in the context); fresh
    ones outside a command."""
    from privasync.app.settings import Settings

    ctx = click.get_current_context(silent=True)
    found = ctx.find_root().obj if ctx is not None else None
    return found if isinstance(found, Settings) else Settings()


def build() -> Container:
    """The composition root on these settings (the caller closes it)."""
    from privasync.app.bootstrap import build as built

    return built(settings())


def open_database(*, migrate: bool | None = None) -> tuple[Engine, Keyring]:
    """The engine and keyring, the key state checked (``migrate``: as bootstrap's)."""
    from privasync.app.bootstrap import open_database as opened

    return opened(settings(), migrate=migrate)


def current_engine() -> Engine:
    """The database as it is, for reading: never created, never migrated."""
    from privasync.app.database import open_current

    return open_current(settings().database_url)


def migrated_engine() -> Engine:
    """The database, created and migrated if need be (a command that may be the first
    thing an upgraded install does); no keyring needed."""
    from core import schema
    from privasync.app.database import open_engine

    engine = open_engine(settings().database_url, create=True)
    schema.upgrade(engine)
    return engine


def load_mappings(directory: Path | None = None) -> Mappings:
    """The mappings in ``directory`` (default: PRIVASYNC_MAPPINGS_DIR); each error goes to
    stderr naming its file and line, then one line and exit code 1."""
    from core.mappings import MappingError
    from core.mappings import load_mappings as loaded
    from privasync.app.taxonomy import data_categories

    path = Path(directory or settings().mappings_dir)
    if not path.is_dir():
        raise OperatorError(f"mappings directory {path} does not exist: set "
                            "PRIVASYNC_MAPPINGS_DIR (or --dir) to the directory holding "
                            "purposes.yaml")
    try:
        return loaded(path, data_categories())
    except MappingError as exc:
        for issue in exc.issues:
            click.echo(f"{path.name}/{issue}", err=True)
        raise CheckFailed(f"{len(exc.issues)} error(s) in {path}") from None
