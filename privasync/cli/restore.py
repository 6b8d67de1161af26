"""``privasync restore-check``: after restoring the database, before starting any worker,
erase again everyone the erasure log says was erased (core.restore).

Exit codes: 0 the database already agreed with the log; 1 something had to be erased
again (what, and where the restored database may have pushed since, is printed);
2 the erasure log or the database is missing or unreadable (one line says which).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from privasync.cli import context, output
from privasync.cli.errors import OperatorError

if TYPE_CHECKING:
    from core.restore import Replayed


def _now() -> datetime:
    return datetime.now(UTC)


@click.command("restore-check")
def restore_check() -> None:
    """After a database restore, before starting workers: replay the erasure log, erasing
    again anyone the backup brought back, and adding their suppression back."""
    from core import erasures, keys, restore, rotation
    from privasync.app.database import sqlite_path
    from privasync.app.erasure_log import FileErasureLog, log_path

    settings = context.settings()
    log = FileErasureLog(log_path(settings))
    log.read()  # a missing or unreadable log stops here, before the database is touched
    path = sqlite_path(settings.database_url)
    if path is not None and not path.is_file():
        raise OperatorError(f"no database at {path}: restore it first, or set "
                            "PRIVASYNC_DATABASE_URL to the restored database")
    engine, keyring = context.open_database()
    try:
        # A backup taken between an erasure's commit and its append holds it queued.
        erasures.flush(engine, log)
        entries = log.read()
        with output.progress(f"checking {len(entries)} logged erasure(s)"):
            report = restore.replay(engine, keyring, entries, _now)
        with engine.connect() as conn:
            state = keys.read_state(conn)
        rewrapped = None
        if state is not None and state.kek_id != keyring.kek_ids[0]:
            # The backup names an older KEK generation: move its keys to the current one.
            rewrapped = rotation.rotate_kek(engine, keyring, _now)
    finally:
        engine.dispose()
    click.echo(f"{report.checked} logged erasure(s) checked against the database")
    for done in report.replayed:
        click.echo(_describe(done))
    if rewrapped is not None:
        click.echo(f"the backup's keys were wrapped under an older KEK: re-wrapped under "
                   f"{keyring.kek_ids[0]} ({rewrapped['subject_keys']} subject keys)")
    if report.clean:
        click.echo("nothing to do: every logged erasure holds in this database")
        return
    click.echo(f"{len(report.replayed)} erasure(s) replayed; start the workers now")
    sys.exit(1)


def _describe(done: Replayed) -> str:
    parts: list[str] = []
    if done.subjects:
        parts.append(f"erased again (subject {', '.join(done.subjects)}, "
                     f"{done.cancelled} open job(s) cancelled)")
    if done.suppression_added:
        parts.append(f"{done.suppression_added} suppression digest(s) added back")
    if done.request:
        parts.append(f"request {done.request} as completed")
    if done.digests_unknown:
        parts.append("logged under a newer digest key than this backup holds: matched by "
                     "subject id only, suppression not re-added from the log")
    line = f"request {done.request_id}: " + "; ".join(parts)
    if done.repushed:
        where = ", ".join(f"{d} ({n} job(s))" for d, n in done.repushed.items())
        line += (f"\n  delivered to {where} after the erasure, from the restored database: "
                 f"ask those systems to erase request {done.request_id} again")
    return line
