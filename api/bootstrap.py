"""The one composition root: settings in, engine, broker, connectors and loops out.

Nothing in the project connects, reads the environment or opens sockets at
import time; it all happens here, when a command asks for it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dramatiq
import structlog
from sqlalchemy.engine import Engine

from api.settings import Settings
from api.taxonomy import data_categories
from connectors.hubspot import HubSpotConnector
from connectors.mailchimp import MailchimpConnector
from connectors.partner import PartnerConnector
from connectors.salesforce import SalesforceConnector
from core import outbox, schema
from core.crypto import Keyring
from core.db import make_engine
from core.delivery import Deliverer
from core.errors import ConfigError
from core.identity import IdentityMap
from core.intake import Intake, Routes
from core.mappings import Mappings, load_mappings
from core.ports import ConsentDestination, RecordDestination
from workers import actors
from workers.broker import make_broker
from workers.metrics import Metrics
from workers.runtime import Scheduler, WorkerProcess

log = structlog.get_logger("privasync")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Container:
    settings: Settings
    engine: Engine
    mappings: Mappings
    identity: IdentityMap
    intake: Intake
    destinations: dict[str, ConsentDestination]
    deliverer: Deliverer
    broker: dramatiq.Broker
    metrics: Metrics
    send: Callable[[int], Any]
    clock: Callable[[], datetime] = utcnow
    hubspot: HubSpotConnector | None = None
    mailchimp: MailchimpConnector | None = None
    salesforce: SalesforceConnector | None = None
    _running: list[WorkerProcess | Scheduler] = field(default_factory=list)

    def enqueue(self, job_ids: Sequence[int]) -> None:
        """Hand committed job ids to the broker; a refusal is counted, not fatal:
        the jobs are in the database and the reconciler resends them."""
        for job_id in job_ids:
            try:
                self.send(job_id)
            except Exception as exc:  # noqa: BLE001 - the outbox is the safety net
                self.metrics.enqueue_failures.inc()
                log.warning("broker.enqueue_failed", job=job_id, error=type(exc).__name__)

    @property
    def embedded(self) -> bool:
        return not self.settings.broker_url

    def start_worker(self, threads: int | None = None) -> WorkerProcess:
        w = self.settings.worker
        process = WorkerProcess(self.broker, self.engine, self.clock,
                                threads=threads or w.threads,
                                heartbeat_seconds=w.heartbeat_seconds)
        process.start()
        self._running.append(process)
        return process

    def start_scheduler(self) -> Scheduler:
        from api.ingress import salesforce_poller

        pollers = []
        if self.salesforce is not None:
            pollers.append(("salesforce-poller", self.settings.salesforce.poll_interval_seconds,
                            salesforce_poller(self)))
        scheduler = Scheduler(self.engine, self.enqueue, self.clock,
                              reconcile_seconds=self.settings.worker.reconcile_seconds,
                              pollers=pollers)
        scheduler.start()
        self._running.append(scheduler)
        return scheduler

    def stop_background(self) -> None:
        """Stop the worker and scheduler this process runs (the app keeps serving)."""
        for part in reversed(self._running):
            part.stop()
        self._running.clear()

    def close(self) -> None:
        self.stop_background()
        self.broker.close()
        self.engine.dispose()


def secret_key(settings: Settings) -> bytes:
    """PRIVASYNC_SECRET_KEY, or on a single machine a key generated once under var/."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    path = settings.var_dir / "secret.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip().encode()


def _secret(value: Any) -> str:
    return value.get_secret_value() if value is not None else ""


def build_connectors(settings: Settings, mappings: Mappings,
                     environ: Mapping[str, str]) -> dict[str, Any]:
    """Each vendor connector whose settings are present; partners from mappings."""
    found: dict[str, Any] = {}
    hs = settings.hubspot
    if hs.access_token is not None or hs.client_secret is not None:
        found["hubspot"] = HubSpotConnector(
            base_url=hs.base_url, access_token=_secret(hs.access_token),
            client_secret=_secret(hs.client_secret) or None,
            mapping=mappings.system("hubspot"), timeout=hs.timeout_seconds)
    sf = settings.salesforce
    if sf.instance_url:
        found["salesforce"] = SalesforceConnector(
            instance_url=sf.instance_url, mapping=mappings.system("salesforce"),
            session_id=_secret(sf.session_id) or None, username=sf.username,
            password=_secret(sf.password) or None,
            security_token=_secret(sf.security_token) or None, domain=sf.domain,
            version=sf.api_version, timeout=sf.timeout_seconds)
    mc = settings.mailchimp
    if mc.api_key is not None and mc.list_id:
        found["mailchimp"] = MailchimpConnector(
            base_url=mc.base_url, api_key=_secret(mc.api_key), list_id=mc.list_id,
            mapping=mappings.system("mailchimp"), timeout=mc.timeout_seconds)
    for name, partner in mappings.partners.items():
        secret = environ.get(partner.secret_setting, "")
        if not secret:
            raise ConfigError(f"partner {name}: environment variable {partner.secret_setting} "
                              "(its signing secret) is not set")
        url = environ.get(partner.url_setting or "", "") or partner.url
        found[f"partner:{name}"] = PartnerConnector(name=name, partner=partner, url=url,
                                                    secret=secret)
    return found


def build(settings: Settings | None = None, *, environ: Mapping[str, str] | None = None,
          migrate: bool = True, clock: Callable[[], datetime] = utcnow) -> Container:
    """Wire everything from settings. Raises ConfigError with a reason a person can act on."""
    settings = settings or Settings()
    environ = os.environ if environ is None else environ
    mappings = load_mappings(Path(settings.mappings_dir), data_categories())
    if settings.database_url.startswith("sqlite:///"):
        Path(settings.database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True,
                                                                            exist_ok=True)
    engine = make_engine(settings.database_url)
    if migrate:
        schema.upgrade(engine)
    identity = IdentityMap(Keyring(secret_key(settings)))
    connectors = build_connectors(settings, mappings, environ)
    destinations: dict[str, ConsentDestination] = {
        name: c for name, c in connectors.items() if c.name == name and _can_deliver(c, settings)}
    intake = Intake(engine, identity, mappings, Routes.from_mappings(
        mappings, [n for n in destinations if not n.startswith("partner:")]))
    w = settings.worker
    backoff = outbox.Backoff(w.min_backoff_seconds, w.max_backoff_seconds, w.max_attempts)
    record_destinations: dict[str, RecordDestination] = {
        name: c for name, c in connectors.items()
        if name in destinations and hasattr(c, "push_fields")}
    deliverer = Deliverer(engine, identity, destinations, backoff, clock, mappings=mappings,
                          record_destinations=record_destinations)
    broker = make_broker(settings.broker_url, namespace=settings.broker_namespace)
    metrics = Metrics()
    metrics.watch_backlog(engine, clock)
    send = actors.register(broker, deliverer, metrics, max_attempts=w.max_attempts)
    return Container(settings=settings, engine=engine, mappings=mappings, identity=identity,
                     intake=intake, destinations=destinations, deliverer=deliverer,
                     broker=broker, metrics=metrics, send=send, clock=clock,
                     hubspot=connectors.get("hubspot"), mailchimp=connectors.get("mailchimp"),
                     salesforce=connectors.get("salesforce"))


def _can_deliver(connector: Any, settings: Settings) -> bool:
    """HubSpot configured only to receive webhooks (no token) is not a destination."""
    if connector.name == "hubspot":
        return settings.hubspot.access_token is not None
    return True
