"""``privasync status``: what waits, what could not be applied, and the jobs by destination
and status. It reads the database only: no vendor credential is needed."""

from __future__ import annotations

import json

import click

from privasync.cli import context, output

UNAPPLIED = ("unknown_subject", "invalid", "failed")


@click.command()
@output.format_option()
def status(fmt: str) -> None:
    """Deliveries waiting to be applied, events that could not be applied, and jobs by
    destination and status."""
    from sqlalchemy import select

    from core import inbox, outbox
    from core.db import event_counts, reader

    engine = reader(context.current_engine())
    with engine.connect() as conn:
        backlog = inbox.backlog(conn)
        counts = outbox.counts(conn)
        events = {(r.source, r.outcome): int(r.n) for r in conn.execute(select(event_counts))}
    unapplied = {k: n for k, n in events.items() if k[1] in UNAPPLIED}
    if fmt == output.JSON:
        click.echo(json.dumps({
            "inbox": {"rows": backlog.rows, "events": backlog.events,
                      "oldest": backlog.oldest.isoformat() if backlog.oldest else None,
                      "failed_rows": backlog.failed},
            "events_not_applied": [{"source": s, "reason": o, "events": n}
                                   for (s, o), n in sorted(unapplied.items())],
            "jobs": [{"destination": d, "status": s, "jobs": n}
                     for (d, s), n in sorted(counts.items())]}))
        return
    oldest = f", oldest from {backlog.oldest:%Y-%m-%d %H:%M:%S %Z}" if backlog.oldest else ""
    click.echo(f"inbox: {backlog.rows} deliveries ({backlog.events} events) waiting{oldest}; "
               f"{backlog.failed} given up on")
    for (source, reason), n in sorted(unapplied.items()):
        click.echo(f"not applied: {n} {source} event(s), {reason}")
    if counts:
        output.table(["destination", "status", output.Column("jobs", numeric=True)],
                     [(destination, state, n) for (destination, state), n
                      in sorted(counts.items())])
