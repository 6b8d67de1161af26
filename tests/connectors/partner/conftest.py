"""The partner connector tests' stand-in for privasync's ack and callback endpoints."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.crypto import Keyring
from tests.emulators.conftest import Sink, serve

# What remembers the addresses a partner was sent (keyed references), as the app's keyring.
KEYS = Keyring(b"test-secret-key-0123456789abcdef", [b"test-key-encryption-key-01234567"])


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    yield from serve(Sink())
