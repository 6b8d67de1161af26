"""Shared fixtures. Services are the machine's real ones: a test that needs one
fails (never skips) when it is missing, as in dramatiq's own conftest."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


_admin_engine: list[Any] = []  # one engine on the server's "postgres" database a session


def _admin(statement: str) -> None:
    import sqlalchemy as sa

    from core.db import make_engine

    if not _admin_engine:
        _admin_engine.append(make_engine(f"{POSTGRES_SERVER}/postgres"))
    try:
        with _admin_engine[0].connect().execution_options(
                isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text(statement))
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL is required at {POSTGRES_SERVER}: {exc} (run `make services`)")


_created: list[str] = []

# Each database a test gets is a copy of one migrated once per session (a worker's session
# under pytest-xdist): PostgreSQL's CREATE DATABASE ... TEMPLATE, or a copy of a SQLite file.
# Migrating per test cost ~0.5 s on PostgreSQL and ~0.15 s on SQLite, several hundred times.
POSTGRES_TEMPLATE = f"privasync_template_{os.getpid()}"
_templates: dict[str, str] = {}


def _migrate(url: str) -> None:
    from core.db import make_engine
    from core.schema import upgrade

    engine = make_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


def _postgres_template() -> str:
    if "postgresql" not in _templates:
        _admin(f'DROP DATABASE IF EXISTS "{POSTGRES_TEMPLATE}" WITH (FORCE)')
        _admin(f'CREATE DATABASE "{POSTGRES_TEMPLATE}"')
        _created.append(POSTGRES_TEMPLATE)
        _migrate(f"{POSTGRES_SERVER}/{POSTGRES_TEMPLATE}")
        _templates["postgresql"] = POSTGRES_TEMPLATE
    return _templates["postgresql"]


def _sqlite_template() -> Path:
    if "sqlite" not in _templates:
        path = Path(tempfile.mkdtemp(prefix="privasync-template-")) / "privasync.db"
        _migrate(f"sqlite:///{path}")  # disposed: the WAL is checkpointed into the file
        assert not Path(f"{path}-wal").exists(), "the template's WAL must be checkpointed"
        _templates["sqlite"] = str(path)
    return Path(_templates["sqlite"])


def _reset_postgres() -> None:
    name = POSTGRES_URL.rsplit("/", 1)[1]
    template = _postgres_template()
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    if name not in _created:
        _created.append(name)


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """Each test gets back the logging it found: a test (or a CLI command run in process)
    that sets privasync's logging to DEBUG would otherwise leave pika, whose threads outlive
    the test, writing DEBUG lines into the output of the tests after it."""
    import logging

    import structlog

    root = logging.getLogger()
    handlers, level, structured = root.handlers[:], root.level, structlog.get_config()
    levels = {name: logger.level for name, logger in logging.root.manager.loggerDict.items()
              if isinstance(logger, logging.Logger)}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, logger in logging.root.manager.loggerDict.items():
        if isinstance(logger, logging.Logger) and logger.level != levels.get(name, 0):
            logger.setLevel(levels.get(name, logging.NOTSET))
    structlog.configure(**structured)


@pytest.fixture(scope="session", autouse=True)
def _drop_test_databases():  # type: ignore[no-untyped-def]
    yield
    for name in _created:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    for admin in _admin_engine:
        admin.dispose()
    if "sqlite" in _templates:
        shutil.rmtree(Path(_templates["sqlite"]).parent, ignore_errors=True)


def make_database(kind: str, tmp_path):  # type: ignore[no-untyped-def]
    """A fresh, migrated database of the given kind; returns its URL."""
    if kind == "postgresql":
        _reset_postgres()
        return POSTGRES_URL
    url = f"sqlite:///{tmp_path}/privasync.db"
    path = Path(tmp_path) / "privasync.db"
    if path.exists():  # a database already there is migrated in place, as before
        _migrate(url)
        return url
    from core.db import make_engine

    # The engine creates the file (and its directory) as the product does, owner-only;
    # the template's bytes go into it.
    make_engine(url).dispose()
    with path.open("r+b") as out:
        out.write(_sqlite_template().read_bytes())
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


# Slowest first: whole deployments, then end-to-end stacks, then the rest. Alone this
# changes nothing; under pytest-xdist (make test) the long cases start at once on every
# worker instead of leaving one worker alone with them at the end.
_FIRST = ("tests/faults/", "tests/e2e/")


def pytest_collection_modifyitems(items):  # type: ignore[no-untyped-def]
    def rank(item):  # type: ignore[no-untyped-def]
        path = item.nodeid
        return next((i for i, prefix in enumerate(_FIRST) if path.startswith(prefix)),
                    len(_FIRST))
    items.sort(key=rank)  # stable: each module's tests stay together, in their order


def pytest_sessionfinish(session):  # type: ignore[no-untyped-def]
    """An xdist worker hands its fuzzing counts to the controller (tests/api/fuzzing.py)."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        from tests.api.fuzzing import SENT

        workeroutput["fuzzing_sent"] = dict(SENT)


def pytest_configure(config):  # type: ignore[no-untyped-def]
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_FuzzingFromWorkers(), "privasync-fuzzing-workers")


class _FuzzingFromWorkers:
    def pytest_testnodedown(self, node, error):  # type: ignore[no-untyped-def]
        from tests.api.fuzzing import SENT

        for target, n in getattr(node, "workeroutput", {}).get("fuzzing_sent", {}).items():
            SENT[target] += n


def pytest_terminal_summary(terminalreporter):  # type: ignore[no-untyped-def]
    """The number of generated inputs each fuzz target was sent (tests/api/fuzzing.py)."""
    from tests.api.fuzzing import SENT

    if SENT:
        terminalreporter.write_line(
            f"fuzzing: {sum(SENT.values())} generated inputs sent ("
            + ", ".join(f"{target} {n}" for target, n in sorted(SENT.items())) + ")")
