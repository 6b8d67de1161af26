"""The partner connector tests' stand-in for privasync's ack and callback endpoints."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.emulators.conftest import Sink, serve


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    yield from serve(Sink())
