"""``privasync demo``: the whole loop on emulators, on this machine."""

from __future__ import annotations

import sys

import click


@click.command()
@click.option("--contacts", default=5, show_default=True, help="Contacts to seed.")
def demo(contacts: int) -> None:
    """Unsubscribe once in HubSpot and watch every system catch up (on emulators)."""
    from privasync.demo.run import run_demo

    sys.exit(run_demo(contacts))
