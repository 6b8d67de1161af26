"""The database is the truth: tables for subjects, consent, events, jobs and the ledger.

privasync stores identifiers and decisions, not profiles. Personal values it
must keep (an e-mail for identity, consent evidence, ledger detail) are
encrypted with the subject's own key; erasure destroys the key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
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
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url
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


def _where(condition: str) -> dict[str, Any]:
    """A partial index's condition, for both backends."""
    return {"sqlite_where": text(condition), "postgresql_where": text(condition)}


def _id(name: str = "id") -> Column[Any]:
    return Column(name, String(36), primary_key=True)


subjects = Table(
    "subjects", metadata,
    _id(),
    Column("created_at", AwareDateTime, nullable=False),
    Column("merged_into", String(36), nullable=True),
    Column("erased_at", AwareDateTime, nullable=True),
    Column("is_customer", Boolean, nullable=False, server_default=false()),
    # A person who came back after an erasure (a request or a withdrawal about an address on
    # the suppression list): the erasure whose list held the address. Such a subject holds
    # the address for what the person asked, never a sync, and is shredded when done.
    Column("returned_after", String(36), nullable=True, index=True),
)

# Each subject's key, wrapped (AES-GCM) under a key-encryption key that never sits in the
# database; ``kek_id`` names which one (a fingerprint of it, not the key).
subject_keys = Table(
    "subject_keys", metadata,
    Column("subject_id", String(36), ForeignKey("subjects.id"), primary_key=True),
    Column("key", LargeBinary, nullable=False),
    Column("kek_id", String(16), nullable=False),
)


def _key_version() -> Column[Any]:
    """The digest key version a stored digest was made under (core.crypto chains them)."""
    return Column("key_version", Integer, nullable=False, server_default="1")

identifiers = Table(
    "identifiers", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subject_id", String(36), ForeignKey("subjects.id"), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),
    _key_version(),
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
    _key_version(),
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
    # A claim is a lease: who holds the job, a token new at each claim (every outcome
    # write matches it), and until when; the holder's heartbeat extends it.
    Column("claimed_by", String(128), nullable=True),
    Column("claim_token", String(36), nullable=True),
    Column("claimed_at", AwareDateTime, nullable=True),
    Column("lease_until", AwareDateTime, nullable=True),
    Column("last_error_class", String(64), nullable=True),
    Column("note", String(200), nullable=True),
    Column("origin_received_at", AwareDateTime, nullable=False),
    Column("created_at", AwareDateTime, nullable=False),
    Column("updated_at", AwareDateTime, nullable=False),
    Column("done_at", AwareDateTime, nullable=True),
    # When an operator last sent a dead job back (its max age counts from then).
    Column("retried_at", AwareDateTime, nullable=True),
    # What a done job sent: canonical field names (and "consent" for consent status), never
    # values: privasync's own record of what each destination received (R20, R22).
    Column("sent", String(500), nullable=True),
    # Record jobs only: the changed fields, encrypted under the subject's key and
    # cleared once delivered (values live here only until they reach the destination).
    Column("payload", LargeBinary, nullable=True),
    # Only unfinished jobs are indexed for claims, dispatch ticks and backlog metrics, and
    # only running ones for who is writing whom: inserting a job maintains three indexes.
    Index("ix_jobs_unfinished", "destination", "kind", "status", "next_attempt_at",
          **_where("status NOT IN ('done', 'superseded')")),
    Index("ix_jobs_running", "subject_id", "destination", "kind", **_where("status = 'running'")),
    Index("ix_jobs_claimed_by", "claimed_by", **_where("status = 'running'")),
    # At most one waiting state job per subject and destination: a burst of changes
    # for one person becomes one job (record jobs carry values and coalesce at claim).
    Index("uq_jobs_one_pending", "destination", "subject_id", "kind", unique=True,
          **_where("status = 'pending' AND kind <> 'record'")),
    # Finished jobs by when they finished: the retention's selection (core.outbox.prune)
    # and a breach scope's window read a range of it, not the whole table.
    Index("ix_jobs_finished", "done_at", **_where("status IN ('done', 'superseded')")),
)

# What each destination was sent, per person, UTC day, kind and field names (never values):
# the delivery records of done jobs (``jobs.sent``) once the retention has deleted the jobs
# (core.outbox.prune), for breach scoping (R22) and the disclosures an access bundle lists
# (R20, Art. 15(1)(c)). ``sent`` is '' when a job recorded no field names. The key alone
# serves both readers (a destination's rows; one person's at a destination): one index to
# keep up as the retention adds rows.
disclosures = Table(
    "disclosures", metadata,
    Column("destination", String(64), primary_key=True),
    Column("subject_id", String(36), primary_key=True),
    Column("day", AwareDateTime, primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("sent", String(500), primary_key=True),
    Column("first_at", AwareDateTime, nullable=False),
    Column("last_at", AwareDateTime, nullable=False),
    Column("jobs", Integer, nullable=False),
)

requests = Table(
    "requests", metadata,
    _id(),
    Column("kind", String(32), nullable=False),
    Column("subject_id", String(36), nullable=False, index=True),
    Column("source", String(64), nullable=False),
    Column("received_at", AwareDateTime, nullable=False),
    # Art. 12(3): one calendar month from receipt, plus the time identity verification
    # paused the clock (Art. 12(6)), plus an extension of up to two months, once.
    Column("due_at", AwareDateTime, nullable=False),
    Column("status", String(16), nullable=False),
    Column("actor", String(64), nullable=False, server_default=""),
    Column("paused_since", AwareDateTime, nullable=True),
    Column("paused_seconds", Integer, nullable=False, server_default="0"),
    Column("extended_months", Integer, nullable=False, server_default="0"),
    Column("extension_reason", String(500), nullable=True),
    Column("rejection_reason", String(500), nullable=True),
    Column("completed_at", AwareDateTime, nullable=True),
    Column("confirmed_at", AwareDateTime, nullable=True),
    # When the person was told of the extension and why (Art. 12(3)), or it was given up.
    Column("extension_told_at", AwareDateTime, nullable=True),
    Column("note", String(200), nullable=True),
    # Art. 12(6): when the person was asked to prove who they are, by when they must (past
    # it the request is flagged for an admin, never dropped by itself).
    Column("identity_due_at", AwareDateTime, nullable=True),
    # The known systems no connection was configured for when the request came in (a JSON
    # list of names): the request never reached them. NULL: received before it was kept.
    Column("not_configured", Text, nullable=True),
    Index("ix_requests_open_due", "due_at", **_where("status IN ('in_progress', "
                                                      "'identity_pending')")),
)

# Where a request has to be carried out, and how far it got there: the receipt is JSON
# without personal data (time, vendor status code, vendor request id, what was verified).
request_destinations = Table(
    "request_destinations", metadata,
    Column("request_id", String(36), ForeignKey("requests.id"), primary_key=True),
    Column("destination", String(64), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("reason", String(500), nullable=True),
    Column("ack_due", AwareDateTime, nullable=True),
    Column("escalated_at", AwareDateTime, nullable=True),
    Column("receipt", Text, nullable=True),
    Column("updated_at", AwareDateTime, nullable=False),
)

# After an erasure, keyed hashes of the person's identifiers: enough to recognise them
# coming back through any sync, nothing readable.
suppression = Table(
    "suppression", metadata,
    Column("digest", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("request_id", String(36), nullable=False, index=True),
    Column("created_at", AwareDateTime, nullable=False),
    _key_version(),
)

# What a system said it holds about a person, for an access request: encrypted under the
# person's key, deleted after a configured number of days.
request_exports = Table(
    "request_exports", metadata,
    Column("request_id", String(36), ForeignKey("requests.id"), primary_key=True),
    Column("destination", String(64), primary_key=True),
    Column("payload", LargeBinary, nullable=True),
    Column("created_at", AwareDateTime, nullable=False),
    Column("expires_at", AwareDateTime, nullable=False, index=True),
)

# Each partner acknowledgement as it was signed: the exact body and the headers that sign
# it, so ``proof_sha256`` (and the signature) can be checked again. The body may hold the
# partner's free words about the person, so it is sealed under the person's key, and goes
# with it when the person is erased.
ack_proofs = Table(
    "ack_proofs", metadata,
    Column("request_id", String(36), ForeignKey("requests.id"), primary_key=True),
    Column("destination", String(64), primary_key=True),
    Column("event_id", String(200), primary_key=True),
    Column("proof_sha256", String(64), nullable=False),
    Column("received_at", AwareDateTime, nullable=False),
    Column("signed", LargeBinary, nullable=False),
)

# One row per notice sent (an erasure done, a rejection, an extension), written with the
# notice job's outcome: a second notice job for the same request, planned before the
# applier saw the first one's step, finds it here and does not tell the person twice.
request_notices = Table(
    "request_notices", metadata,
    Column("request_id", String(36), ForeignKey("requests.id"), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("sent_at", AwareDateTime, nullable=False),
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

# Entries written by anyone but the applier wait here, unchained; the applier (the
# chain's one writer) moves them into ``ledger`` in order, so appends take no lock.
ledger_pending = Table(
    "ledger_pending", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", AwareDateTime, nullable=False),
    Column("kind", String(48), nullable=False),
    Column("subject_id", String(36), nullable=True),
    Column("detail", LargeBinary, nullable=True),
)

# Free text about a person that a ledger entry refers to (an admin's reason, a partner's
# acknowledgement detail), sealed with its salt under the person's key; the chained entry
# holds only its salted hash (core.freetext). Goes with the key when the person is erased.
ledger_texts = Table(
    "ledger_texts", metadata,
    Column("hash", String(64), primary_key=True),
    Column("subject_id", String(36), nullable=False, index=True),
    Column("sealed", LargeBinary, nullable=False),
    Column("created_at", AwareDateTime, nullable=False),
)

# The durable inbox: one verified, validated delivery per row, sealed; the 2xx means
# it is here. The applier applies rows in order and clears their bodies (a row it gives
# up on too: only its reason stays).
inbox = Table(
    "inbox", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(32), nullable=False),
    Column("delivery_key", String(64), nullable=False),
    Column("received_at", AwareDateTime, nullable=False),
    Column("events", Integer, nullable=False),
    Column("body", LargeBinary, nullable=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("not_before", AwareDateTime, nullable=True),
    Column("applied_at", AwareDateTime, nullable=True),
    Column("last_error", String(64), nullable=True),
    UniqueConstraint("source", "delivery_key", name="uq_inbox_source_delivery"),
    Index("ix_inbox_unapplied", "id", **_where("applied_at IS NULL")),
    Index("ix_inbox_errors", "id", **_where("last_error IS NOT NULL")),
)

# Events by source and outcome since the start, for metrics and ``privasync status``
# (an event that changed nothing leaves no row in ``events``, only a count here).
event_counts = Table(
    "event_counts", metadata,
    Column("source", String(32), primary_key=True),
    Column("outcome", String(32), primary_key=True),
    Column("n", Integer, nullable=False),
)

# The dispatch guard: at most one broker message in flight per destination.
dispatch = Table(
    "dispatch", metadata,
    Column("destination", String(64), primary_key=True),
    Column("enqueued_at", AwareDateTime, nullable=True),
)

# Which addresses a destination's own list holds (e.g. a Mailchimp audience's members), as
# the same keyed digests as ``identifiers``: read in bulk, so that a delivery needs no call
# per person to learn whether someone is there. ``kept``: the list keeps the address without
# counting it as a member (Mailchimp's archived contacts). Nothing else about them is kept.
directory = Table(
    "directory", metadata,
    Column("system", String(32), primary_key=True),
    Column("digest", String(64), primary_key=True),
    Column("seen_at", AwareDateTime, nullable=False),
    _key_version(),
    Column("kept", Boolean, nullable=False, server_default=false()),
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

# Restarts of a supervised process (``privasync serve`` on one machine), counted by the
# supervisor; ``process:host`` names carry nothing personal.
restarts = Table(
    "restarts", metadata,
    Column("name", String(128), primary_key=True),
    Column("count", Integer, nullable=False),
    Column("last_exit", Integer, nullable=False),
    Column("at", AwareDateTime, nullable=False),
)

leases = Table(
    "leases", metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("expires_at", AwareDateTime, nullable=False),
)

# Admin API tokens: each stored only as a keyed hash (HMAC under the installation secret,
# which never sits in the database), so a copy of this table cannot check guesses.
api_tokens = Table(
    "api_tokens", metadata,
    Column("name", String(64), primary_key=True),
    Column("digest", String(64), nullable=False, unique=True),
    Column("scopes", String(400), nullable=False),  # space-separated, sorted
    Column("created_at", AwareDateTime, nullable=False),
    Column("expires_at", AwareDateTime, nullable=True),
    Column("revoked_at", AwareDateTime, nullable=True),
    Column("last_used_at", AwareDateTime, nullable=True),
)


# Which keys are current: the KEK new keys are wrapped under (by id), and the digest
# versions stored digests may carry (floor..current). Writers of keys and digests read
# this row in their transaction, so a rotation can never miss what they write.
key_state = Table(
    "key_state", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("kek_id", String(16), nullable=False),
    Column("digest_version", Integer, nullable=False),
    Column("digest_floor", Integer, nullable=False),
    Column("updated_at", AwareDateTime, nullable=False),
)

# The digest keys, each wrapped under a KEK like a subject key; version 1 of an
# installation older than this table is its PRIVASYNC_SECRET_KEY, captured at first start.
digest_keys = Table(
    "digest_keys", metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("key", LargeBinary, nullable=False),
    Column("kek_id", String(16), nullable=False),
    Column("created_at", AwareDateTime, nullable=False),
)


# When each KEK generation became current, was replaced, and was destroyed (ids only,
# never a key): an old generation is kept for the backup horizon, so a backup within it
# can be restored, then destroyed, so a backup older than that opens nothing.
kek_generations = Table(
    "kek_generations", metadata,
    Column("kek_id", String(16), primary_key=True),
    Column("created_at", AwareDateTime, nullable=False),
    Column("retired_at", AwareDateTime, nullable=True),
    Column("destroyed_at", AwareDateTime, nullable=True),
)

# Erasures committed but not yet appended to the erasure log kept outside the database
# (core.erasures): written in the shredding transaction, deleted once appended, so a crash
# between the commit and the append loses no line. Keyed hashes and ids only.
erasure_log_pending = Table(
    "erasure_log_pending", metadata,
    Column("request_id", String(36), primary_key=True),
    Column("entry", Text, nullable=False),
    Column("created_at", AwareDateTime, nullable=False),
)


READ_ONLY = "privasync_read_only"


def scrub(engine: Engine) -> bool:
    """After a crypto-shredding: on SQLite, copy the write-ahead log into the database and
    truncate it, so the pages that held a destroyed key survive in neither file; False
    while a reader still needs the old pages (try again later). PostgreSQL keeps old row
    versions until VACUUM and in its WAL; a logical dump (pg_dump) never holds them."""
    if engine.dialect.name != "sqlite":
        return True
    raw = engine.raw_connection()  # outside any transaction: a checkpoint cannot run in one
    try:
        cursor = raw.cursor()
        busy = cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        cursor.close()
    finally:
        raw.close()
    return busy is not None and busy[0] == 0


def _private_sqlite_file(url: str) -> None:
    """Create a SQLite database file (and its directory) readable by the owner alone before
    SQLite opens it: SQLite gives its -wal and -shm files the database file's mode."""
    path = make_url(url).database
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    file = Path(path)
    if not file.parent.exists():
        file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not file.exists():
        os.close(os.open(file, os.O_WRONLY | os.O_CREAT, 0o600))


def make_engine(url: str, *, pool_size: int | None = None) -> Engine:
    """An engine tuned per backend. SQLite gets WAL, a busy timeout, and BEGIN IMMEDIATE
    for writers only, so concurrent writers queue instead of failing while readers
    (``reader(engine)``) never wait for the write lock; PostgreSQL gets pre-ping.
    ``pool_size`` gives a pool of exactly that many connections (a probe's own, which
    requests holding every connection of the main pool cannot starve)."""
    pool: dict[str, Any] = ({} if pool_size is None
                            else {"pool_size": pool_size, "max_overflow": 0})
    if url.startswith("sqlite"):
        _private_sqlite_file(url)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               **pool)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            # Deleted rows are overwritten with zeros, not just unlinked: a shredded key or
            # a cleared inbox body must not linger in free pages of the file.
            cur.execute("PRAGMA secure_delete=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            read_only = conn.get_execution_options().get(READ_ONLY, False)
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True, **(pool or {"pool_size": 10,
                                                              "max_overflow": 20}))


def reader(engine: Engine) -> Engine:
    """The same engine for reads only: on SQLite its transactions never take the write
    lock up front, so readiness and the CLI answer while intake and delivery write.
    Never write through it (a write would have to upgrade the lock, and may fail)."""
    return engine.execution_options(**{READ_ONLY: True})


def insert_for(conn: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that can say ``ON CONFLICT``: both backends spell it the same way."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


# How ``write_many``'s ``merge`` folds a column of a colliding row into the row there.
_MERGES = {"sum": "{row}.{c} + excluded.{c}",
           "min": "CASE WHEN excluded.{c} < {row}.{c} THEN excluded.{c} ELSE {row}.{c} END",
           "max": "CASE WHEN excluded.{c} > {row}.{c} THEN excluded.{c} ELSE {row}.{c} END"}


def write_many(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], *,
               ignore: bool = False, conflict: Sequence[str] = (),
               update: Sequence[str] = (), merge: Mapping[str, str] | None = None) -> None:
    """INSERT many rows in one driver call, for the set-based writes of the applier and the
    outbox: ``ignore`` skips rows that collide (``ON CONFLICT DO NOTHING``); ``conflict``
    with ``update`` overwrites those columns of the row that collides, and with ``merge``
    folds them into it (per column: ``sum``, ``min`` or ``max``).

    SQLAlchemy's per-row parameter processing costs more than the database does on rows
    this uniform, so values go to the driver as they are, with the one conversion the
    column types need (aware timestamps to UTC; on SQLite, text in SQLAlchemy's format)
    and the same refusal of naive timestamps as ``AwareDateTime``.
    """
    if not rows:
        return
    names = list(rows[0])
    quote = conn.dialect.identifier_preparer.quote
    sqlite = conn.dialect.name == "sqlite"
    suffix = ""
    if ignore:
        suffix = " ON CONFLICT DO NOTHING"
    elif conflict and (update or merge):
        sets = [f"{quote(c)} = excluded.{quote(c)}" for c in update]
        sets += [f"{quote(c)} = " + _MERGES[how].format(row=quote(table.name), c=quote(c))
                 for c, how in (merge or {}).items()]
        suffix = (f" ON CONFLICT ({', '.join(quote(c) for c in conflict)}) DO UPDATE SET "
                  + ", ".join(sets))
    times = [i for i, n in enumerate(names) if isinstance(table.c[n].type, AwareDateTime)]
    converted: dict[datetime, Any] = {}  # rows of one batch share a handful of timestamps

    def row_of(row: Mapping[str, Any]) -> tuple[Any, ...]:
        values = [row[n] for n in names]
        for i in times:
            when = values[i]
            if when is not None:
                if when not in converted:
                    converted[when] = _to_driver(when, sqlite)
                values[i] = converted[when]
        return tuple(values)

    # Names come from core.db's own tables, quoted; every value is a bound parameter.
    into = f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) "
    if sqlite:  # the driver loops over the rows in C: one statement, many parameter sets
        conn.exec_driver_sql(f"{into}VALUES ({', '.join('?' for _ in names)}){suffix}",
                             [row_of(row) for row in rows])
        return
    # psycopg's executemany costs a Python round per row; unnest() takes each column as one
    # array parameter, so a set of any size is one statement whose text never changes.
    arrays = ", ".join(f"%s::{table.c[n].type.compile(dialect=conn.dialect)}[]" for n in names)
    values = [row_of(row) for row in rows]
    conn.exec_driver_sql(f"{into}SELECT * FROM unnest({arrays}){suffix}",  # noqa: S608
                         tuple(list(column) for column in zip(*values, strict=True)))


def _to_driver(when: datetime, sqlite: bool) -> Any:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("naive datetime refused: timestamps are evidence")
    when = when.astimezone(UTC)
    if not sqlite:
        return when
    return (f"{when.year:04d}-{when.month:02d}-{when.day:02d} {when.hour:02d}:"
            f"{when.minute:02d}:{when.second:02d}.{when.microsecond:06d}")
