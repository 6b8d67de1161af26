"""What the emulator tests share: running an emulator for as long as a fixture lasts,
and a sink standing in for privasync's endpoints that emulators call back.

The connector tests' fixtures use it too:
`from tests.emulators.conftest import serve`."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from privasync.emulators.http import Emulator, Request, Response
from tests.timing import scaled

E = TypeVar("E", bound=Emulator)


def serve(emulator: E) -> Iterator[E]:
    """Start `emulator`, hand it over, stop it when the fixture is torn down.
    A fixture uses it as `yield from serve(SomeEmulator(...))`."""
    emulator.start()
    yield emulator
    emulator.stop()


@contextmanager
def started(emulator: E) -> Iterator[E]:
    """An emulator for one test's ``with`` block, stopped whatever happens in it."""
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


@dataclass(frozen=True)
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes


class Sink(Emulator):
    """Stands in for privasync's acknowledgement and callback endpoints: answers 200 to
    any POST and keeps it, so tests run our verifiers and parsers on the exact bytes."""

    name = "sink"

    def __init__(self) -> None:
        super().__init__()
        self._got: list[Delivery] = []
        self.route("POST", r"/.*", self._keep)

    def _keep(self, request: Request, _match: re.Match[str]) -> Response:
        with self.lock:
            self._got.append(Delivery(request.path, dict(request.headers), request.body))
        return Response(200, {"ok": True})

    def received(self, path: str) -> list[Delivery]:
        with self.lock:
            return [d for d in self._got if d.path == path]

    def wait_for(self, path: str, count: int = 1, timeout: float = 5.0) -> list[Delivery]:
        deadline = time.monotonic() + scaled(timeout)
        while len(self.received(path)) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        got = self.received(path)
        assert len(got) >= count, f"{path}: {len(got)} of {count} deliveries arrived"
        return got
