"""``privasync config show`` and ``privasync check``: what privasync will run with, and
whether each system accepts it. Neither prints a secret."""

from __future__ import annotations

import json
from pathlib import Path

import click

from privasync.cli import context, output


@click.group("config")
def config_group() -> None:
    """The effective settings."""


@config_group.command("show")
@output.format_option(listing=True)
def show(fmt: str) -> None:
    """Every effective setting, secrets masked, and where it came from: default, env, .env
    or secrets file; then each variable partners.yaml names."""
    from privasync.app.environment import show as rows

    settings = context.settings()
    found = rows(settings, Path(settings.mappings_dir))
    if fmt == output.JSON:
        click.echo(json.dumps([{"variable": r.variable, "value": r.value, "origin": r.origin,
                                "secret": r.secret} for r in found], indent=2))
        return
    output.rows(fmt, ["variable", "value", "origin"],
                [(r.variable, r.value or "(empty)", r.origin) for r in found])


@click.command("check")
def check() -> None:
    """Try every configured system with the credentials given: one line each, OK or what
    is wrong and how to fix it. Exit 1 if any fails."""
    from privasync.app.environment import LayeredEnviron
    from privasync.app.system_checks import check_systems

    settings = context.settings()
    results = check_systems(settings, context.load_mappings(Path(settings.mappings_dir)),
                            LayeredEnviron())
    for result in results:
        click.echo(result.line())
    failed = [r.system for r in results if r.ok is False]
    if failed:
        raise click.exceptions.Exit(1)
