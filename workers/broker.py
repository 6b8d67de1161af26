"""The broker is transport, never the truth (DESIGN.md principle 1).

An empty URL gives the embedded in-process broker (one machine, one command);
``redis://`` gives Redis; ``amqp://`` RabbitMQ when pika is installed. Built
from settings in the composition root: nothing connects at import time.
"""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.stub import StubBroker

from core.errors import ConfigError

QUEUE = "privasync"
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def make_broker(url: str, *, namespace: str = "privasync") -> dramatiq.Broker:
    if not url:
        return StubBroker(fail_fast_default=False)
    if url.startswith(REDIS_SCHEMES):
        from dramatiq.brokers.redis import RedisBroker

        # Requeue a dead worker's messages after 15 s rather than at the 0.1% lottery;
        # the outbox reconciler still covers anything the broker drops.
        broker: dramatiq.Broker = RedisBroker(  # type: ignore[no-untyped-call]
            url=url, namespace=namespace, heartbeat_timeout=15_000, maintenance_chance=10_000)
        return broker
    if url.startswith(("amqp://", "amqps://")):
        try:
            from dramatiq.brokers.rabbitmq import RabbitmqBroker
        except ImportError as exc:
            raise ConfigError("PRIVASYNC_BROKER_URL is amqp:// but pika is not installed "
                              "(pip install 'dramatiq[rabbitmq]')") from exc
        return RabbitmqBroker(url=url)
    raise ConfigError("PRIVASYNC_BROKER_URL must be empty (embedded), redis://... or amqp://...")


def ping(broker: dramatiq.Broker) -> None:
    """Raise if the broker cannot be reached."""
    client = getattr(broker, "client", None)
    if client is not None:
        client.ping()
