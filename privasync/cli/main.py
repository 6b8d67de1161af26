"""``privasync``: the root command, assembling one module per command group.

Exit codes: 0 success, 1 a check failed (ledger broken, mappings invalid),
2 bad usage or configuration (the message says what to fix).
"""

from __future__ import annotations

from pathlib import Path

import click

from privasync.cli import (
    config,
    db,
    demo,
    health,
    jobs,
    keys,
    mappings,
    processes,
    restore,
    smoke,
    status,
    subject_requests,
    tokens,
)
from privasync.cli.errors import TRACEBACK, GuardedGroup, OperatorError
from privasync.cli.logs import configure_logging


def _start(ctx: click.Context, log_level: str | None) -> None:
    """Settings first: a bad value or an unknown ``PRIVASYNC_`` name stops every command."""
    from privasync.app.environment import unknown_variables
    from privasync.app.settings import Settings

    settings = Settings()
    unknown = unknown_variables(Path(settings.mappings_dir))
    if unknown:
        raise OperatorError("unknown setting " + "; ".join(unknown)
                            + ": privasync config show lists every setting")
    ctx.obj = settings
    quiet = ctx.invoked_subcommand == "demo"
    configure_logging(log_level or ("WARNING" if quiet else settings.log_level))


@click.group(cls=GuardedGroup)
@click.version_option(package_name="privasync", message="privasync %(version)s")
@click.option("--log-level", default=None,
              help="DEBUG, INFO, WARNING (default: PRIVASYNC_LOG_LEVEL; the demo: WARNING).")
@click.option("--traceback", "traceback", is_flag=True,
              help="Let an unexpected error show its traceback (for a bug report).")
@click.pass_context
def main(ctx: click.Context, log_level: str | None, traceback: bool) -> None:
    """privasync: consent and erasure sync between CRMs, mailing tools and partners.

    Exit codes: 0 success, 1 a check failed, 2 bad usage, settings or database (one line
    says what to fix)."""
    ctx.meta[TRACEBACK] = traceback
    _start(ctx, log_level)


for _command in (*processes.COMMANDS, db.db, db.audit, mappings.mappings, tokens.tokens,
                 status.status, demo.demo, health.health, jobs.jobs_group,
                 subject_requests.requests_group, subject_requests.breach_group,
                 config.config_group, config.check, keys.keys_group, restore.restore_check,
                 smoke.smoke):
    main.add_command(_command)

__all__ = ["configure_logging", "main"]
