"""The fault suite's deployment: a fresh one per case (processes, Redis, database)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.harness import Deployment, deployment


@pytest.fixture
def dep(tmp_path: Path) -> Iterator[Deployment]:
    yield from deployment(tmp_path)


@pytest.fixture
def dep_two_schedulers(tmp_path: Path) -> Iterator[Deployment]:
    yield from deployment(tmp_path, schedulers=2)


@pytest.fixture
def dep_rabbitmq(tmp_path: Path) -> Iterator[Deployment]:
    yield from deployment(tmp_path, broker="rabbitmq")
