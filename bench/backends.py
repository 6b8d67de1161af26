"""Fresh storage per measurement and the stack started on it.

``sqlite``: a new SQLite file under var/bench/ and the embedded in-process broker.
``redis``: the dedicated PostgreSQL database ``privasync_bench`` (schema reset)
and a dedicated Redis db (flushed), both on the machine's loopback services.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from api.stack import Emulators, Stack, start_stack
from core.model import EventMeta, SubjectHint, SubjectSeen, SystemRef

ROOT = Path(__file__).resolve().parents[1]
VAR = ROOT / "var" / "bench"
MAPPINGS = ROOT / "mappings"
PG_DATABASE = "privasync_bench"
LABELS = {"sqlite": "SQLite + in-process broker", "redis": "Redis broker + PostgreSQL"}


@dataclass(frozen=True)
class Services:
    postgres_server: str  # postgresql+psycopg://user@127.0.0.1:5432 (no database)
    redis_url: str        # redis://127.0.0.1:6379/14

    def check_loopback(self) -> None:
        for url in (self.postgres_server, self.redis_url):
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
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


def prepare(backend: str, services: Services) -> tuple[str, str, Path]:
    """(database_url, broker_url, var_dir), all freshly emptied."""
    var_dir = VAR / backend
    shutil.rmtree(var_dir, ignore_errors=True)
    var_dir.mkdir(parents=True)
    if backend == "sqlite":
        return f"sqlite:///{var_dir}/privasync.db", "", var_dir
    if backend == "redis":
        database = _reset_postgres(services.postgres_server)
        _reset_redis(services.redis_url)
        return database, services.redis_url, var_dir
    raise SystemExit(f"unknown backend {backend!r}: use sqlite and/or redis")


@contextmanager
def running(backend: str, services: Services, *, poll_seconds: float, worker_threads: int,
            emulators: Emulators | None = None) -> Iterator[Stack]:
    database, broker, var_dir = prepare(backend, services)
    stack = start_stack(database_url=database, var_dir=var_dir, broker_url=broker,
                        mappings_dir=MAPPINGS, poll_seconds=poll_seconds,
                        worker_threads=worker_threads, emulators=emulators)
    try:
        yield stack
    finally:
        stack.stop()


def email(n: int) -> str:
    return f"person{n}@example.com"


def seed_identity(stack: Stack, people: Sequence[tuple[str, str]], chunk: int = 250) -> float:
    """Teach privasync (HubSpot contact id, e-mail) pairs straight through intake, as the
    ``contact.creation`` webhook plus one e-mail look-up would; returns seconds taken."""
    started = datetime.now(UTC)
    for start in range(0, len(people), chunk):
        now = datetime.now(UTC)
        events = [SubjectSeen(EventMeta("hubspot", f"bench-seed:{contact}", now,
                                        kind="contact.creation"),
                              SubjectHint(ref=SystemRef("hubspot", f"contact:{contact}"),
                                          email=address))
                  for contact, address in people[start:start + chunk]]
        stack.container.intake.accept(events, now)
    return (datetime.now(UTC) - started).total_seconds()


def quiet_logging() -> None:
    """Warnings and errors only, on stderr: stdout carries the report."""
    from api.cli import configure_logging

    configure_logging("WARNING")
