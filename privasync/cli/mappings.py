"""``privasync mappings validate|show|explain|diff``: the admin's purpose and consent
mappings, checked, drawn as a data map, explained for one field, compared."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from privasync.cli import context, output
from privasync.cli.errors import CheckFailed

if TYPE_CHECKING:
    from core.minimise import SubjectContext

_DIR_HELP = "Mappings directory (default: PRIVASYNC_MAPPINGS_DIR)."


@click.group()
def mappings() -> None:
    """The admin's purpose and consent mappings."""


@mappings.command("validate")
@click.option("--dir", "directory", type=click.Path(path_type=Path), default=None,
              help=_DIR_HELP)
def mappings_validate(directory: Path | None) -> None:
    """Check every mapping file; each error names the file and line. Exit 1 on errors;
    warnings (an empty file, a system or partner not configured here) leave it 0."""
    from privasync.app.environment import LayeredEnviron
    from privasync.app.mapping_warnings import warnings

    settings = context.settings()
    path = Path(directory or settings.mappings_dir)
    loaded = context.load_mappings(path)
    for warning in warnings(path, loaded, settings, LayeredEnviron()):
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"{path}: {len(loaded.purposes)} purposes, {len(loaded.systems)} systems, "
               f"{len(loaded.partners)} partners: valid")


@mappings.command("show")
@click.option("--dir", "directory", type=click.Path(path_type=Path), default=None,
              help=_DIR_HELP)
@output.format_option()
def mappings_show(directory: Path | None, fmt: str) -> None:
    """The data map: every field x destination, and on what condition it may flow."""
    from core.datamap import as_rows, destinations, flows

    loaded = context.load_mappings(directory)
    if fmt == output.JSON:
        click.echo(json.dumps(as_rows(loaded), indent=2))
        return
    names = destinations(loaded)
    by_field: dict[str, dict[str, str]] = {}
    for f in flows(loaded):
        by_field.setdefault(f.field, {})[f.destination] = f.summary
    click.echo(f"Data map: {len(by_field)} fields, destinations: {', '.join(names)}")
    found: list[tuple[str, str, str]] = []
    for field, cells in by_field.items():
        label = field + (" (Art. 9)" if loaded.fields[field].special else "")
        reached = [(d, cells[d]) for d in names if cells[d] != "-"] or [("-", "nowhere")]
        found += [(label if i == 0 else "", d, when) for i, (d, when) in enumerate(reached)]
    output.table(["field", "destination", "flows when"], found)


@mappings.command("explain")
@click.argument("field")
@click.option("--to", "destination", required=True, help="A system or partner:NAME.")
@click.option("--subject", "subject_id", default=None, help="Decide for this stored subject.")
@click.option("--dir", "directory", type=click.Path(path_type=Path), default=None,
              help=_DIR_HELP)
def mappings_explain(field: str, destination: str, subject_id: str | None,
                     directory: Path | None) -> None:
    """Whether and why SYSTEM.FIELD flows to DESTINATION (exit 1 if it does not)."""
    from datetime import UTC, datetime

    from core.datamap import destinations, flows
    from core.minimise import explain

    loaded = context.load_mappings(directory)
    system, _, vendor = field.partition(".")
    mapping = loaded.systems.get(system)
    if mapping is None or vendor not in mapping.fields:
        raise click.UsageError(f"{field!r} is not a mapped field; use SYSTEM.FIELD, e.g. "
                               "hubspot.date_of_birth")
    if destination not in destinations(loaded):
        raise click.UsageError(f"unknown destination {destination!r}; known: "
                               + ", ".join(destinations(loaded)))
    fm = mapping.fields[vendor]
    special = ", special category" if fm.special else ""
    click.echo(f"{field} is {fm.canonical} ({fm.category}{special}), "
               f"collected for: {', '.join(fm.purposes)}")
    click.echo(f"{destination} uses data for: "
               f"{', '.join(sorted(loaded.destination_purposes(destination))) or 'nothing'}")
    flow = next(f for f in flows(loaded)
                if f.field == fm.canonical and f.destination == destination)
    if not flow.conditions:
        raise CheckFailed("does not flow: no purpose in common")
    for purpose, condition in flow.conditions.items():
        click.echo(f"  for {purpose}: flows when {condition}")
    if subject_id is None:
        return
    from core import state

    with context.current_engine().connect() as conn:
        subject = state.context(conn, subject_id)
    reasons = explain(fm.canonical, None, subject, loaded.destination_purposes(destination),
                      loaded, datetime.now(UTC))
    for purpose, reason in reasons.items():
        click.echo(f"  subject {subject_id}, {purpose}: "
                   f"{'flows' if reason is None else 'blocked: ' + reason.value}")
    if all(r is not None for r in reasons.values()):
        raise CheckFailed("does not flow for this subject")


@mappings.command("diff")
@click.argument("old", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.argument("new", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--no-subjects", is_flag=True, help="Skip counting stored people.")
@click.pass_context
def mappings_diff(ctx: click.Context, old: Path, new: Path, no_subjects: bool) -> None:
    """What NEW would start or stop sending compared with OLD, with people affected.
    Exit 0 when nothing would change, 1 when something would (CI can gate on it)."""
    from datetime import UTC, datetime

    from core import datamap

    before, after = context.load_mappings(old), context.load_mappings(new)
    contexts = [] if no_subjects else _stored_people()
    changes = datamap.diff(before, after, contexts, datetime.now(UTC))
    if not changes:
        click.echo("no change in what flows where")
        return
    for c in changes:
        people = "" if no_subjects else (f"  [{c.starts} people start, {c.stops} stop, "
                                         f"of {len(contexts)}]")
        click.echo(f"{c.field} -> {c.destination}: {c.before}  =>  {c.after}{people}")
    ctx.exit(1)


def _stored_people() -> list[SubjectContext]:
    """Every live subject's consent context (one read each: a progress bar on a terminal)."""
    from core import state

    found: list[SubjectContext] = []
    with context.current_engine().connect() as conn:
        subjects = list(state.live_subjects(conn))
        with output.progress("reading stored people", total=len(subjects)) as advance:
            for subject_id in subjects:
                found.append(state.context(conn, subject_id))
                advance(1)
    return found
