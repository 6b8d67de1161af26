"""The intake: what a webhook receiver, a consent form or the admin may do to get
something into the inbox, and nothing more (``connectors.plugin.Intake``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine

from core import codec, inbox
from core.crypto import Keyring
from core.model import CanonicalEvent
from workers.metrics import Metrics
from workers.runtime import Foreground


@dataclass(frozen=True)
class Intake:
    engine: Engine
    keyring: Keyring
    metrics: Metrics
    foreground: Foreground
    wake: Callable[[], None]  # the applier, if it runs in this process

    def store(self, source: str, body: bytes, received_at: datetime, events: int,
              key: str | None = None, *, again: str = "duplicate") -> inbox.Stored:
        """Commit a verified, validated delivery to the inbox (the 2xx may follow), and
        wake the applier if it runs in this process. ``key`` is its dedupe key (default:
        a keyed hash of the bytes); the same key again stores nothing, and is counted as
        ``again`` (``duplicate``, or ``replayed`` where a sender never repeats itself)."""
        with self.engine.begin() as conn:
            stored = inbox.store(conn, source=source, sealed=self.keyring.seal(body),
                                 key=key or self.keyring.delivery_key(body),
                                 received_at=received_at, events=events)
        self.metrics.deliveries.labels(source, again if stored.duplicate else "stored").inc()
        self.wake()
        return stored

    def store_events(self, source: str, events: Sequence[CanonicalEvent],
                     received_at: datetime, key: str | None = None) -> inbox.Stored:
        """Canonical events (a consent form's, the admin's) into the inbox, like a delivery
        (``key``: a dedupe key that names it, holding nothing personal)."""
        return self.store(source, codec.encode(events), received_at, len(events), key)

    def delivery_key(self, data: bytes) -> str:
        return self.keyring.delivery_key(data)

    @contextmanager
    def serving(self) -> Iterator[None]:
        """Workers in this process give way while a request is served."""
        with self.foreground.serving():
            yield

    def rejected(self, source: str, reason: str) -> None:
        self.metrics.rejected.labels(source, reason).inc()
