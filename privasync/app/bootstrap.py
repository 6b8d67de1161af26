"""The one composition root: settings in, engine, broker, connectors and loops out.

Nothing in the project connects, reads the environment or opens sockets at
import time; it all happens here, when a command asks for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dramatiq
import structlog
from sqlalchemy.engine import Engine

from connectors.plugin import Connection, Context, Plugin, Route
from connectors.ratelimits import Limits
from core import inbox, keys, ledger, outbox, schema
from core.applier import Applier, ApplierPolicy
from core.crypto import Keyring
from core.db import make_engine
from core.delivery import Backoff, Budget, Deliverer, Policy
from core.dsr import NOTIFIER
from core.errors import ConfigError, Throttled
from core.fulfil import Fulfiller
from core.identity import IdentityMap
from core.mappings import Mappings, load_mappings
from core.model import CanonicalEvent
from core.ports import (
    ConsentDestination,
    ErasureDestination,
    EventParser,
    ExportSource,
    RecordDestination,
    RefResolver,
)
from core.routes import Routes
from privasync.app import keyfiles, plugins
from privasync.app.database import open_engine
from privasync.app.environment import LayeredEnviron
from privasync.app.erasure_log import FileErasureLog, log_path
from privasync.app.intake import Intake
from privasync.app.notices import person_notifier
from privasync.app.pollers import requests_watch
from privasync.app.settings import Settings
from privasync.app.taxonomy import data_categories
from workers import actors
from workers.broker import REDIS_SCHEMES, Delivery, make_broker, prepare, queue_name
from workers.metrics import Metrics
from workers.retries import backoff
from workers.runtime import ApplierLoop, Foreground, Scheduler, WorkerProcess, process_name

log = structlog.get_logger("privasync")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Container:
    settings: Settings
    engine: Engine
    mappings: Mappings
    keyring: Keyring
    identity: IdentityMap
    applier: Applier
    destinations: dict[str, ConsentDestination]
    deliverer: Deliverer
    fulfiller: Fulfiller
    broker: dramatiq.Broker
    metrics: Metrics
    dispatch: Callable[[Iterable[str]], None]
    probe_engine: Engine
    limits: Limits = field(default_factory=Limits)
    clock: Callable[[], datetime] = utcnow
    # Every connection built, by the name jobs use (``hubspot``, ``partner:NAME``), and
    # the webhook routes their packages receive on.
    connections: dict[str, Connection] = field(default_factory=dict)
    webhooks: list[Route] = field(default_factory=list)
    applier_loop: ApplierLoop | None = None
    foreground: Foreground = field(default_factory=Foreground)
    _running: list[WorkerProcess | Scheduler | ApplierLoop] = field(default_factory=list)
    intake: Intake = field(init=False)

    def __post_init__(self) -> None:
        self.intake = Intake(self.engine, self.keyring, self.metrics, self.foreground,
                             self.wake)

    def connector(self, name: str) -> Any:
        """The connector built under ``name`` (``mailchimp``, ``partner:NAME``), or None."""
        found = self.connections.get(name)
        return found.connector if found is not None else None

    def wake(self) -> None:
        """Tell the applier, if it runs in this process, that there is work."""
        if self.applier_loop is not None:
            self.applier_loop.wake()

    def store_events(self, source: str, events: Sequence[CanonicalEvent],
                     received_at: datetime, key: str | None = None) -> inbox.Stored:
        """Canonical events (a consent form's, the admin's) into the inbox, like a delivery
        (``key``: a dedupe key that names it, holding nothing personal)."""
        return self.intake.store_events(source, events, received_at, key)

    def every_destination(self) -> list[str]:
        """Every name jobs can be queued for (each gets its dispatch guard)."""
        return sorted({*self.destinations, *self.deliverer.record_destinations,
                       *self.fulfiller.erasure, *self.fulfiller.exports, NOTIFIER})

    @property
    def embedded(self) -> bool:
        return not self.settings.broker_url

    def start_worker(self, threads: int | None = None) -> WorkerProcess:
        w = self.settings.worker
        outbox.register(self.engine, self.every_destination())
        prepare(self.broker, queue_name(self.settings.broker_url,
                                        self.settings.broker_namespace))
        process = WorkerProcess(self.broker, self.deliverer, threads=threads or w.threads,
                                heartbeat_seconds=w.heartbeat_seconds, prefetch=w.prefetch,
                                shutdown_seconds=w.shutdown_seconds)
        process.start()
        self._running.append(process)
        return process

    def start_applier(self) -> ApplierLoop:
        loop = ApplierLoop(self.applier, self.dispatch,
                           poll_seconds=self.settings.applier.poll_seconds,
                           foreground=self.foreground,
                           heartbeat_seconds=self.settings.worker.heartbeat_seconds).start()
        self.applier_loop = loop
        self._running.append(loop)
        return loop

    def start_scheduler(self, *, with_applier: bool = True) -> Scheduler:
        """The scheduler (dispatch ticks, the connectors' pollers, housekeeping) and, unless
        told otherwise, the applier: each acts only while it holds its lease."""
        outbox.register(self.engine, self.every_destination())
        pollers: list[tuple[str, float, Callable[[datetime], object]]] = [
            ("requests-watch", self.settings.requests_watch_seconds,
             requests_watch(self.engine, self.keyring, self.wake)),
            ("ledger-verify", self.settings.scheduler.ledger_verify_seconds,
             lambda now: ledger.verify_new(self.engine, now))]
        pollers += [(each.name, each.seconds, each.start(self.engine, self.keyring, self.wake))
                    for connection in self.connections.values()
                    for each in connection.scheduled]
        scheduler = Scheduler(self.engine, self.dispatch, self.clock,
                              dispatch_seconds=self.settings.worker.dispatch_seconds,
                              inbox_keep=timedelta(days=self.settings.inbox_keep_days),
                              jobs_keep=timedelta(days=self.settings.jobs_keep_days),
                              lease_seconds=self.settings.scheduler.lease_seconds,
                              heartbeat_seconds=self.settings.worker.heartbeat_seconds,
                              pollers=pollers)
        scheduler.start()
        self._running.append(scheduler)
        if with_applier and self.applier_loop is None:
            self.start_applier()
        return scheduler

    def stop_background(self) -> None:
        """Stop the worker, applier and scheduler this process runs (the app keeps serving)."""
        for part in reversed(self._running):
            part.stop()
        self._running.clear()
        self.applier_loop = None

    def close(self) -> None:
        self.stop_background()
        # An applier ticked here (a CLI command, a script) gives its lease back: a request
        # step taken next would otherwise wait out the lease for an applier that is gone.
        self.applier.lease.release()
        self.broker.close()
        self.limits.close()
        self.engine.dispose()
        self.probe_engine.dispose()


def secret_key(settings: Settings) -> bytes:
    """PRIVASYNC_SECRET_KEY, or on a single machine a key generated once under var/."""
    return keyfiles.secret_key(settings)


def open_database(settings: Settings, *,
                  migrate: bool | None = None) -> tuple[Engine, Keyring]:
    """The engine and the keyring, the schema migrated (``migrate``; by default
    PRIVASYNC_MIGRATE_ON_START; wrapping any unwrapped key with the KEK) or found current,
    and the key state checked: this process must hold the KEK the database names. Raises
    ConfigError saying what to do."""
    keyring = keyfiles.keyring(settings)
    engine = open_engine(settings.database_url, create=True)
    if settings.migrate_on_start if migrate is None else migrate:
        schema.upgrade(engine, keyring)
    elif not schema.is_current(engine):
        engine.dispose()
        raise ConfigError("the database schema is not up to date: run `privasync db upgrade` "
                          "(PRIVASYNC_MIGRATE_ON_START is false)")
    keys.ensure(engine, keyring)
    return engine, keyring


def _secret(value: Any) -> str:
    return value.get_secret_value() if value is not None else ""


def rate_limits(settings: Settings) -> Limits:
    """Where the vendors' rate limits live: PRIVASYNC_RATE_LIMIT_URL, else a Redis broker's
    URL (every process shares them), else this process's memory (one process)."""
    url = settings.rate_limit_url
    if not url and settings.broker_url.startswith(REDIS_SCHEMES):
        url = settings.broker_url
    if url and not url.startswith(REDIS_SCHEMES):
        raise ConfigError("PRIVASYNC_RATE_LIMIT_URL must be a redis:// URL")
    if settings.broker_url.startswith(("amqp://", "amqps://")) and not url:
        log.warning("ratelimits.per_process", reason="the broker is not Redis and "
                    "PRIVASYNC_RATE_LIMIT_URL is empty: each worker process counts alone")
    return Limits(url, namespace=settings.broker_namespace)


def build_connectors(settings: Settings, mappings: Mappings, environ: Mapping[str, str],
                     limits: Limits | None = None, *, keyring: Keyring) -> dict[str, Any]:
    """Each connector whose settings are present, each behind its rate limits in
    ``limits`` (default: this process's memory); partners from mappings. ``keyring`` keys
    what a connector stores about people (Mailchimp's member references).
    Raises ConfigError (a partner's secret missing, say)."""
    return {name: c.connector for _, built in build_connections(
        settings, mappings, environ, limits, keyring=keyring) for name, c in built.items()}


def build_connections(settings: Settings, mappings: Mappings, environ: Mapping[str, str],
                      limits: Limits | None = None, *, keyring: Keyring
                      ) -> list[tuple[Plugin[Any], dict[str, Connection]]]:
    """Each plug-in with the connections it built (perhaps none)."""
    return [(plugin, {name: make() for name, make in makes.items()})
            for plugin, makes in _builders(settings, mappings, environ, limits, keyring)]


def connector_builders(settings: Settings, mappings: Mappings, environ: Mapping[str, str],
                       limits: Limits | None = None, *,
                       keyring: Keyring) -> dict[str, Callable[[], Connection]]:
    """How to build each connection, one at a time (``privasync check`` tries each alone)."""
    return {name: make for _, makes in _builders(settings, mappings, environ, limits, keyring)
            for name, make in makes.items()}


def _builders(settings: Settings, mappings: Mappings, environ: Mapping[str, str],
              limits: Limits | None, keyring: Keyring
              ) -> list[tuple[Plugin[Any], Mapping[str, Callable[[], Connection]]]]:
    """What each registered plug-in would build from these settings, nothing built yet."""
    context = Context(mappings=mappings, environ=environ, limits=limits or Limits(),
                      keyring=keyring, public_url=settings.public_url)
    return [(plugin, plugin.connect(plugin.section(settings), context))
            for plugin in plugins.PLUGINS]


def build(settings: Settings | None = None, *, environ: Mapping[str, str] | None = None,
          migrate: bool | None = None, clock: Callable[[], datetime] = utcnow) -> Container:
    """Wire everything from settings. Raises ConfigError with a reason a person can act on.

    ``migrate`` (default: PRIVASYNC_MIGRATE_ON_START) brings the schema up to date first;
    without it a schema behind the code is refused, naming ``privasync db upgrade``."""
    settings = settings or Settings()
    # Partner variables from the environment, .env or the secrets directory, like settings.
    environ = LayeredEnviron() if environ is None else environ
    mappings = load_mappings(Path(settings.mappings_dir), data_categories())
    engine, keyring = open_database(settings, migrate=migrate)
    limits = rate_limits(settings)
    owned = build_connections(settings, mappings, environ, limits, keyring=keyring)
    connections = {name: c for _, built in owned for name, c in built.items()}
    connectors = {name: c.connector for name, c in connections.items()}
    destinations: dict[str, ConsentDestination] = {
        name: c.connector for name, c in connections.items()
        if c.connector.name == name and hasattr(c.connector, "apply_consent")
        and c.destination}
    erasure: dict[str, ErasureDestination] = {
        name: c for name, c in connectors.items() if hasattr(c, "erase")
        and (name in destinations or name.startswith("partner:"))}
    exports: dict[str, ExportSource] = {
        name: c for name, c in connectors.items() if name in destinations and hasattr(c, "export")}
    notifier = person_notifier(settings)
    routes = Routes.from_mappings(mappings, [n for n in destinations
                                             if not n.startswith("partner:")],
                                  erasure=erasure, exports=exports, notifier=notifier is not None,
                                  partners=[n.removeprefix("partner:") for n in destinations
                                            if n.startswith("partner:")],
                                  not_configured=not_configured(
                                      mappings, {*destinations, *erasure, *exports}),
                                  identity_wait=timedelta(days=settings.identity_wait_days))
    parsers: dict[str, EventParser] = {
        name: c.parser for name, c in connections.items() if c.parser is not None}
    resolvers: dict[str, RefResolver] = {
        name: c.resolver for name, c in connections.items()
        if c.resolver is not None and name in destinations}
    a = settings.applier
    erasure_log = FileErasureLog(log_path(settings))  # made by the applier's first tick
    applier = Applier(engine, keyring, mappings, routes, clock=clock,
                      holder=process_name("applier"), parsers=parsers, resolvers=resolvers,
                      policy=ApplierPolicy(lease=timedelta(seconds=a.lease_seconds),
                                           max_events=a.max_events,
                                           max_attempts=a.max_attempts),
                      erasure_log=erasure_log)
    w = settings.worker
    record_destinations: dict[str, RecordDestination] = {
        name: c for name, c in connectors.items()
        if name in destinations and hasattr(c, "push_fields")}
    budgets, backoffs = retry_budgets(settings, {*destinations, *erasure, *exports, NOTIFIER})
    policy = Policy(lease=timedelta(seconds=w.lease_seconds),
                    max_hold=timedelta(seconds=w.max_hold_seconds), max_attempts=w.max_attempts,
                    max_age=timedelta(seconds=w.max_age_seconds), max_batch=w.max_batch,
                    budgets=budgets)
    deliverer = Deliverer(engine, destinations, backoff(w.min_backoff_seconds,
                                                        w.max_backoff_seconds),
                          clock, holder=process_name("worker"), keyring=keyring, policy=policy,
                          mappings=mappings, record_destinations=record_destinations,
                          backoffs=backoffs)
    fulfiller = Fulfiller(deliverer, keyring, erasure=erasure, exports=exports,
                          notifier=notifier, export_keep=timedelta(days=settings.export_keep_days),
                          ack_within={f"partner:{n}": p.ack_window
                                      for n, p in mappings.partners.items()})
    broker = make_broker(settings.broker_url, namespace=settings.broker_namespace,
                         delivery=delivery(settings))
    metrics = Metrics()
    metrics.watch_database(engine, clock)
    metrics.watch_allocations(limits)
    dispatcher = actors.Dispatcher(engine, clock, metrics, stale_after=timedelta(
        seconds=max(5.0, 3 * w.dispatch_seconds)))
    foreground = Foreground()
    actors.register(broker, deliverer, metrics, dispatcher,
                    queue=queue_name(settings.broker_url, settings.broker_namespace),
                    time_limit_ms=delivery(settings).time_limit_ms, give_way=foreground.give_way,
                    gate=rate_gate(connections))
    return Container(settings=settings, engine=engine, mappings=mappings, keyring=keyring,
                     identity=IdentityMap(keyring), applier=applier, destinations=destinations,
                     deliverer=deliverer, fulfiller=fulfiller, broker=broker, metrics=metrics,
                     dispatch=dispatcher, limits=limits,
                     probe_engine=make_engine(settings.database_url, pool_size=2),
                     foreground=foreground, clock=clock, connections=connections,
                     webhooks=[route for plugin, built in owned
                               for route in plugin.routes(plugin.section(settings), built)])


def not_configured(mappings: Mappings, configured: Iterable[str]) -> list[str]:
    """The systems privasync knows (its vendor connectors, the systems and partners in the
    mappings) that no connection here can send to: a request never reaches them."""
    known = {*(p.name for p in plugins.systems()), *mappings.systems,
             *(f"partner:{n}" for n in mappings.partners)}
    return sorted(known - set(configured))


def retry_budgets(settings: Settings, names: Iterable[str]
                  ) -> tuple[dict[str, Budget], dict[str, Backoff]]:
    """Each destination's own retry budget and backoff from ``PRIVASYNC_RETRY__<NAME>__*``
    (``partner:contact_centre`` is ``PARTNER_CONTACT_CENTRE``), the rest from
    ``PRIVASYNC_WORKER__*``. Raises ConfigError naming a destination nobody configured."""
    w = settings.worker
    known = {name.replace(":", "_").lower(): name for name in names}
    budgets: dict[str, Budget] = {}
    backoffs: dict[str, Backoff] = {}
    for key, own in sorted(settings.retry.items()):
        name = known.get(key.lower())
        if name is None:
            raise ConfigError(f"PRIVASYNC_RETRY__{key.upper()}__*: no destination is called "
                              f"{key!r}; configured: {', '.join(sorted(known)) or 'none'}")
        budgets[name] = Budget(
            own.max_attempts or w.max_attempts,
            timedelta(seconds=own.max_age_seconds or w.max_age_seconds))
        if own.min_backoff_seconds or own.max_backoff_seconds:
            backoffs[name] = backoff(own.min_backoff_seconds or w.min_backoff_seconds,
                                     own.max_backoff_seconds or w.max_backoff_seconds)
    return budgets, backoffs


def rate_gate(connections: Mapping[str, Connection]) -> Callable[[str], float]:
    """Seconds a destination's rate limit wants before its next call (0: go), as its
    connection says (HubSpot's window, Salesforce's daily reserve; Mailchimp's connections
    free within a call)."""
    waits = {name: c.wait for name, c in connections.items() if c.wait is not None}

    def gate(destination: str) -> float:
        wait = waits.get(destination)
        try:
            return wait() if wait is not None else 0.0
        except Throttled as exc:  # the limiter itself is unreachable: try again shortly
            return exc.retry_after or 1.0

    return gate


def delivery(settings: Settings) -> Delivery:
    """The broker settings that decide delivery. An actor runs at most as long as a claim
    may be held: past that its batch belongs to whoever claims it next."""
    return Delivery(time_limit_ms=round(settings.worker.max_hold_seconds * 1000),
                    heartbeat_timeout_ms=round(settings.broker_heartbeat_timeout_seconds * 1000),
                    maintenance_chance=settings.broker_maintenance_chance,
                    dead_message_ttl_ms=round(settings.broker_dead_message_ttl_seconds * 1000))
