"""``privasync keys status|rotate|prune``: the key-encryption key and the digest key.

``rotate --kek`` re-wraps every subject key and digest key under the current KEK:
with ``PRIVASYNC_KEK`` set, the operator puts the new KEK there and the old one in
``PRIVASYNC_KEK_PREVIOUS`` first (in every process); with the single-machine file
``var/kek.key``, a new KEK is generated into it. The old generation is kept for the
backup horizon (``PRIVASYNC_BACKUP_HORIZON_DAYS``: backups taken before the rotation
hold keys wrapped under it) and ``prune`` destroys it after that, so that no backup
older than the horizon can be read; a generation still wrapping keys is never
destroyed. ``rotate --digest`` moves every stored digest to a new digest key. Both
rotations resume when run again. See SECURITY.md.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from privasync.cli import context, output

if TYPE_CHECKING:
    from privasync.app.settings import Settings


def _now() -> datetime:
    return datetime.now(UTC)


@click.group("keys")
def keys_group() -> None:
    """Key-encryption key and digest key: status and rotation (no key is ever printed)."""


@keys_group.command("status")
@output.format_option()
def keys_status(fmt: str) -> None:
    """The current KEK (by id), how many keys each KEK wraps, and the digest versions."""
    from core import rotation
    from core.db import reader

    engine, keyring = context.open_database()
    try:
        with reader(engine).connect() as conn:
            found = rotation.status(conn)
    finally:
        engine.dispose()
    found["kek_held"] = keyring.kek_ids
    if fmt == output.JSON:
        click.echo(json.dumps(found, sort_keys=True))
        return
    click.echo(f"KEK {found['kek']} (this process holds {', '.join(keyring.kek_ids)})")
    for kek, n in sorted(found["keys_by_kek"].items()):
        click.echo(f"  {n} key(s) wrapped under {kek}")
    click.echo(f"digest key version {found['digest_version']} (look-ups from version "
               f"{found['digest_floor']})"
               + ("; a rotation is in progress" if found["rotation_in_progress"] else ""))
    for version, n in found["digests_by_version"].items():
        click.echo(f"  {n} stored digest(s) at version {version}")


@keys_group.command("rotate")
@click.option("--kek", "kek", is_flag=True, help="Re-wrap every key under a new KEK.")
@click.option("--digest", "digest", is_flag=True, help="Move every digest to a new digest key.")
@click.option("--wait", "wait", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="Seconds for every running process to learn a new digest version before "
                   "stored digests move.")
def keys_rotate(kek: bool, digest: bool, wait: float) -> None:
    """Rotate the KEK and/or the digest key; resumable, idempotent, recorded in the ledger."""
    if not (kek or digest):
        raise click.UsageError("say what to rotate: --kek, --digest or both")
    settings = context.settings()
    if kek:
        _rotate_kek(settings)
    if digest:
        _rotate_digest(settings, wait)


def _rotate_kek(settings: Settings) -> None:
    from core import rotation
    from privasync.app import keyfiles

    path = keyfiles.kek_file(settings)
    if path is not None:
        held = keyfiles.read_keks(settings)
        engine, keyring = context.open_database()
        with engine.connect() as conn:
            in_use = rotation.kek_in_use(conn)
        engine.dispose()
        # A file that already holds a newer KEK is a rotation to finish, not a new one.
        if len(held) == 1 or set(in_use) <= {keyring.kek_ids[0]}:
            held = [keyfiles.new_kek(), *held]
            keyfiles.write_kek_file(path, held)
    engine, keyring = context.open_database()
    try:
        with output.progress(f"re-wrapping every key under KEK {keyring.kek_ids[0]}"):
            done = rotation.rotate_kek(engine, keyring, _now)
        with engine.connect() as conn:
            left = {k: n for k, n in rotation.kek_in_use(conn).items()
                    if k != keyring.kek_ids[0]}
    finally:
        engine.dispose()
    if left:
        raise click.ClickException(f"keys are still wrapped under {sorted(left)}: run again")
    click.echo(f"KEK {keyring.kek_ids[0]} wraps every key ({_counts(done)} re-wrapped)")
    # The old generation is kept for the backup horizon (backups taken before now hold
    # keys wrapped under it), then destroyed: what prune does, now for older ones.
    _prune(settings, quiet_current=True)
    if path is None and settings.kek_previous is not None:
        click.echo("nothing is wrapped under PRIVASYNC_KEK_PREVIOUS any more: remove it from "
                   "every process, but keep it in your secret store until the date above, "
                   "so a backup taken before now can still be restored")


@keys_group.command("prune")
def keys_prune() -> None:
    """Destroy every KEK generation replaced more than PRIVASYNC_BACKUP_HORIZON_DAYS ago
    (a backup older than that then opens nothing); one that still wraps keys is refused.
    Exit 1 when a generation is due but must be destroyed by hand (PRIVASYNC_KEK_PREVIOUS)."""
    if _prune(context.settings(), quiet_current=False):
        raise click.exceptions.Exit(1)


def _prune(settings: Settings, *, quiet_current: bool) -> bool:
    """Say when each old generation goes, destroy those due from the KEK file; True if some
    are due but come from the environment (the operator must destroy them)."""
    from datetime import timedelta

    from core import rotation
    from core.crypto import kek_id
    from privasync.app import keyfiles

    horizon = timedelta(days=settings.backup_horizon_days)
    now = _now()
    engine, keyring = context.open_database()
    try:
        found = rotation.generations(engine, keyring, keyring.kek_ids, horizon, now)
        due = [g for g in found if g.due(now)]
        path = keyfiles.kek_file(settings)
        if due and path is not None:
            gone = {g.kek_id for g in due}
            keyfiles.write_kek_file(path, [k for k in keyfiles.read_keks(settings)
                                           if kek_id(k) not in gone])
            rotation.destroyed(engine, due, horizon, now)
    finally:
        engine.dispose()
    for g in found:
        if g.current:
            if not quiet_current:
                click.echo(f"KEK {g.kek_id} is current ({g.wraps} key(s))")
        elif g in due and path is not None:
            click.echo(f"KEK {g.kek_id} destroyed: replaced {g.retired_at:%Y-%m-%d}, past "
                       f"the backup horizon ({settings.backup_horizon_days:g} days); backups "
                       "taken while it was current open nothing now")
        elif g in due:
            click.echo(f"KEK {g.kek_id} is past the backup horizon: remove it from "
                       "PRIVASYNC_KEK_PREVIOUS and destroy it in your secret store")
        elif g.wraps:
            click.echo(f"KEK {g.kek_id} still wraps {g.wraps} key(s): not destroyed; run "
                       "privasync keys rotate --kek to re-wrap them first")
        else:
            assert g.destroy_after is not None
            click.echo(f"KEK {g.kek_id} kept until {g.destroy_after:%Y-%m-%d %H:%M} UTC "
                       "(the backup horizon), so backups taken before "
                       f"{g.retired_at:%Y-%m-%d} can be restored; privasync keys prune "
                       "destroys it then")
    return bool(due) and path is None


def _rotate_digest(settings: Settings, wait: float) -> None:
    from core import rotation

    engine, keyring = context.open_database()
    try:
        with output.progress("moving stored digests to a new digest key"):
            moved = rotation.rotate_digest(engine, keyring, _now, settle=wait)
    finally:
        engine.dispose()
    click.echo(f"digest key version {keyring.digest_version} is current; "
               f"{_counts(moved)} moved to it")


def _counts(found: Counter[str]) -> str:
    return ", ".join(f"{n} {name}" for name, n in sorted(found.items())) or "nothing"
