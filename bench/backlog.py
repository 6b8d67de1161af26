"""Measurement 5: a backlog towards HubSpot against its real rate window, with privasync
deployed on PostgreSQL and Redis (api, scheduler, two worker processes).

N people withdraw everything on a web form, stored in the inbox at once: N changes,
each a consent job for HubSpot (and for the other destinations). The HubSpot emulator
allows 100 calls per rolling 10 s, as a Free/Starter private app, and answers each after
``latency`` seconds. privasync's workers share the window through Redis and send one
v4 batch write per 50 people (two subscriptions each: 100 rows).

How much of the budget was used, from the times HubSpot let each call in:
- over the run: calls made / calls the window allows in the span from the first call to
  the last, N x (floor(span / W) + 1), the most any client could have made in it;
- slot reuse: the i-th call can go W seconds after the (i-N)-th at the earliest, so
  W / mean(t[i] - t[i-N]) over every call after the first N says how promptly the
  slots were used again (1.0: each the instant it freed). It needs more than N calls.
Every 429 is privasync's own: nothing else calls the emulator.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from bench import backends, deploy
from core import codec, inbox
from core.crypto import Keyring
from core.db import jobs, make_engine
from core.model import (
    Channel,
    ConsentChange,
    ConsentChanged,
    ConsentStatus,
    EventMeta,
    SubjectHint,
)
from privasync.demo.stack import Emulators

LIMIT, WINDOW = 100, 10.0
ROW_EVENTS = 2000  # events per inbox row, as the applier takes them


def _store(database: str, changes: int) -> None:
    keyring = Keyring(deploy.SECRET_KEY.encode())
    engine = make_engine(database)
    now = datetime.now(UTC)
    withdrawn = tuple(ConsentChange(p, Channel.EMAIL, ConsentStatus.WITHDRAWN)
                      for p in ("product_news", "offers"))
    try:
        with engine.begin() as conn:
            for start in range(0, changes, ROW_EVENTS):
                events = [ConsentChanged(EventMeta("web_form", f"backlog-{n}", now),
                                         SubjectHint(email=backends.email(n)), withdrawn)
                          for n in range(start, min(changes, start + ROW_EVENTS))]
                body = codec.encode(events)
                inbox.store(conn, source="web_form", sealed=keyring.seal(body),
                            key=keyring.delivery_key(body), received_at=now,
                            events=len(events))
    finally:
        engine.dispose()


def _jobs(engine: Engine) -> dict[str, int]:
    """HubSpot's jobs by status."""
    with engine.connect() as conn:
        return {str(r[0]): int(r[1]) for r in conn.execute(
            select(jobs.c.status, func.count()).where(jobs.c.destination == "hubspot")
            .group_by(jobs.c.status))}


def _finished(counts: dict[str, int], changes: int) -> bool:
    return sum(counts.values()) >= changes and not counts.get("pending") \
        and not counts.get("running")


def budget(admitted: list[float], limit: int = LIMIT, window: float = WINDOW) -> dict[str, Any]:
    """The budget figures (module docstring) from the times calls were let in."""
    times = sorted(admitted)
    if not times:
        return {"calls": 0}
    span = times[-1] - times[0]
    allowed = limit * (int(span // window) + 1)
    gaps = [times[i] - times[i - limit] for i in range(limit, len(times))]
    return {"calls": len(times), "span_seconds": round(span, 2), "allowed": allowed,
            "used_over_run": round(len(times) / allowed, 4),
            "slot_reuse": round(window / (sum(gaps) / len(gaps)), 4) if gaps else None,
            "min_gap_seconds": round(min(gaps), 3) if gaps else None}


def run(services: backends.Services, *, changes: int, poll_seconds: float,
        worker_threads: int, latency: float, timeout: float) -> dict[str, Any]:
    emu = Emulators()
    emu.hubspot.rate_limit, emu.hubspot.window_seconds = LIMIT, WINDOW
    emu.start()
    try:
        with deploy.running("redis", services, emu, poll_seconds=poll_seconds,
                            worker_threads=worker_threads) as deployment:
            engine = make_engine(deployment.database_url)
            with emu.hubspot.lock:
                emu.hubspot.admitted_at.clear()
                emu.hubspot.rate_limited = 0
                emu.hubspot.latency_seconds = latency
            started = time.monotonic()
            _store(deployment.database_url, changes)
            deadline = started + timeout
            while time.monotonic() < deadline and not _finished(_jobs(engine), changes):
                time.sleep(0.2)
            wall = time.monotonic() - started
            counts = _jobs(engine)
            memory = deployment.peak_memory_mb()
            engine.dispose()
        with emu.hubspot.lock:
            admitted = list(emu.hubspot.admitted_at)
            refused = emu.hubspot.rate_limited
    finally:
        emu.stop()
    figures = budget(admitted)
    first = min(admitted) - started if admitted else None
    return {"changes": changes, "jobs": counts,
            "wall_seconds": round(wall, 1),
            "first_call_after_seconds": round(first, 2) if first is not None else None,
            "hubspot_429": refused, "hubspot_latency_seconds": latency, **figures,
            "peak_memory_mb": memory}
