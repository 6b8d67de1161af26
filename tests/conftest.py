"""Shared fixtures. Services are the machine's real ones: a test that needs one
fails (never skips) when it is missing, as in dramatiq's own conftest."""

from __future__ import annotations

import os

import pytest

REDIS_URL = os.environ.get("PRIVASYNC_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
RABBITMQ_URL = os.environ.get("PRIVASYNC_TEST_RABBITMQ_URL",
                              "amqp://guest:guest@127.0.0.1:5672/%2F")
# One database per test session, so concurrent runs on one machine never collide.
POSTGRES_SERVER = os.environ.get("PRIVASYNC_TEST_POSTGRES_SERVER",
                                 "postgresql+psycopg://postgres@127.0.0.1:5432")
POSTGRES_URL = f"{POSTGRES_SERVER}/privasync_test_{os.getpid()}"


# Broker keys (Redis) and queues (RabbitMQ) of this test session only: concurrent runs on
# one Redis or one RabbitMQ vhost stay apart.
BROKER_NAMESPACE = f"privasync-test-{os.getpid()}"
RABBITMQ_QUEUES = (BROKER_NAMESPACE, f"{BROKER_NAMESPACE}.DQ", f"{BROKER_NAMESPACE}.XQ")


def _rabbitmq(url: str, action: str) -> int:
    """``count``, ``purge`` or ``delete`` this session's queues; returns the messages they
    held."""
    import pika
    import pika.exceptions

    connection = pika.BlockingConnection(pika.URLParameters(url))
    held = 0
    try:
        for queue in RABBITMQ_QUEUES:
            channel = connection.channel()
            try:
                held += channel.queue_declare(queue, passive=True).method.message_count
                if action == "purge":
                    channel.queue_purge(queue)
                elif action == "delete":
                    channel.queue_delete(queue)
                channel.close()
            except pika.exceptions.ChannelClosedByBroker:  # 404: not declared (yet)
                pass
    finally:
        connection.close()
    return held


def clear_broker(url: str) -> int:
    """Drop this session's broker messages (as a Redis restart without persistence, or a
    purged RabbitMQ queue, would); returns how many were queued."""
    if url.startswith("amqp"):
        return _rabbitmq(url, "purge")
    import redis

    client = redis.Redis.from_url(url)
    held = queued(url)
    for key in client.scan_iter(f"{BROKER_NAMESPACE}:*"):
        client.delete(key)
    return held


def queued(url: str) -> int:
    """Dispatch messages waiting in this session's queues."""
    if url.startswith("amqp"):
        return _rabbitmq(url, "count")
    import redis

    return int(redis.Redis.from_url(url).hlen(f"{BROKER_NAMESPACE}:privasync.msgs"))


@pytest.fixture(scope="session")
def redis_url():  # type: ignore[no-untyped-def]
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is required at {REDIS_URL}: {exc} (run `make services`)")
    yield REDIS_URL
    clear_broker(REDIS_URL)


@pytest.fixture(scope="session")
def rabbitmq_url():  # type: ignore[no-untyped-def]
    """The machine's RabbitMQ; this session's queues are deleted at the end."""
    import pika
    import pika.exceptions

    try:
        pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL)).close()
    except pika.exceptions.AMQPError as exc:
        pytest.fail(f"RabbitMQ is required at 127.0.0.1:5672: {type(exc).__name__} "
                    "(run `make services`)")
    yield RABBITMQ_URL
    _rabbitmq(RABBITMQ_URL, "delete")


def _admin(statement: str) -> None:
    import sqlalchemy as sa

    from core.db import make_engine

    admin = make_engine(f"{POSTGRES_SERVER}/postgres")
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text(statement))
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL is required at {POSTGRES_SERVER}: {exc} (run `make services`)")
    finally:
        admin.dispose()


_created: list[str] = []


def _reset_postgres() -> None:
    name = POSTGRES_URL.rsplit("/", 1)[1]
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _admin(f'CREATE DATABASE "{name}"')
    if name not in _created:
        _created.append(name)


@pytest.fixture(scope="session", autouse=True)
def _drop_test_databases():  # type: ignore[no-untyped-def]
    yield
    for name in _created:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_database(kind: str, tmp_path):  # type: ignore[no-untyped-def]
    """A fresh, migrated database of the given kind; returns its URL."""
    from core.db import make_engine
    from core.schema import upgrade

    if kind == "postgresql":
        _reset_postgres()
        url = POSTGRES_URL
    else:
        url = f"sqlite:///{tmp_path}/privasync.db"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:  # type: ignore[no-untyped-def]
    """Storage tests run on both backends."""
    return make_database(request.param, tmp_path)


@pytest.fixture
def engine(db_url):  # type: ignore[no-untyped-def]
    from core.db import make_engine

    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def sqlite_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    return make_database("sqlite", tmp_path)


def pytest_terminal_summary(terminalreporter):  # type: ignore[no-untyped-def]
    """The number of generated inputs each fuzz target was sent (tests/api/fuzzing.py)."""
    from tests.api.fuzzing import SENT

    if SENT:
        terminalreporter.write_line(
            f"fuzzing: {sum(SENT.values())} generated inputs sent ("
            + ", ".join(f"{target} {n}" for target, n in sorted(SENT.items())) + ")")
