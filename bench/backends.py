"""Fresh storage per measurement, and privasync taught who is who before it.

``sqlite``: a new SQLite file under var/bench/ and the embedded in-process broker.
``redis``: the dedicated PostgreSQL database ``privasync_bench`` (schema reset)
and a dedicated Redis db (flushed), both on the machine's loopback services.
``rabbitmq``: the same database, and the bench's own queues on the machine's
RabbitMQ (deleted first).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from core.model import EventMeta, SubjectHint, SubjectSeen, SystemRef

ROOT = Path(__file__).resolve().parents[1]
VAR = ROOT / "var" / "bench"
MAPPINGS = ROOT / "mappings"
# Another database lets two benchmarks share a machine's PostgreSQL (give each its own
# Redis database too, with --redis-url).
PG_DATABASE = os.environ.get("PRIVASYNC_BENCH_DATABASE", "privasync_bench")
NAMESPACE = "privasync-bench"  # PRIVASYNC_BROKER_NAMESPACE of every bench deployment
LABELS = {"sqlite": "SQLite, `serve` (default)", "sqlite1": "SQLite, --single-process",
          "sqlite2": "SQLite, two by hand",
          "redis": "PostgreSQL + Redis, 4 procs", "rabbitmq": "PostgreSQL + RabbitMQ, 4 procs"}
DEFAULT_RABBITMQ = "amqp://guest:guest@127.0.0.1:5672/%2F"


@dataclass(frozen=True)
class Services:
    postgres_server: str  # postgresql+psycopg://user@127.0.0.1:5432 (no database)
    redis_url: str        # redis://127.0.0.1:6379/14
    rabbitmq_url: str = DEFAULT_RABBITMQ

    def check_loopback(self) -> None:
        for url in (self.postgres_server, self.redis_url, self.rabbitmq_url):
            host = urlsplit(url).hostname
            if host not in ("127.0.0.1", "localhost", "::1"):
                raise SystemExit(f"bench only talks to loopback services, not {host!r}")


def _reset_postgres(server: str) -> str:
    import sqlalchemy as sa

    from core.db import make_engine

    admin = make_engine(f"{server}/postgres")
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                  {"n": PG_DATABASE}).first()
            if exists is None:
                conn.execute(sa.text(f'CREATE DATABASE "{PG_DATABASE}"'))
    finally:
        admin.dispose()
    url = f"{server}/{PG_DATABASE}"
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
    finally:
        engine.dispose()
    return url


def _reset_redis(url: str) -> None:
    """Drop the bench's own broker keys (its namespace), nothing else of that Redis."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        for key in client.scan_iter(f"{NAMESPACE}:*"):
            client.delete(key)
    finally:
        client.close()


def _reset_rabbitmq(url: str) -> None:
    """Delete the bench's own queues (its namespace), nothing else of that RabbitMQ."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        for suffix in ("", ".DQ", ".XQ"):
            connection.channel().queue_delete(f"{NAMESPACE}{suffix}")
    finally:
        connection.close()


def prepare(backend: str, services: Services) -> tuple[str, str, Path]:
    """(database_url, broker_url, var_dir), all freshly emptied."""
    var_dir = VAR / backend
    shutil.rmtree(var_dir, ignore_errors=True)
    var_dir.mkdir(parents=True)
    if backend.startswith("sqlite"):
        return f"sqlite:///{var_dir}/privasync.db", "", var_dir
    if backend == "redis":
        database = _reset_postgres(services.postgres_server)
        _reset_redis(services.redis_url)
        return database, services.redis_url, var_dir
    if backend == "rabbitmq":
        database = _reset_postgres(services.postgres_server)
        _reset_rabbitmq(services.rabbitmq_url)
        return database, services.rabbitmq_url, var_dir
    raise SystemExit(f"unknown backend {backend!r}: use sqlite, sqlite1, sqlite2, redis, rabbitmq")


def email(n: int) -> str:
    return f"person{n}@example.com"


def seed_identity(database: str, secret: str, people: Sequence[tuple[str, str]],
                  chunk: int = 500) -> None:
    """Teach privasync (HubSpot contact id, e-mail) pairs as ``contact.creation`` plus one
    e-mail look-up would: SubjectSeen events stored in its inbox for the applier."""
    from core import codec, inbox
    from core.crypto import Keyring
    from core.db import make_engine

    keyring = Keyring(secret.encode())
    engine = make_engine(database)
    try:
        for start in range(0, len(people), chunk):
            now = datetime.now(UTC)
            events = [SubjectSeen(EventMeta("hubspot", f"bench-seed:{contact}", now,
                                            kind="contact.creation"),
                                  SubjectHint(ref=SystemRef("hubspot", f"contact:{contact}"),
                                              email=address))
                      for contact, address in people[start:start + chunk]]
            body = codec.encode(events)
            with engine.begin() as conn:
                inbox.store(conn, source="bench", sealed=keyring.seal(body),
                            key=keyring.delivery_key(body), received_at=now, events=len(events))
    finally:
        engine.dispose()


def quiet_logging() -> None:
    """Warnings and errors only, on stderr: stdout carries the report."""
    from privasync.cli.main import configure_logging

    configure_logging("WARNING")
