"""The broker loses what it held: Redis killed and restarted empty (it keeps nothing on
disk, as the machine's own runs), and FLUSHALL in the middle of a burst. The database is
the truth: the scheduler's dispatch tick re-sends what the lost messages should have
started, and the workers reconnect."""

from __future__ import annotations

import time

import sqlalchemy as sa

from core.db import jobs
from tests.faults.harness import Deployment, assert_end_state, wait_until


def _jobs(dep: Deployment, status: str) -> int:
    with dep.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(jobs).where(
            jobs.c.status == status)).scalar_one())


def test_redis_killed_and_restarted_empty_while_jobs_are_queued(dep: Deployment) -> None:
    people = dep.seed(8, 8, 4)
    dep.pause("worker1", "worker2")
    dep.unsubscribe(people)
    wait_until("jobs queued for every destination", lambda: _jobs(dep, "pending") >= 4,
               timeout=30)
    dep.redis.restart_empty()
    dep.resume("worker1", "worker2")
    assert_end_state(dep, people, "Redis restarted empty, jobs queued", time.monotonic())


def test_redis_killed_and_restarted_empty_while_jobs_run(dep: Deployment) -> None:
    people = dep.seed(8, 8, 4)
    dep.emu.mailchimp.latency_seconds = 3.0
    dep.unsubscribe(people)
    wait_until("a delivery in flight", lambda: _jobs(dep, "running") > 0, timeout=30)
    dep.redis.kill()
    time.sleep(1.0)
    dep.redis.start()
    dep.emu.mailchimp.latency_seconds = 0.0
    assert_end_state(dep, people, "Redis restarted empty, jobs running", time.monotonic())


def test_flushall_during_a_burst(dep: Deployment) -> None:
    people = dep.seed(20, 10, 5)
    dep.unsubscribe(people)
    for _ in range(5):
        dep.redis.flushall()
        time.sleep(0.1)
    assert_end_state(dep, people, "FLUSHALL x5 during a burst", time.monotonic())
