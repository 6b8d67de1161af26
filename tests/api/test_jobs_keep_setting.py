"""``PRIVASYNC_JOBS_KEEP_DAYS`` reaches the scheduler's housekeeping, and is at least a day
(the applier's check for people back after an erasure reads the last hour's jobs)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import insert, select

from core import outbox
from core.db import jobs
from privasync.app.bootstrap import build
from privasync.app.settings import Settings
from tests.api.door import door_environ, door_settings
from tests.conftest import make_database
from tests.timing import wait_until


def test_the_scheduler_keeps_finished_jobs_as_long_as_the_setting_says(tmp_path: Path):
    container = build(door_settings(make_database("sqlite", tmp_path), tmp_path,
                                    jobs_keep_days=9), environ=door_environ())
    now = datetime.now(UTC)
    with container.engine.begin() as conn:
        ids = {days: conn.execute(insert(jobs).values(
            kind=outbox.CONSENT, destination="hubspot", subject_id=f"s{days}",
            status=outbox.DONE, attempts=1, next_attempt_at=now, origin_received_at=now,
            created_at=now, updated_at=now, done_at=now - timedelta(days=days))
            .returning(jobs.c.id)).scalar_one() for days in (10, 8, 0)}

    def left() -> set[int]:
        with container.engine.connect() as conn:
            return set(conn.execute(select(jobs.c.id)).scalars())

    try:
        container.start_scheduler(with_applier=False)
        wait_until("the housekeeping deletes the job done 10 days ago",
                   lambda: ids[10] not in left())
        assert left() == {ids[8], ids[0]}
    finally:
        container.close()


@pytest.mark.parametrize("days", [0, 0.5, -1])
def test_less_than_a_day_is_refused(days: float):
    with pytest.raises(ValidationError, match="jobs_keep_days"):
        Settings(jobs_keep_days=days)
