"""Opening the database for a command: a URL that cannot work, a SQLite file that is not
there yet and a schema that is not current become one ConfigError each, saying what to
do; the CLI's handler prints it as one line (exit 2)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError

from core import schema
from core.db import make_engine
from core.errors import ConfigError
from privasync.app.environment import mask_url

URL_HELP = "use sqlite:///path/to/privasync.db or postgresql+psycopg://user@host/db"


class NoDatabase(ConfigError):
    """There is no database (or no schema in it) at the URL yet."""


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for other backends and in-memory databases)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database \
            or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def open_engine(url: str, *, create: bool) -> Engine:
    """An engine for ``url``. ``create``: a SQLite file (and its directory) may be made;
    otherwise a missing one is NoDatabase rather than an empty file left behind."""
    try:
        path = sqlite_path(url)
        if path is not None:
            if create:
                path.parent.mkdir(parents=True, exist_ok=True)
            elif not path.exists():
                raise NoDatabase(f"no database yet at {mask_url(url)}: run privasync db upgrade "
                                 "(or set PRIVASYNC_DATABASE_URL to the one you meant)")
        return make_engine(url)
    except ArgumentError:
        raise ConfigError(f"PRIVASYNC_DATABASE_URL {mask_url(url)!r} is not a database URL "
                          f"privasync can use: {URL_HELP}") from None
    except ImportError as exc:
        raise ConfigError(f"PRIVASYNC_DATABASE_URL {mask_url(url)!r} needs a driver that is "
                          f"not installed ({exc.name}): {URL_HELP}") from None


def open_current(url: str) -> Engine:
    """An engine on a database at the current schema, for commands that only read:
    they never create or migrate one."""
    engine = open_engine(url, create=False)
    why = schema.pending(engine)
    if why is None:
        return engine
    engine.dispose()
    where = mask_url(url)
    if why == "empty":
        raise NoDatabase(f"no database yet at {where}: run privasync db upgrade")
    if why == "behind":
        raise NoDatabase(f"the database at {where} needs migrating: run privasync db upgrade")
    raise NoDatabase(f"the database at {where} was migrated by a newer privasync: run that "
                     "version")
