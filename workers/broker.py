"""The broker is transport, never the truth (DESIGN.md principle 1).

An empty URL gives the embedded in-process broker (one machine, one command);
``redis://`` gives Redis; ``amqp://`` RabbitMQ. Built from settings in the
composition root: nothing connects at import time.

Every Dramatiq setting that decides delivery is chosen here, on purpose
(README, "Delivery guarantees and Dramatiq settings"): a message only says
"destination D may have due jobs", the database holds the jobs, their attempts
and their leases, and the scheduler's dispatch tick re-sends what a lost or
failed message should have started. So Dramatiq never retries (``Retries``
with ``max_retries=0``: a re-enqueue that fails would be acked and lost, and
it would double the database's own backoff), never drops a message for its age
(no ``AgeLimit``), and bounds an actor by the claim's longest hold
(``TimeLimit``).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

import dramatiq
import pika
import structlog
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import xq_name
from dramatiq.errors import ConnectionClosed
from dramatiq.middleware import Middleware, Retries, ShutdownNotifications, TimeLimit

from core.errors import ConfigError

QUEUE = "privasync"
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
# A RabbitMQ queue name made from the namespace: Dramatiq derives ``<q>.DQ`` and
# ``<q>.XQ`` from it, and RabbitMQ reserves names starting with ``amq.``.
_RABBIT_QUEUE = re.compile(r"(?!amq\.)[A-Za-z_][A-Za-z0-9_-]{0,200}")
PRECONDITION_FAILED = 406

log = structlog.get_logger("privasync.broker")


@dataclass(frozen=True)
class Delivery:
    """The broker-side settings that decide delivery, in Dramatiq's units (ms)."""

    time_limit_ms: int
    heartbeat_timeout_ms: int = 15_000
    maintenance_chance: float = 0.01
    dead_message_ttl_ms: int = 86_400_000


class DurableRabbitmqBroker(RabbitmqBroker):
    """Dramatiq's RabbitmqBroker with the dead-letter queue's TTL from settings instead of
    the ``dramatiq_dead_message_ttl`` environment variable read at import."""

    def __init__(self, *, dead_message_ttl: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dead_message_ttl = dead_message_ttl

    def _declare_xq_queue(self, queue_name: str) -> Any:
        return self.channel.queue_declare(
            queue=xq_name(queue_name), durable=True,
            arguments={"x-message-ttl": self.dead_message_ttl})


def middleware(delivery: Delivery) -> list[Middleware]:
    """The middleware every process's broker carries (none of Dramatiq's defaults
    implicitly): no AgeLimit, Callbacks or Pipelines, which privasync does not use."""
    return [TimeLimit(time_limit=delivery.time_limit_ms), ShutdownNotifications(),
            Retries(max_retries=0)]


def queue_name(url: str, namespace: str) -> str:
    """The queue of dispatch messages. Redis keys carry the namespace already; on RabbitMQ
    the queue itself is named after it, so deployments can share one vhost."""
    if not url.startswith(("amqp://", "amqps://")):
        return QUEUE
    if not _RABBIT_QUEUE.fullmatch(namespace):
        raise ConfigError("PRIVASYNC_BROKER_NAMESPACE names the RabbitMQ queue: use letters, "
                          "digits, '_' and '-', starting with a letter (no '.', not 'amq.')")
    return namespace


def make_broker(url: str, *, namespace: str = "privasync",
                delivery: Delivery | None = None) -> dramatiq.Broker:
    """Raise ConfigError for a URL naming no broker we know."""
    delivery = delivery or Delivery(time_limit_ms=300_000)
    if not url:
        return StubBroker(middleware=middleware(delivery), fail_fast_default=False)
    if url.startswith(REDIS_SCHEMES):
        broker: dramatiq.Broker = RedisBroker(  # type: ignore[no-untyped-call]
            url=url, namespace=namespace, middleware=middleware(delivery),
            heartbeat_timeout=delivery.heartbeat_timeout_ms,
            maintenance_chance=round(delivery.maintenance_chance * 1_000_000),
            dead_message_ttl=delivery.dead_message_ttl_ms)
        return broker
    if url.startswith(("amqp://", "amqps://")):
        queue_name(url, namespace)
        try:
            # Publisher confirms: an enqueue returns only once RabbitMQ has the message (and
            # a deleted queue is declared again); without them a send can vanish silently.
            return DurableRabbitmqBroker(url=url, confirm_delivery=True,
                                         middleware=middleware(delivery),
                                         dead_message_ttl=delivery.dead_message_ttl_ms)
        except (ValueError, TypeError) as exc:  # pika's answers to a malformed URL
            raise ConfigError("PRIVASYNC_BROKER_URL is not a valid amqp:// URL") from exc
    raise ConfigError("PRIVASYNC_BROKER_URL must be empty (embedded), redis://... or amqp://...")


def prepare(broker: dramatiq.Broker, queue: str) -> None:
    """Declare the queues a worker consumes before it starts. RabbitMQ refuses a queue that
    exists with other arguments (the dead-message TTL changed): a ConfigError that says so,
    instead of a consumer failing in a loop. An unreachable broker is left to the
    consumer, which reconnects."""
    if not isinstance(broker, RabbitmqBroker):
        return
    try:
        broker.declare_queue(queue, ensure=True)
    except ConnectionClosed as exc:
        cause = exc.message
        if getattr(cause, "reply_code", None) == PRECONDITION_FAILED:
            raise ConfigError(
                f"RabbitMQ refused the queue {xq_name(queue)} as declared: it exists with "
                "another dead-message TTL. It holds only failed dispatch messages (the jobs "
                "are in the database): delete it, or set PRIVASYNC_BROKER_DEAD_MESSAGE_TTL_"
                "SECONDS back") from None
        log.warning("broker.unreachable_at_start", error=type(cause).__name__)


def ping(broker: dramatiq.Broker) -> None:
    """Raise if the broker cannot be reached. RabbitMQ: a fresh connection, opened and
    closed (the broker's own are per thread, and a readiness probe must not keep one in
    every thread of the server's pool)."""
    if isinstance(broker, RabbitmqBroker):
        given = broker.parameters
        each = [copy.copy(p) for p in (given if isinstance(given, list) else [given])]
        for parameters in each:
            parameters.socket_timeout = parameters.stack_timeout = 3.0
            parameters.connection_attempts = 1
        connection = pika.BlockingConnection(each)
        connection.close()
        return
    client = getattr(broker, "client", None)
    if client is not None:
        client.ping()
