"""``privasync tokens create|revoke|list``: admin API tokens, shown once at creation and
stored only as keyed hashes. A refusal is one line and exit code 2."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from privasync.cli import context, output
from privasync.cli.errors import OperatorError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from core.crypto import Keyring


@click.group()
def tokens() -> None:
    """Admin API tokens: shown once at creation, stored only as keyed hashes."""


def _token_store() -> tuple[Engine, Keyring]:
    """The database (migrated: a token may be the first thing made) and the keyring."""
    return context.open_database(migrate=True)


@tokens.command("create")
@click.argument("name")
@click.option("--scope", "scopes", multiple=True,
              help="A scope to grant (repeat for more): requests:read, tokens:write, ...")
@click.option("--expires-in-days", type=click.IntRange(1, 3650), default=None,
              help="Days until it expires (default: never).")
def tokens_create(name: str, scopes: tuple[str, ...], expires_in_days: int | None) -> None:
    """Create a token NAME and print it, this once."""
    from datetime import UTC, datetime, timedelta

    from core import tokens as store
    from core.errors import BadInput

    engine, keyring = _token_store()
    now = datetime.now(UTC)
    expires_at = now + timedelta(days=expires_in_days) if expires_in_days else None
    try:
        with engine.begin() as conn:
            token = store.create(conn, keyring, name, scopes, now, expires_at, actor="cli")
    except BadInput as exc:
        raise OperatorError(str(exc)) from None
    finally:
        engine.dispose()
    click.echo(token)
    click.echo(f"token {name!r} created; it will not be shown again: keep it now", err=True)


@tokens.command("revoke")
@click.argument("name")
def tokens_revoke(name: str) -> None:
    """Revoke the token NAME at once (exit 2 if there is none)."""
    from datetime import UTC, datetime

    from core import tokens as store

    engine, _ = _token_store()
    try:
        with engine.begin() as conn:
            found = store.revoke(conn, name, datetime.now(UTC), actor="cli")
    finally:
        engine.dispose()
    if not found:
        raise OperatorError(f"no token named {name!r}")
    click.echo(f"token {name!r} revoked")


@tokens.command("list")
@output.format_option(listing=True)
def tokens_list(fmt: str) -> None:
    """Every token with its scopes and state; never the token or its hash."""
    from datetime import UTC, datetime

    from core import tokens as store
    from core.db import reader

    engine, _ = _token_store()
    try:
        with reader(engine).connect() as conn:
            found = store.listing(conn)
    finally:
        engine.dispose()
    now = datetime.now(UTC)
    if fmt == output.JSON:
        click.echo(json.dumps([{
            "name": t.name, "scopes": list(t.scopes), "status": t.status(now),
            **{k: (v.isoformat() if v is not None else None) for k, v in (
                ("created_at", t.created_at), ("expires_at", t.expires_at),
                ("revoked_at", t.revoked_at), ("last_used_at", t.last_used_at))}}
            for t in found]))
        return
    if not found and fmt == output.TABLE:
        click.echo("no tokens; create one with `privasync tokens create NAME --scope S`")
        return
    output.rows(fmt, ["name", "status", "expires", "last used", "scopes"], [
        (t.name, t.status(now), f"{t.expires_at:%Y-%m-%d}" if t.expires_at else "never",
         f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never", " ".join(t.scopes))
        for t in found])
