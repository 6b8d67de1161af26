"""``privasync keys status|rotate``: the key-encryption key and the digest key.

``rotate --kek`` re-wraps every subject key and digest key under the current KEK:
with ``PRIVASYNC_KEK`` set, the operator puts the new KEK there and the old one in
``PRIVASYNC_KEK_PREVIOUS`` first (in every process); with the single-machine file
``var/kek.key``, a new KEK is generated into it and the old one is dropped once
nothing is wrapped under it. ``rotate --digest`` moves every stored digest to a new
digest key. Both resume an interrupted rotation when run again. See SECURITY.md.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import click


def _now() -> datetime:
    return datetime.now(UTC)


def _open(settings: Any) -> Any:
    """The database and keyring; a ConfigError (no KEK, a bad URL) is the CLI's one line."""
    from api.bootstrap import open_database

    return open_database(settings)


@click.group("keys")
def keys_group() -> None:
    """Key-encryption key and digest key: status and rotation (no key is ever printed)."""


@keys_group.command("status")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def keys_status(fmt: str) -> None:
    """The current KEK (by id), how many keys each KEK wraps, and the digest versions."""
    from api.cli import _settings
    from core import rotation
    from core.db import reader

    engine, keyring = _open(_settings())
    try:
        with reader(engine).connect() as conn:
            found = rotation.status(conn)
    finally:
        engine.dispose()
    found["kek_held"] = keyring.kek_ids
    if fmt == "json":
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
    from api.cli import _settings

    if not (kek or digest):
        raise click.UsageError("say what to rotate: --kek, --digest or both")
    settings = _settings()
    if kek:
        _rotate_kek(settings)
    if digest:
        _rotate_digest(settings, wait)


def _rotate_kek(settings: Any) -> None:
    from api import keyfiles
    from core import rotation

    path = keyfiles.kek_file(settings)
    if path is not None:
        held = keyfiles.read_keks(settings)
        engine, keyring = _open(settings)
        with engine.connect() as conn:
            in_use = rotation.kek_in_use(conn)
        engine.dispose()
        # A file that already holds a newer KEK is a rotation to finish, not a new one.
        if len(held) == 1 or set(in_use) <= {keyring.kek_ids[0]}:
            held = [keyfiles.new_kek(), *held]
            keyfiles.write_kek_file(path, held)
    engine, keyring = _open(settings)
    try:
        done = rotation.rotate_kek(engine, keyring, _now)
        with engine.connect() as conn:
            left = {k: n for k, n in rotation.kek_in_use(conn).items()
                    if k != keyring.kek_ids[0]}
    finally:
        engine.dispose()
    if left:
        raise click.ClickException(f"keys are still wrapped under {sorted(left)}: run again")
    if path is not None:
        keyfiles.write_kek_file(path, keyfiles.read_keks(settings)[:1])
        click.echo(f"{path}: holds only the new KEK now")
    elif settings.kek_previous is not None:
        click.echo("nothing is wrapped under PRIVASYNC_KEK_PREVIOUS any more: remove it")
    click.echo(f"KEK {keyring.kek_ids[0]} wraps every key ({_counts(done)} re-wrapped)")


def _rotate_digest(settings: Any, wait: float) -> None:
    from core import rotation

    engine, keyring = _open(settings)
    try:
        moved = rotation.rotate_digest(engine, keyring, _now, settle=wait)
    finally:
        engine.dispose()
    click.echo(f"digest key version {keyring.digest_version} is current; "
               f"{_counts(moved)} moved to it")


def _counts(found: Counter[str]) -> str:
    return ", ".join(f"{n} {name}" for name, n in sorted(found.items())) or "nothing"
