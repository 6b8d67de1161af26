"""What the emulator tests share: running an emulator for as long as a fixture lasts.

The connector tests' fixtures use it too:
`from tests.emulators.conftest import serve`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

from emulators.http import Emulator

E = TypeVar("E", bound=Emulator)


def serve(emulator: E) -> Iterator[E]:
    """Start `emulator`, hand it over, stop it when the fixture is torn down.
    A fixture uses it as `yield from serve(SomeEmulator(...))`."""
    emulator.start()
    yield emulator
    emulator.stop()
