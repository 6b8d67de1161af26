"""The broker and worker carry the delivery settings they were given: read back from the
real Dramatiq objects, on the machine's Redis and RabbitMQ."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pika
import pika.exceptions
import pytest
from click.testing import CliRunner
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import AgeLimit, Retries, TimeLimit
from pydantic import SecretStr

from core.errors import ConfigError
from privasync.app.bootstrap import Container, build
from privasync.app.settings import Settings, WorkerSettings
from privasync.cli.main import main
from tests.conftest import BROKER_NAMESPACE
from tests.timing import scaled
from workers.broker import make_broker

MAPPINGS = Path(__file__).parents[2] / "mappings"
PARTNER = {"PRIVASYNC_PARTNER_CONTACT_CENTRE_SECRET": "s" * 16}


def settings(broker_url: str, tmp_path: Path, sqlite_url: str, **overrides: object) -> Settings:
    return Settings(database_url=sqlite_url, broker_url=broker_url, var_dir=tmp_path,
                    broker_namespace=BROKER_NAMESPACE, secret_key=SecretStr("x" * 32),
                    mappings_dir=MAPPINGS,
                    worker=WorkerSettings(threads=3, prefetch=5, shutdown_seconds=7,
                                          max_hold_seconds=120),
                    **overrides)  # type: ignore[arg-type]


@pytest.fixture
def built() -> Iterator[list[Container]]:
    containers: list[Container] = []
    yield containers
    for container in containers:
        container.close()


def dispatch_options(container: Container) -> dict[str, object]:
    return dict(container.broker.get_actor("privasync_dispatch").options)


def test_redis_broker_and_worker_carry_the_configured_delivery_settings(
        redis_url: str, tmp_path: Path, sqlite_url: str, built: list[Container]):
    container = build(settings(redis_url, tmp_path, sqlite_url,
                               broker_heartbeat_timeout_seconds=20,
                               broker_maintenance_chance=0.05,
                               broker_dead_message_ttl_seconds=3600), environ=PARTNER)
    built.append(container)
    broker = container.broker
    assert isinstance(broker, RedisBroker)
    assert (broker.heartbeat_timeout, broker.maintenance_chance, broker.dead_message_ttl) \
        == (20_000, 50_000, 3_600_000)
    assert broker.namespace == BROKER_NAMESPACE
    middleware = {type(m): m for m in broker.middleware}
    assert AgeLimit not in middleware
    assert middleware[Retries].max_retries == 0  # type: ignore[attr-defined]
    assert middleware[TimeLimit].time_limit == 120_000  # type: ignore[attr-defined]
    assert dispatch_options(container) == {"max_retries": 0, "time_limit": 120_000}
    process = container.start_worker()
    assert process.worker.worker_threads == 3
    assert (process.worker.queue_prefetch, process.worker.delay_prefetch) == (5, 5)
    assert process.shutdown_seconds == 7


def test_prefetch_defaults_to_one_message_per_thread(redis_url: str, tmp_path: Path,
                                                    sqlite_url: str, built: list[Container]):
    container = build(settings(redis_url, tmp_path, sqlite_url).model_copy(
        update={"worker": WorkerSettings(threads=3)}), environ=PARTNER)
    built.append(container)
    assert container.start_worker().worker.queue_prefetch == 3


def xq_accepts_ttl(url: str, ttl_ms: int) -> bool:
    """Whether RabbitMQ holds this session's dead-letter queue with that message TTL (a
    declaration with other arguments is refused: PRECONDITION_FAILED)."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        connection.channel().queue_declare(f"{BROKER_NAMESPACE}.XQ", durable=True,
                                           arguments={"x-message-ttl": ttl_ms})
        return True
    except pika.exceptions.ChannelClosedByBroker as exc:
        assert exc.reply_code == 406
        return False
    finally:
        connection.close()


def delete_queues(url: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        for suffix in ("", ".DQ", ".XQ"):
            connection.channel().queue_delete(f"{BROKER_NAMESPACE}{suffix}")
    finally:
        connection.close()


def test_rabbitmq_broker_and_worker_carry_the_configured_delivery_settings(
        rabbitmq_url: str, tmp_path: Path, sqlite_url: str, built: list[Container]):
    delete_queues(rabbitmq_url)
    container = build(settings(rabbitmq_url, tmp_path, sqlite_url,
                               broker_dead_message_ttl_seconds=600), environ=PARTNER)
    built.append(container)
    broker = container.broker
    assert isinstance(broker, RabbitmqBroker)
    assert broker.confirm_delivery is True
    assert container.broker.get_actor("privasync_dispatch").queue_name == BROKER_NAMESPACE
    assert dispatch_options(container) == {"max_retries": 0, "time_limit": 120_000}
    assert {type(m) for m in broker.middleware} >= {Retries, TimeLimit}
    assert AgeLimit not in {type(m) for m in broker.middleware}
    process = container.start_worker()  # declares the queues on the real RabbitMQ
    assert process.worker.queue_prefetch == 5
    assert xq_accepts_ttl(rabbitmq_url, 600_000)
    assert not xq_accepts_ttl(rabbitmq_url, 86_400_000)


def test_a_worker_refuses_to_start_on_a_dead_letter_queue_declared_otherwise(
        rabbitmq_url: str, tmp_path: Path, sqlite_url: str):
    delete_queues(rabbitmq_url)
    assert xq_accepts_ttl(rabbitmq_url, 1_000)  # declared by an older configuration
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PRIVASYNC_")}, **PARTNER,
           **{f"PRIVASYNC_{name}": value for name, value in {
               "DATABASE_URL": sqlite_url, "VAR_DIR": str(tmp_path),
               "MAPPINGS_DIR": str(MAPPINGS), "BROKER_URL": rabbitmq_url,
               "BROKER_NAMESPACE": BROKER_NAMESPACE}.items()}}
    try:  # a worker that starts anyway waits for a signal: the timeout fails the test
        done = subprocess.run([sys.executable, "-m", "privasync",
                               "worker"], env=env, capture_output=True, text=True,
                              timeout=scaled(60))
    finally:
        delete_queues(rabbitmq_url)
    assert done.returncode == 2, done.stderr  # a configuration error: exit 2, one line
    said = done.stderr.strip().splitlines()[-1]  # after pika's warnings of the refusal
    assert said.startswith(f"Error: RabbitMQ refused the queue {BROKER_NAMESPACE}.XQ")
    assert "PRIVASYNC_BROKER_DEAD_MESSAGE_TTL_SECONDS" in said
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("url", "namespace", "says"), [
    ("kafka://127.0.0.1:9092", "privasync", "must be empty (embedded), redis://... or amqp://"),
    ("amqp://guest:guest@127.0.0.1:notaport/", "privasync", "not a valid amqp:// URL"),
    ("amqp://guest:guest@127.0.0.1:5672/%2F", "amq.privasync", "names the RabbitMQ queue"),
    ("amqp://guest:guest@127.0.0.1:5672/%2F", "v1.2", "names the RabbitMQ queue"),
])
def test_a_broker_url_or_namespace_it_cannot_use_is_one_clear_error(url: str, namespace: str,
                                                                     says: str):
    with pytest.raises(ConfigError, match=re.escape(says)):
        make_broker(url, namespace=namespace)


def test_the_cli_says_so_in_one_line(tmp_path: Path, sqlite_url: str,
                                     monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PRIVASYNC_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("PRIVASYNC_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("PRIVASYNC_MAPPINGS_DIR", str(MAPPINGS))
    monkeypatch.setenv("PRIVASYNC_BROKER_URL", "kafka://127.0.0.1:9092")
    monkeypatch.setenv(*next(iter(PARTNER.items())))
    result = CliRunner().invoke(main, ["worker"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "Error: PRIVASYNC_BROKER_URL must be empty (embedded), redis://... or amqp://..."]
