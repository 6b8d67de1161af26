"""The narrow views the use cases and the admin handlers are given, instead of the whole
composition root: each names only what its group uses (the Container satisfies them all)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.engine import Engine

from core import inbox
from core.applier import Applier
from core.crypto import Keyring
from core.identity import IdentityMap
from core.mappings import Mappings
from core.model import CanonicalEvent
from workers.runtime import ApplierLoop, Foreground


class Records(Protocol):
    """The database and the keys to what it seals (tokens, subjects, the audit trail)."""

    @property
    def engine(self) -> Engine: ...
    @property
    def keyring(self) -> Keyring: ...


class Jobs(Protocol):
    """The jobs and a dispatch of those put back in line."""

    @property
    def engine(self) -> Engine: ...
    @property
    def dispatch(self) -> Callable[[Iterable[str]], None]: ...


class Mapped(Protocol):
    @property
    def mappings(self) -> Mappings: ...


class Desk(Records, Mapped, Protocol):
    """Subject requests: taking them in, acting on them, answering access requests."""

    @property
    def identity(self) -> IdentityMap: ...
    @property
    def applier(self) -> Applier: ...
    @property
    def applier_loop(self) -> ApplierLoop | None: ...
    @property
    def clock(self) -> Callable[[], datetime]: ...
    def store_events(self, source: str, events: Sequence[CanonicalEvent],
                     received_at: datetime, key: str | None = None) -> inbox.Stored: ...


class Evidence(Desk, Protocol):
    """A request's evidence: its partners' kept acknowledgements are checked again."""

    def connector(self, name: str) -> Any: ...
    def every_destination(self) -> list[str]: ...


class Gate(Records, Protocol):
    """Who may call the admin API: tokens checked at the clock's reading, while serving."""

    @property
    def clock(self) -> Callable[[], datetime]: ...
    @property
    def foreground(self) -> Foreground: ...
