"""What the soak (bench/soak.py) reads from privasync's PostgreSQL database at a window's
end: backlogs, what flowed through in the window, table sizes. PostgreSQL only
(``percentile_disc``, ``pg_stat_user_tables``)."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection, Engine

from core import inbox
from core.db import inbox as inbox_rows
from core.db import jobs, requests
from core.outbox import CONSENT, DEAD, OPEN, RECORD

SIZES = text("SELECT relname, pg_total_relation_size(relid), pg_indexes_size(relid), "
             "n_live_tup, n_dead_tup FROM pg_stat_user_tables WHERE schemaname = 'public' "
             "ORDER BY 2 DESC")


def database(engine: Engine, start: datetime, end: datetime) -> dict[str, Any]:
    """Backlogs and dead jobs now; what flowed in [start, end); every table's size."""
    with engine.connect() as conn:
        waiting = inbox.backlog(conn)
        by_status: dict[str, int] = dict(conn.execute(select(jobs.c.status, func.count()).where(
            jobs.c.status.in_([*OPEN, DEAD])).group_by(jobs.c.status)).all())
        erasures: dict[str, int] = dict(conn.execute(select(requests.c.status, func.count()).where(
            requests.c.kind == "erasure").group_by(requests.c.status)).all())
        return {"inbox_rows": waiting.rows, "inbox_events": waiting.events,
                "jobs_pending": by_status.get("pending", 0),
                "jobs_running": by_status.get("running", 0),
                "jobs_dead": by_status.get(DEAD, 0), "erasures": erasures,
                **_flow(conn, start, end), "tables": _sizes(conn)}


def _flow(conn: Connection, start: datetime, end: datetime) -> dict[str, Any]:
    """Events stored in the inbox (by source) and applied, jobs created (by kind), and the
    propagation p99: ``done_at - origin_received_at`` of consent and record jobs done."""
    took = func.extract("epoch", jobs.c.done_at - jobs.c.origin_received_at)
    done, p99 = conn.execute(select(func.count(), func.percentile_disc(0.99).within_group(
        took)).where(jobs.c.done_at >= start, jobs.c.done_at < end,
                     jobs.c.kind.in_([CONSENT, RECORD]))).one()
    created: dict[str, int] = dict(conn.execute(select(jobs.c.kind, func.count()).where(
        jobs.c.created_at >= start, jobs.c.created_at < end).group_by(jobs.c.kind)).all())
    stored = dict(conn.execute(select(inbox_rows.c.source, func.sum(inbox_rows.c.events)).where(
        inbox_rows.c.received_at >= start, inbox_rows.c.received_at < end)
        .group_by(inbox_rows.c.source)).all())
    applied = conn.execute(select(func.coalesce(func.sum(inbox_rows.c.events), 0)).where(
        inbox_rows.c.applied_at >= start, inbox_rows.c.applied_at < end)).scalar_one()
    return {"inbox_arrived_events": {k: int(n) for k, n in stored.items()},
            "applied_per_s": round(int(applied) / (end - start).total_seconds(), 1),
            "jobs_created": created, "jobs_done_propagated": int(done),
            "propagation_p99_ms": None if p99 is None else round(float(p99) * 1000, 1)}


def _sizes(conn: Connection) -> dict[str, dict[str, Any]]:
    """Every table: total and index MB, live and dead rows (the statistics' estimates)."""
    return {name: {"mb": round(total / 2**20, 2), "indexes_mb": round(idx / 2**20, 2),
                   "live_rows": live, "dead_rows": dead}
            for name, total, idx, live, dead in conn.execute(SIZES).all()}


def left(engine: Engine) -> int:
    """Inbox rows waiting, jobs open and erasures not finished."""
    with engine.connect() as conn:
        return inbox.backlog(conn).rows + sum(int(conn.execute(query).scalar_one()) for query in (
            select(func.count()).select_from(jobs).where(jobs.c.status.in_(OPEN)),
            select(func.count()).select_from(requests).where(
                requests.c.kind == "erasure", requests.c.status == "in_progress")))


def autovacuum(engine: Engine) -> bool:
    with engine.connect() as conn:
        return bool(conn.execute(text("SHOW autovacuum")).scalar_one() == "on")


def vacuum(engine: Engine) -> float:
    """``VACUUM (ANALYZE)`` of the bench's database, as autovacuum would; seconds taken."""
    started = time.monotonic()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM (ANALYZE)"))
    return round(time.monotonic() - started, 2)
