"""The database is the truth: tables for subjects, consent, events, jobs and the ledger.

privasync stores identifiers and decisions, not profiles. Personal values it
must keep (an e-mail for identity, consent evidence, ledger detail) are
encrypted with the subject's own key; erasure destroys the key.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    false,
)
from sqlalchemy.engine import Engine
from sqlalchemy.types import TypeDecorator

metadata = MetaData(naming_convention={
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})


class AwareDateTime(TypeDecorator[datetime]):
    """Stores UTC, returns timezone-aware UTC on every backend (SQLite drops zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: timestamps are evidence")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _id(name: str = "id") -> Column[Any]:
    return Column(name, String(36), primary_key=True)


subjects = Table(
    "subjects", metadata,
    _id(),
    Column("created_at", AwareDateTime, nullable=False),
    Column("merged_into", String(36), nullable=True),
    Column("erased_at", AwareDateTime, nullable=True),
    Column("is_customer", Boolean, nullable=False, server_default=false()),
)

subject_keys = Table(
    "subject_keys", metadata,
    Column("subject_id", String(36), ForeignKey("subjects.id"), primary_key=True),
    Column("key", LargeBinary, nullable=False),
)

identifiers = Table(
    "identifiers", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subject_id", String(36), ForeignKey("subjects.id"), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),
    UniqueConstraint("kind", "digest", name="uq_identifiers_kind_digest"),
)

system_refs = Table(
    "system_refs", metadata,
    Column("system", String(64), primary_key=True),
    Column("ref", String(200), primary_key=True),
    Column("subject_id", String(36), ForeignKey("subjects.id"), nullable=False, index=True),
    Column("created_at", AwareDateTime, nullable=False),
)

consents = Table(
    "consents", metadata,
    Column("subject_id", String(36), ForeignKey("subjects.id"), primary_key=True),
    Column("purpose", String(64), primary_key=True),
    Column("channel", String(16), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("occurred_at", AwareDateTime, nullable=False),
    Column("source", String(64), nullable=False),
    Column("evidence", LargeBinary, nullable=True),
    Column("updated_at", AwareDateTime, nullable=False),
)

# A keyed hash of each mapped field's last value per subject: enough to tell a
# real change from our own write echoing back, without keeping the value.
field_state = Table(
    "field_state", metadata,
    Column("subject_id", String(36), ForeignKey("subjects.id"), primary_key=True),
    Column("field", String(64), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("occurred_at", AwareDateTime, nullable=False),
)

events = Table(
    "events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(64), nullable=False),
    Column("source_event_id", String(255), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("subject_id", String(36), nullable=True, index=True),
    Column("occurred_at", AwareDateTime, nullable=False),
    Column("received_at", AwareDateTime, nullable=False),
    Column("outcome", String(32), nullable=False),
    UniqueConstraint("source", "source_event_id", name="uq_events_source_event"),
)

jobs = Table(
    "jobs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("destination", String(64), nullable=False),
    Column("subject_id", String(36), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", AwareDateTime, nullable=False),
    Column("enqueued_at", AwareDateTime, nullable=True),
    Column("claimed_at", AwareDateTime, nullable=True),
    Column("last_error_class", String(64), nullable=True),
    Column("note", String(200), nullable=True),
    Column("origin_received_at", AwareDateTime, nullable=False),
    Column("created_at", AwareDateTime, nullable=False),
    Column("updated_at", AwareDateTime, nullable=False),
    Column("done_at", AwareDateTime, nullable=True),
    # Record jobs only: the changed fields, encrypted under the subject's key and
    # cleared once delivered (values live here only until they reach the destination).
    Column("payload", LargeBinary, nullable=True),
    Index("ix_jobs_destination_status_due", "destination", "status", "next_attempt_at"),
    Index("ix_jobs_subject_destination", "subject_id", "destination", "kind", "status"),
)

requests = Table(
    "requests", metadata,
    _id(),
    Column("kind", String(32), nullable=False),
    Column("subject_id", String(36), nullable=False, index=True),
    Column("source", String(64), nullable=False),
    Column("received_at", AwareDateTime, nullable=False),
    Column("due_at", AwareDateTime, nullable=False),
    Column("status", String(16), nullable=False),
)

ledger = Table(
    "ledger", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", AwareDateTime, nullable=False),
    Column("kind", String(48), nullable=False),
    Column("subject_id", String(36), nullable=True, index=True),
    Column("detail", LargeBinary, nullable=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

ledger_head = Table(
    "ledger_head", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
)

cursors = Table(
    "cursors", metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", AwareDateTime, nullable=False),
)

heartbeats = Table(
    "heartbeats", metadata,
    Column("name", String(128), primary_key=True),
    Column("at", AwareDateTime, nullable=False),
)

leases = Table(
    "leases", metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("expires_at", AwareDateTime, nullable=False),
)


def make_engine(url: str) -> Engine:
    """An engine tuned per backend: SQLite gets WAL, a busy timeout and BEGIN IMMEDIATE
    so concurrent writers queue instead of failing; PostgreSQL gets pre-ping."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
