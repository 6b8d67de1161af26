"""``privasync jobs list|retry``: the outbox for an operator, and dead letters sent back.

Ids, states, error classes and times; never a value. A refusal is one line and
exit code 2 (an unknown id, a job that is not dead). Each retry is a ledger entry
naming the actor ``cli``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click

from core import deadletters
from core.outbox import DEAD

ACTOR = "cli"


class _Refused(click.ClickException):
    exit_code = 2


def _engine() -> Any:
    """The database, migrated (a retry may be the first thing an upgraded install does)."""
    from core import schema
    from privasync.app.database import open_engine
    from privasync.cli.main import _settings

    engine = open_engine(_settings().database_url, create=True)
    schema.upgrade(engine)
    return engine


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}" if value is not None else "-"


@click.group("jobs")
def jobs_group() -> None:
    """Outbox jobs: list them, send dead ones back."""


@jobs_group.command("list")
@click.option("--dead", is_flag=True, help="Only dead jobs (given up on).")
@click.option("--destination", default=None, help="Only this destination's, e.g. hubspot.")
@click.option("--status", type=click.Choice(deadletters.STATUSES), default=None,
              help="Only this status (default: every job not done or superseded).")
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True)
@click.option("--after", type=click.IntRange(0), default=0,
              help="Start after this job id (the next page).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def jobs_list(dead: bool, destination: str | None, status: str | None, limit: int,
              after: int, fmt: str) -> None:
    """Jobs, oldest first: id, destination, subject id, kind, status, attempts, last error
    class, created / last attempt / next attempt times."""
    from core.db import reader

    if dead and status not in (None, DEAD):
        raise _Refused(f"--dead and --status {status} contradict each other")
    engine = _engine()
    try:
        with reader(engine).connect() as conn:
            found = deadletters.listing(conn, status=DEAD if dead else status,
                                        destination=destination, limit=limit, after=after)
    finally:
        engine.dispose()
    if fmt == "json":
        click.echo(json.dumps([j.as_dict() for j in found]))
        return
    if not found:
        click.echo("no jobs")
        return
    click.echo(f"{'id':>8} {'destination':<24} {'kind':<8} {'status':<10} {'tries':>5} "
               f"{'last error':<16} {'subject':<36} {'created':<19} {'last attempt':<19} "
               f"{'next attempt':<19}")
    for j in found:
        click.echo(f"{j.id:>8} {j.destination:<24} {j.kind:<8} {j.status:<10} {j.attempts:>5} "
                   f"{j.last_error_class or '-':<16} {j.subject_id:<36} "
                   f"{_when(j.created_at):<19} {_when(j.last_attempt_at):<19} "
                   f"{_when(j.next_attempt_at):<19}")
    if len(found) == limit:
        click.echo(f"(more: --after {found[-1].id})", err=True)


@jobs_group.command("retry")
@click.argument("job_id", type=int, required=False)
@click.option("--all-dead", is_flag=True, help="Every dead job (of --destination).")
@click.option("--destination", default=None, help="With --all-dead: only this destination.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def jobs_retry(job_id: int | None, all_dead: bool, destination: str | None, fmt: str) -> None:
    """Send a dead job back (JOB_ID), or every dead one (--all-dead): pending, attempts from
    zero, due now. A state job whose subject has one waiting already is superseded by it."""
    if (job_id is None) == (not all_dead):
        raise _Refused("name one JOB_ID or --all-dead")
    if destination is not None and not all_dead:
        raise _Refused("--destination goes with --all-dead")
    now = datetime.now(UTC)
    engine = _engine()
    try:
        if job_id is not None:
            done = deadletters.retry(engine, [job_id], now, actor=ACTOR)
            if done.not_dead:
                with engine.connect() as conn:
                    job = deadletters.get(conn, job_id)
                raise _Refused(f"no job {job_id}" if job is None
                               else f"job {job_id} is {job.status}, not dead: nothing to retry")
        else:
            done = deadletters.retry_dead(engine, now, actor=ACTOR, destination=destination)
    finally:
        engine.dispose()
    if fmt == "json":
        click.echo(json.dumps({"retried": done.retried, "superseded": {
            str(k): v for k, v in sorted(done.superseded.items())}}))
        return
    click.echo(f"{len(done.retried)} job(s) sent back, due now"
               + (f" ({', '.join(sorted(done.destinations))})" if done.destinations else ""))
    for superseded, why in sorted(done.superseded.items()):
        click.echo(f"job {superseded} superseded: {why}")
