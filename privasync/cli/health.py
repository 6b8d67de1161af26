"""``privasync health --component worker|scheduler|applier``: the liveness check that a
container's exec probe, compose's healthcheck or a monitor runs.

It reads the component's heartbeat from the database, no more: it starts nothing and
loads no mappings, so it answers in well under a second. Exit 0 when the heartbeat is
fresh, 1 with one line naming the failing part when it is stale or missing, 2 with one
line when the database cannot be read.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime

import click

from privasync.cli import context
from privasync.cli.errors import CheckFailed, OperatorError

COMPONENTS = ("worker", "scheduler", "applier")


@click.command("health")
@click.option("--component", type=click.Choice(COMPONENTS), required=True,
              help="Which loop to check.")
@click.option("--stale-after", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds after which a heartbeat is stale (default: 3 heartbeats, "
                   "3 x PRIVASYNC_WORKER__HEARTBEAT_SECONDS).")
@click.option("--host", default=None,
              help="Whose heartbeat: a host name (default: this host, as a probe inside the "
                   "container or pod wants); '*' for any host.")
def health(component: str, stale_after: float | None, host: str | None) -> None:
    """Exit 0 if COMPONENT's heartbeat on this host is fresh; 1 naming what is stale or
    missing; 2 if the database cannot be read."""
    settings = context.settings()
    limit = stale_after or settings.worker.heartbeat_seconds * 3
    where = socket.gethostname() if host is None else host
    prefix = f"{component}:" if where == "*" else f"{component}:{where}:"
    last = _latest(settings.database_url, prefix)
    scope = "any host" if where == "*" else f"host {where}"
    if last is None:
        raise CheckFailed(f"{component}: no heartbeat from {scope}")
    age = (datetime.now(UTC) - last).total_seconds()
    if age > limit:
        raise CheckFailed(f"{component}: last heartbeat from {scope} {age:.0f}s ago "
                          f"(stale after {limit:g}s)")
    click.echo(f"{component}: heartbeat from {scope} {max(age, 0.0):.1f}s ago")


def _latest(url: str, prefix: str) -> datetime | None:
    """The freshest heartbeat under ``prefix``; a probe must not hang, so PostgreSQL gets
    a connect timeout, and a SQLite file that is not there is not created."""
    from pathlib import Path

    from sqlalchemy import create_engine
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError
    from sqlalchemy.pool import NullPool

    from core import runtime
    from core.db import make_engine

    try:
        if url.startswith("sqlite"):
            path = url.split(":///", 1)[-1]
            if path and path != ":memory:" and not Path(path).exists():
                raise OperatorError("database: no SQLite file at PRIVASYNC_DATABASE_URL's path")
            engine = make_engine(url)
        else:
            engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 5})
    except (ArgumentError, ValueError, ImportError) as exc:
        raise OperatorError(f"database: cannot use PRIVASYNC_DATABASE_URL "
                            f"({type(exc).__name__})") from None
    try:
        return runtime.latest_beat(engine, prefix)
    except SQLAlchemyError as exc:
        raise OperatorError(f"database: unreachable or without a schema "
                            f"({type(exc).__name__})") from None
    finally:
        engine.dispose()
