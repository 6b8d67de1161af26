"""What a connector package declares so the app can wire it without knowing the vendor: its
settings model, how it builds its connections, and the webhook routes it receives on.

Each vendor package exports one ``Plugin`` (``connectors/<vendor>/plugin.py``); the app
keeps one registry of them (``privasync/app/plugins.py``). Nothing here knows the web
framework, the workers or the app: a route is a path, its methods and a plain function the
web face calls with an ``Intake`` and the ``Delivery`` it read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar, cast

from pydantic import SecretStr
from sqlalchemy.engine import Engine

from connectors.ratelimits import Limits
from core import inbox
from core.crypto import Keyring
from core.mappings import Mappings
from core.ports import EventParser, RefResolver

S = TypeVar("S")


class Intake(Protocol):
    """What a webhook receiver may do besides asking its own connector: commit a verified
    delivery to the inbox, key one, count a refusal, and hold the workers back while
    it serves (``serving``)."""

    def store(self, source: str, body: bytes, received_at: datetime, events: int,
              key: str | None = None, *, again: str = "duplicate") -> inbox.Stored: ...
    def delivery_key(self, data: bytes) -> str: ...
    def serving(self) -> AbstractContextManager[None]: ...
    def rejected(self, source: str, reason: str) -> None: ...


@dataclass(frozen=True)
class Delivery:
    """One webhook request as read: the path's parameters, the URL as its sender addressed
    it (under PRIVASYNC_PUBLIC_URL when set), its headers, its body, when it came."""

    method: str
    url: str
    params: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    now: datetime


Receive = Callable[[Intake, Delivery], inbox.Stored]


@dataclass(frozen=True)
class Route:
    """A webhook path the connector receives on. The web face admits the request
    (``admit``, given the path's parameters, raises to refuse before any of the body is
    read), answers ``probe`` methods "ok" without a body, requires ``media_type``, reads at
    most ``max_body_bytes`` (and never more than the app's own limit), then calls
    ``receive`` in a thread. ``source`` labels what it refuses in the metrics."""

    path: str
    methods: tuple[str, ...]
    source: str
    receive: Receive
    media_type: str = "application/json"
    max_body_bytes: int | None = None
    admit: Callable[[Mapping[str, str]], None] | None = None
    probe: tuple[str, ...] = ()


Poll = Callable[[datetime], object]


@dataclass(frozen=True)
class Scheduled:
    """Work the scheduler runs every ``seconds`` while it holds its lease; ``start`` is given
    the engine, the keyring and a wake-up for an applier in the same process."""

    name: str
    seconds: float
    start: Callable[[Engine, Keyring, Callable[[], None]], Poll]


@dataclass(frozen=True)
class Connection:
    """One connector built, and what the app wires around it. Jobs go to it only if it is
    a ``destination`` (and then for what its methods can do: consent, erasure, export,
    fields); the applier parses what its intake stored with ``parser``."""

    connector: Any
    destination: bool = True
    parser: EventParser | None = None
    resolver: RefResolver | None = None
    wait: Callable[[], float] | None = None  # seconds its rate limit wants before a call
    scheduled: Sequence[Scheduled] = ()


@dataclass(frozen=True)
class Context:
    """What building a connection may use besides its own settings."""

    mappings: Mappings
    environ: Mapping[str, str]  # the variables partners.yaml names
    limits: Limits
    keyring: Keyring
    public_url: str


@dataclass(frozen=True)
class CheckText:
    """What ``privasync check`` says about a vendor: where it worked (``ok``, given its
    settings and how to mask a URL), what to set when its credentials or address fail, and
    the fix for each ``error_class`` its check raises."""

    ok: Callable[[Any, Callable[[str], str]], str] = lambda section, mask: "reachable"
    credentials: str = "its credentials"
    address: str = "its address"
    fixes: Mapping[str, str] = field(default_factory=dict)
    idle: str = "nothing to try"  # enabled, yet not a destination


def no_routes(section: Any, built: Mapping[str, Connection]) -> Sequence[Route]:
    return ()


@dataclass(frozen=True)
class Plugin(Generic[S]):
    """One connector package, as the app sees it.

    ``settings`` is composed into the app's settings under ``name``
    (``PRIVASYNC_<NAME>__<FIELD>``); None for a package configured elsewhere (partners:
    ``partners.yaml``), whose functions are then given None. ``connect`` says what it would
    build (one entry per connection, named as jobs name it; nothing built yet: ``check``
    tries each alone). ``routes`` are given what was built (perhaps nothing: the route
    still answers, refusing). A vendor system has ``enabled_by`` (what to set) and
    ``enabled`` (and ``delivers`` unless it only receives); ``smoke`` builds its own
    client for ``privasync smoke``."""

    name: str
    settings: type[S] | None
    connect: Callable[[S, Context], Mapping[str, Callable[[], Connection]]]
    routes: Callable[[S, Mapping[str, Connection]], Sequence[Route]] = no_routes
    enabled: Callable[[S], bool] = lambda section: False
    enabled_by: str = ""
    delivers: Callable[[S], bool] = lambda section: True
    check: CheckText = CheckText()
    smoke: Callable[[S, Mappings], Any] | None = None

    @property
    def system(self) -> bool:
        """A vendor system of its own (configured by settings), not a family of partners."""
        return bool(self.enabled_by)

    def section(self, settings: object) -> S:
        """This package's part of the app's settings (None if it has none)."""
        return cast(S, getattr(settings, self.name) if self.settings is not None else None)


def secret(value: SecretStr | None) -> str:
    """A secret setting's value, "" when unset."""
    return value.get_secret_value() if value is not None else ""
