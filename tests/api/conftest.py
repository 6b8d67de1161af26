from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from privasync.demo.stack import Stack, start_stack
from tests.api.door import Door, open_door
from tests.conftest import make_database

MAPPINGS = Path(__file__).parents[2] / "mappings"


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Stack]:
    """The one-machine default: SQLite and the in-process broker."""
    running = start_stack(database_url=f"sqlite:///{tmp_path}/privasync.db", var_dir=tmp_path,
                          mappings_dir=MAPPINGS, poll_seconds=0.3)
    yield running
    running.stop()


def issue_token(stack: Stack, name: str, *scopes: str) -> str:
    """A token straight into the stack's database, as `privasync tokens create` would."""
    from core import tokens

    c = stack.container
    with c.engine.begin() as conn:
        return tokens.create(conn, c.keyring, name, scopes, c.clock(), actor="cli")


@pytest.fixture
def door(tmp_path: Path) -> Iterator[Door]:
    """The app alone on SQLite, every webhook source configured (tests/api/door.py)."""
    yield from open_door(make_database("sqlite", tmp_path), tmp_path)


@pytest.fixture
def any_door(db_url: str, tmp_path: Path) -> Iterator[Door]:
    """The same, once on SQLite and once on PostgreSQL."""
    yield from open_door(db_url, tmp_path)
