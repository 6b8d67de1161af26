"""``privasync jobs list|retry``: the outbox for an operator, and dead letters sent back.

Ids, states, error classes and times; never a value. A refusal is one line and
exit code 2 (an unknown id, a job that is not dead). Each retry is a ledger entry
naming the actor ``cli``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from privasync.cli import context, output
from privasync.cli.errors import OperatorError

ACTOR = "cli"


class _Statuses(click.Choice[str]):
    """The job statuses (core.deadletters.STATUSES), read when a command line is parsed or
    its help shown: importing them loads SQLAlchemy, which `privasync --help` need not."""

    def __init__(self) -> None:
        super().__init__(())

    @property
    def choices(self) -> tuple[str, ...]:
        from core.deadletters import STATUSES

        return STATUSES

    @choices.setter
    def choices(self, _value: tuple[str, ...]) -> None:
        pass


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}" if value is not None else "-"


@click.group("jobs")
def jobs_group() -> None:
    """Outbox jobs: list them, send dead ones back."""


@jobs_group.command("list")
@click.option("--dead", is_flag=True, help="Only dead jobs (given up on).")
@click.option("--destination", default=None, help="Only this destination's, e.g. hubspot.")
@click.option("--status", type=_Statuses(), default=None,
              help="Only this status (default: every job not done or superseded).")
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True)
@click.option("--after", type=click.IntRange(0), default=0,
              help="Start after this job id (the next page).")
@output.format_option(listing=True)
def jobs_list(dead: bool, destination: str | None, status: str | None, limit: int,
              after: int, fmt: str) -> None:
    """Jobs, oldest first: id, destination, subject id, kind, status, attempts, last error
    class, created / last attempt / next attempt times."""
    from core import deadletters
    from core.db import reader
    from core.outbox import DEAD

    if dead and status not in (None, DEAD):
        raise OperatorError(f"--dead and --status {status} contradict each other")
    engine = context.migrated_engine()
    try:
        with reader(engine).connect() as conn:
            found = deadletters.listing(conn, status=DEAD if dead else status,
                                        destination=destination, limit=limit, after=after)
    finally:
        engine.dispose()
    if fmt == output.JSON:
        click.echo(json.dumps([j.as_dict() for j in found]))
        return
    if not found and fmt == output.TABLE:
        click.echo("no jobs")
        return
    number = output.Column
    output.rows(fmt, [number("id", numeric=True), "destination", "kind", "status",
                      number("tries", numeric=True), "last error", "subject", "created",
                      "last attempt", "next attempt"],
                [(j.id, j.destination, j.kind, j.status, j.attempts, j.last_error_class or "-",
                  j.subject_id, _when(j.created_at), _when(j.last_attempt_at),
                  _when(j.next_attempt_at)) for j in found])
    if len(found) == limit:
        click.echo(f"(more: --after {found[-1].id})", err=True)


@jobs_group.command("retry")
@click.argument("job_id", type=int, required=False)
@click.option("--all-dead", is_flag=True, help="Every dead job (of --destination).")
@click.option("--destination", default=None, help="With --all-dead: only this destination.")
@output.format_option()
def jobs_retry(job_id: int | None, all_dead: bool, destination: str | None, fmt: str) -> None:
    """Send a dead job back (JOB_ID), or every dead one (--all-dead): pending, attempts from
    zero, due now. A state job whose subject has one waiting already is superseded by it."""
    from core import deadletters

    if (job_id is None) == (not all_dead):
        raise OperatorError("name one JOB_ID or --all-dead")
    if destination is not None and not all_dead:
        raise OperatorError("--destination goes with --all-dead")
    now = datetime.now(UTC)
    engine = context.migrated_engine()
    try:
        if job_id is not None:
            done = deadletters.retry(engine, [job_id], now, actor=ACTOR)
            if done.not_dead:
                with engine.connect() as conn:
                    job = deadletters.get(conn, job_id)
                raise OperatorError(f"no job {job_id}" if job is None else
                                    f"job {job_id} is {job.status}, not dead: nothing to retry")
        else:
            with output.progress("sending dead jobs back"):
                done = deadletters.retry_dead(engine, now, actor=ACTOR, destination=destination)
    finally:
        engine.dispose()
    if fmt == output.JSON:
        click.echo(json.dumps({"retried": done.retried, "superseded": {
            str(k): v for k, v in sorted(done.superseded.items())}}))
        return
    click.echo(f"{len(done.retried)} job(s) sent back, due now"
               + (f" ({', '.join(sorted(done.destinations))})" if done.destinations else ""))
    for superseded, why in sorted(done.superseded.items()):
        click.echo(f"job {superseded} superseded: {why}")
