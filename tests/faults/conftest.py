"""The fault suite's deployment: a fresh one per case (processes, Redis, database); the
RabbitMQ cases of a module share a node (each on queues of its own), which takes seconds
to boot."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.harness import Deployment, RabbitServer, deployment


@pytest.fixture
def dep(tmp_path: Path) -> Iterator[Deployment]:
    yield from deployment(tmp_path)


@pytest.fixture
def dep_two_schedulers(tmp_path: Path) -> Iterator[Deployment]:
    yield from deployment(tmp_path, schedulers=2)


@pytest.fixture(scope="module")
def rabbitmq_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitServer]:
    node = RabbitServer(tmp_path_factory.mktemp("rabbitmq")).start()
    yield node
    node.kill()


@pytest.fixture
def dep_rabbitmq(tmp_path: Path, rabbitmq_node: RabbitServer) -> Iterator[Deployment]:
    yield from deployment(tmp_path, broker=rabbitmq_node)
