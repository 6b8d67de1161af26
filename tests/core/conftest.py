from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from core import codec, inbox
from core.applier import Applier, TickReport
from core.crypto import Keyring
from core.db import jobs
from core.identity import IdentityMap
from core.mappings import Mappings, load_mappings
from core.model import CanonicalEvent
from core.routes import Routes
from privasync.app.taxonomy import data_categories

MAPPINGS = Path(__file__).parents[2] / "mappings"
SECRET = b"test-secret-key-0123456789abcdef"
KEK = b"test-key-encryption-key-0123456789"
SYSTEMS = ("hubspot", "salesforce", "mailchimp")


@dataclass
class Applied:
    """What applying one delivery did: outcomes by name, and jobs it added."""

    outcomes: Counter[str]
    jobs: int
    report: TickReport


@dataclass
class Core:
    engine: Engine
    applier: Applier
    identity: IdentityMap
    keyring: Keyring
    mappings: Mappings

    def store(self, events: Sequence[CanonicalEvent], received_at: datetime,
              source: str = "test") -> inbox.Stored:
        body = codec.encode(events)
        with self.engine.begin() as conn:
            return inbox.store(conn, source=source, sealed=self.keyring.seal(body),
                               key=self.keyring.delivery_key(body), received_at=received_at,
                               events=len(events))

    def apply(self) -> TickReport:
        """Tick until the inbox is empty; the reports summed."""
        total = TickReport()
        while True:
            report = self.applier.tick()
            assert report is not None, "the test applier must lead"
            total.rows += report.rows
            total.events += report.events
            total.outcomes.update(report.outcomes)
            total.destinations |= report.destinations
            total.failed_rows += report.failed_rows
            total.deferred += report.deferred
            if not report.rows and not report.deferred:
                return total

    def accept(self, events: Sequence[CanonicalEvent], received_at: datetime) -> Applied:
        before = job_count(self.engine)
        self.store(events, received_at)
        report = self.apply()
        return Applied(Counter({o: n for (_, o), n in report.outcomes.items()}),
                       job_count(self.engine) - before, report)


def job_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(jobs)).scalar_one())


@cache
def _mappings() -> Mappings:
    """The mappings, read once a session (frozen: no test can change them for another)."""
    return load_mappings(MAPPINGS, data_categories())


def make_core(engine: Engine, *, holder: str = "applier:test", clock: object = None,
              erasure: tuple[str, ...] = (), exports: tuple[str, ...] = (),
              notifier: bool = False, **requests: Any) -> Core:
    """``requests``: what requests learn of the installation (Routes' ``not_configured``,
    ``identity_wait``)."""
    keyring = Keyring(SECRET, [KEK])
    mappings = _mappings()
    routes = Routes.from_mappings(mappings, SYSTEMS, erasure=erasure, exports=exports,
                                  notifier=notifier, **requests)
    applier = Applier(engine, keyring, mappings, routes,
                      clock=clock or (lambda: datetime.now(UTC)), holder=holder)  # type: ignore[arg-type]
    return Core(engine, applier, IdentityMap(keyring), keyring, mappings)


@pytest.fixture
def core(engine) -> Core:  # type: ignore[no-untyped-def]
    return make_core(engine)


def at(minute: int) -> datetime:
    return datetime(2026, 11, 1, 12, minute, tzinfo=UTC)
