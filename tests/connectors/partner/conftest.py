"""A stand-in for privasync's acknowledgement and callback endpoints: it keeps what it gets.

The real endpoints are the app's; here the tests read what the partner and the
processor emulators sent and run our verifiers and parsers on exactly those bytes.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from emulators.http import Emulator, Request, Response
from tests.emulators.conftest import serve


@dataclass(frozen=True)
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes


class Sink(Emulator):
    """Answers 200 to any POST and remembers it."""

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
        deadline = time.monotonic() + timeout
        while len(self.received(path)) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        got = self.received(path)
        assert len(got) >= count, f"{path}: {len(got)} of {count} deliveries arrived"
        return got


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    yield from serve(Sink())
