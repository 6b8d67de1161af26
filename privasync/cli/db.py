"""``privasync db upgrade``: the database schema, and ``privasync audit verify``: the
ledger's hash chain."""

from __future__ import annotations

import click

from privasync.cli import context
from privasync.cli.errors import CheckFailed


@click.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations (wrapping keys stored unwrapped with the KEK)."""
    from privasync.app.environment import mask_url

    engine, _ = context.open_database(migrate=True)
    engine.dispose()
    click.echo(f"database schema is up to date at {mask_url(context.settings().database_url)}")


@click.group()
def audit() -> None:
    """Proof: the ledger."""


@audit.command("verify")
def audit_verify() -> None:
    """Recompute the ledger's hash chain; exit 1 if any entry was altered."""
    from core import ledger
    from core.db import reader

    engine = reader(context.current_engine())
    with engine.connect() as conn:
        report = ledger.verify(conn)
        waiting = ledger.pending_count(conn)
    if not report.ok:
        raise CheckFailed(str(report))
    click.echo(str(report) + (f"; {waiting} newer entries wait to be chained" if waiting
                              else ""))
