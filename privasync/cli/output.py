"""The CLI's one output layer: ``--format`` with the same choices on every command, tables
aligned by rich on stdout, progress on stderr.

``table`` is for people and may change between versions; ``json`` is for scripts and does
not (each command prints it as it always has); ``csv`` is offered where a command lists
rows: the table's columns and cells, for a spreadsheet. ``text``, the name some commands
gave the table, is still accepted. Progress shows only when stderr is a terminal, so a
script or a test reads stdout and stderr clean; it names the work, never a person.
"""

from __future__ import annotations

import csv
import io
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import click

TABLE, JSON, CSV = "table", "json", "csv"
FORMATS = (TABLE, JSON)
LISTING = (TABLE, JSON, CSV)
_FORMER = {"text": TABLE}

F = TypeVar("F", bound=Callable[..., Any])


class _Format(click.Choice[str]):
    """The choices, and the former name ``text`` for ``table`` (scripts may pass it)."""

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> str:
        return super().convert(_FORMER.get(value, value), param, ctx)


def format_option(*, listing: bool = False) -> Callable[[F], F]:
    """``--format``, as ``fmt``: table or json; csv too for a command that lists rows."""
    choices = LISTING if listing else FORMATS
    return click.option("--format", "fmt", type=_Format(choices), default=TABLE,
                        show_default=True,
                        help="table for people, json for scripts"
                             + (", csv for a spreadsheet." if listing else "."))


@dataclass(frozen=True)
class Column:
    header: str
    numeric: bool = False  # right-aligned


def rows(fmt: str, columns: Sequence[str | Column], found: Iterable[Sequence[object]]) -> None:
    """``found`` under ``columns``: an aligned table, or CSV with ``fmt`` csv."""
    cols = [c if isinstance(c, Column) else Column(c) for c in columns]
    cells = [["" if v is None else str(v) for v in row] for row in found]
    if fmt == CSV:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([c.header for c in cols])
        writer.writerows(cells)
        click.echo(buffer.getvalue(), nl=False)
        return
    table(cols, cells)


def table(columns: Sequence[str | Column], found: Iterable[Sequence[object]]) -> None:
    """An aligned table on stdout, nothing when there are no rows: its natural width when
    stdout is not a terminal (never wrapped or cut for a pipe or a file), the terminal's
    width when it is."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    found = list(found)
    if not found:
        return
    tty = sys.stdout.isatty()
    made = Table(box=box.SIMPLE_HEAD if tty else None, pad_edge=False, show_edge=False,
                 padding=(0, 1), header_style="bold" if tty else "")
    for c in columns:
        c = c if isinstance(c, Column) else Column(c)
        made.add_column(c.header, justify="right" if c.numeric else "left", no_wrap=not tty,
                        overflow="fold")
    for row in found:
        made.add_row(*(Text("" if v is None else str(v)) for v in row))  # never markup
    buffer = io.StringIO()
    width = shutil.get_terminal_size().columns if tty else 1_000_000
    console = Console(file=buffer, width=width, force_terminal=tty, no_color=not tty,
                      highlight=False, markup=False, emoji=False)
    console.print(made)
    for line in buffer.getvalue().splitlines():
        click.echo(line.rstrip())


@contextmanager
def progress(description: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
    """A bar over ``total`` items (a spinner with no total) on stderr while the block runs,
    when stderr is a terminal; yields ``advance(n)``. ``description`` names the work (a
    step, a system, a count), never a person."""
    if not _stderr_is_terminal():
        yield _ignore
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = [SpinnerColumn(), TextColumn("{task.description}")]
    if total is not None:
        columns += [BarColumn(), MofNCompleteColumn()]
    with Progress(*columns, TimeElapsedColumn(), console=Console(stderr=True),
                  transient=True) as bar:
        task = bar.add_task(description, total=total)

        def advance(n: int = 1) -> None:
            bar.advance(task, n)
        yield advance


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # closed, or replaced by something without it
        return False


def _ignore(_n: int = 1) -> None:
    pass
