from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from api.stack import Stack, start_stack

MAPPINGS = Path(__file__).parents[2] / "mappings"


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Stack]:
    """The one-machine default: SQLite and the in-process broker."""
    running = start_stack(database_url=f"sqlite:///{tmp_path}/privasync.db", var_dir=tmp_path,
                          mappings_dir=MAPPINGS, poll_seconds=0.3)
    yield running
    running.stop()
