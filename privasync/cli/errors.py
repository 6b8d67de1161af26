"""The CLI's one place for failures: whatever a command raises becomes one line saying
what is wrong and how to fix it, never a traceback.

Exit codes: 2 for configuration, a database that is missing or unreachable, and
refused input; 1 for an unexpected error (a bug: ``privasync --traceback ...``
shows where). Messages name settings, files and ids, never values or passwords.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:  # imported when a command fails: `privasync --help` waits for none of them
    from pydantic import ValidationError
    from sqlalchemy import exc as sa

    from core.mappings import MappingError

TRACEBACK = "privasync.traceback"
DEFAULT_URL = "sqlite:///./var/privasync.db"


class OperatorError(click.ClickException):
    """Something the operator can fix: printed as one line, exit code 2."""

    exit_code = 2


class CheckFailed(click.ClickException):
    """A check that ran and found something wrong (a broken chain, an invalid mapping, a
    stale heartbeat, a failed smoke step): one line, exit code 1."""

    exit_code = 1


class Unexpected(click.ClickException):
    exit_code = 1


def settings_error(exc: ValidationError) -> str:
    """Which variables are wrong and the rule each breaks, never the value given."""
    parts = []
    for e in exc.errors():
        name = "PRIVASYNC_" + "__".join(str(p).upper() for p in e["loc"])
        parts.append(f"{name} ({e['msg'].split(',')[0].lower()})")
    return "invalid settings: " + "; ".join(parts)


def _mappings(exc: MappingError) -> str:
    first = exc.issues[0]
    if first.message == "mappings directory does not exist":
        return (f"mappings directory {first.file} does not exist: set PRIVASYNC_MAPPINGS_DIR "
                "to the directory holding purposes.yaml")
    more = f" (and {len(exc.issues) - 1} more)" if len(exc.issues) > 1 else ""
    return f"invalid mappings: {first}{more}; privasync mappings validate lists them all"


def _reason(exc: sa.DBAPIError) -> str:
    """The driver's first line (connection errors name host and port, never data)."""
    text = str(exc.orig).strip().splitlines()
    return text[0] if text else type(exc.orig).__name__


def _database(exc: sa.SQLAlchemyError, url: str) -> str:
    from sqlalchemy import exc as sa

    from privasync.app.environment import mask_url

    where = mask_url(url)
    if isinstance(exc, sa.ArgumentError):
        return (f"PRIVASYNC_DATABASE_URL {where!r} is not a database URL privasync can use: "
                "use sqlite:///path/to/privasync.db or postgresql+psycopg://user@host/db")
    if isinstance(exc, sa.DBAPIError):
        reason = _reason(exc)
        if "no such table" in reason or "does not exist" in reason and "relation" in reason:
            return f"no database yet at {where}: run privasync db upgrade"
        if isinstance(exc, sa.OperationalError | sa.InterfaceError):
            return (f"cannot use the database at {where} ({reason}): check that it is running "
                    "and that PRIVASYNC_DATABASE_URL is right")
        return f"the database at {where} refused the command ({type(exc.orig).__name__})"
    return f"the database at {where} failed ({type(exc).__name__})"


def explain(exc: Exception, url: str) -> click.ClickException:
    """The one line (and exit code) for ``exc``."""
    from pydantic import ValidationError
    from sqlalchemy import exc as sa

    from core.errors import BadInput, ConfigError
    from core.mappings import MappingError

    if isinstance(exc, ValidationError):
        return OperatorError(settings_error(exc))
    if isinstance(exc, MappingError):
        return OperatorError(_mappings(exc))
    if isinstance(exc, ConfigError | BadInput):
        return OperatorError(str(exc).splitlines()[0])
    if isinstance(exc, sa.SQLAlchemyError):
        return OperatorError(_database(exc, url))
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return OperatorError(f"{exc.strerror.lower()}{where}")
    return Unexpected(f"stopped on an unexpected {type(exc).__name__}; this is a bug: run "
                      "again as privasync --traceback ... and report what it shows")


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so flushing it at exit raises nothing more."""
    import sys

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


class GuardedGroup(click.Group):
    """The root group: every subcommand runs inside it, so this is the one handler."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:  # `privasync config show | head`: the reader had enough
            _quiet_stdout()
            raise click.exceptions.Exit(1) from None
        except Exception as exc:
            url = getattr(ctx.obj, "database_url", None) or os.environ.get(
                "PRIVASYNC_DATABASE_URL", DEFAULT_URL)
            said = explain(exc, url)
            if isinstance(said, Unexpected) and ctx.meta.get(TRACEBACK):
                raise
            raise said from None
