"""The same faults with RabbitMQ as the broker, on a node of the test's own."""

from __future__ import annotations

import time

import sqlalchemy as sa

from core.db import jobs
from tests.faults.harness import Deployment, assert_end_state, wait_until
from tests.faults.test_processes_killed import kill_a_worker_mid_batch


def _pending(dep: Deployment) -> int:
    with dep.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(jobs).where(
            jobs.c.status == "pending")).scalar_one())


def test_rabbitmq_a_worker_killed_mid_batch(dep_rabbitmq: Deployment) -> None:
    kill_a_worker_mid_batch(dep_rabbitmq, "RabbitMQ: worker SIGKILLed mid-batch")


def test_rabbitmq_node_lost_and_back_empty_while_jobs_are_queued(dep_rabbitmq: Deployment) -> None:
    dep = dep_rabbitmq
    people = dep.seed(8, 8, 4)
    dep.pause("worker1", "worker2")
    dep.unsubscribe(people)
    wait_until("jobs queued", lambda: _pending(dep) >= 4, timeout=30)
    dep.broker.restart_empty()
    back = time.monotonic()
    dep.resume("worker1", "worker2")
    assert_end_state(dep, people, "RabbitMQ node back empty, jobs queued", back)
