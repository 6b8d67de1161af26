"""The scheduler's housekeeping deletes finished jobs past ``jobs_keep``, a batch at a time,
and a stop ends it between two batches (the rest waits for the next run)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Engine

from core import outbox
from core.db import jobs
from tests.timing import wait_until
from workers.runtime import Scheduler


def scheduler(engine: Engine, pause: float) -> Scheduler:
    made = Scheduler(engine, lambda destinations: None, lambda: datetime.now(UTC),
                     dispatch_seconds=60, inbox_keep=timedelta(days=3),
                     jobs_keep=timedelta(days=7))
    made.prune_batch, made.PRUNE_PAUSE = 10, pause
    return made


def finished(engine: Engine, n: int, days_ago: float) -> None:
    at = datetime.now(UTC) - timedelta(days=days_ago)
    with engine.begin() as conn:
        conn.execute(insert(jobs), [{
            "kind": outbox.CONSENT, "destination": "hubspot", "subject_id": f"s{i}",
            "status": outbox.DONE, "attempts": 1, "next_attempt_at": at,
            "origin_received_at": at, "created_at": at, "updated_at": at, "done_at": at}
            for i in range(n)])


def count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(jobs)).scalar_one())


def test_housekeeping_deletes_finished_jobs_past_their_keeping_time(engine):  # type: ignore[no-untyped-def]
    finished(engine, 25, days_ago=8)
    finished(engine, 3, days_ago=6)
    assert scheduler(engine, pause=0).prune(datetime.now(UTC)) == 25
    assert count(engine) == 3


def test_a_stop_ends_the_pruning_between_two_batches(engine):  # type: ignore[no-untyped-def]
    finished(engine, 25, days_ago=8)
    finished(engine, 1, days_ago=0)
    running = scheduler(engine, pause=3600)  # housekeeping runs at once, then pauses
    running.start()
    wait_until("the first batch is deleted", lambda: count(engine) == 16)
    stopping = threading.Thread(target=running.stop)
    stopping.start()
    wait_until("the scheduler stops without finishing its pause",
                lambda: not stopping.is_alive())
    assert count(engine) == 16
