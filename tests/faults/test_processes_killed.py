"""Processes killed with SIGKILL in the middle of their work: no shutdown, no release."""

from __future__ import annotations

import time

import sqlalchemy as sa

from core.db import jobs
from tests.faults.harness import Deployment, assert_end_state, wait_until
from tests.timing import scaled


def _holder(dep: Deployment, destination: str) -> str | None:
    with dep.engine.connect() as conn:
        return conn.execute(sa.select(jobs.c.claimed_by).where(
            jobs.c.destination == destination, jobs.c.status == "running").limit(1)
        ).scalar_one_or_none()


def kill_a_worker_mid_batch(dep: Deployment, case: str) -> None:
    """SIGKILL the worker holding the Mailchimp batch while Mailchimp sits on the call."""
    people = dep.seed(8, 8, 4)
    dep.emu.mailchimp.latency_seconds = 5.0  # Mailchimp holds the batch: the worker is mid-call
    dep.unsubscribe(people)
    wait_until("a worker holds the Mailchimp batch", lambda: _holder(dep, "mailchimp") is not None,
               timeout=30)
    holder = _holder(dep, "mailchimp") or ""
    victim = next(name for name, proc in dep.procs.items()
                  if name.startswith("worker") and holder.endswith(f":{proc.pid}"))
    dep.kill(victim)
    dep.emu.mailchimp.latency_seconds = 0.0
    assert_end_state(dep, people, case, time.monotonic())


def test_a_worker_killed_mid_batch(dep: Deployment) -> None:
    kill_a_worker_mid_batch(dep, "worker SIGKILLed mid-batch")


def _writing_transactions(dep: Deployment) -> int:
    """Transactions on privasync's database that have written and not yet committed."""
    with dep.engine.connect() as conn:
        return int(conn.execute(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL")).scalar_one())


def test_the_applier_killed_while_it_writes(dep: Deployment) -> None:
    # A backlog only the applier can work through: workers paused, the API just stores.
    dep.pause("applier", "worker1", "worker2")
    people = dep.seed(30, 10, 10, settle=False)
    dep.unsubscribe(people)
    dep.emu.hubspot.flush_webhooks(timeout=scaled(60))
    dep.emu.mailchimp.flush_webhooks(timeout=scaled(60))
    dep.resume("applier")
    wait_until("the applier inside its write transaction",
               lambda: _writing_transactions(dep) > 0, timeout=30)
    dep.kill("applier")
    dep.start("applier")  # what the orchestrator does; it waits out the dead one's lease
    dep.resume("worker1", "worker2")
    assert_end_state(dep, people, "applier SIGKILLed mid-transaction", time.monotonic())


def _scheduler_leader(dep: Deployment) -> str | None:
    with dep.engine.connect() as conn:
        holder = conn.execute(sa.text(
            "SELECT holder FROM leases WHERE name = 'scheduler' AND expires_at > now()")
        ).scalar_one_or_none()
    if holder is None:
        return None
    return next((name for name, proc in dep.procs.items()
                 if name.startswith("scheduler") and holder.endswith(f":{proc.pid}")), None)


def test_the_active_scheduler_killed_while_another_waits(dep_two_schedulers: Deployment) -> None:
    dep = dep_two_schedulers
    people = dep.seed(4, 0, 4, leaving_salesforce=6)
    wait_until("a scheduler leads", lambda: _scheduler_leader(dep) is not None, timeout=30)
    leader = _scheduler_leader(dep)
    assert leader is not None
    dep.kill(leader)
    killed = time.monotonic()
    # Only the leader polls Salesforce and re-sends lost dispatches: both must resume.
    dep.unsubscribe(people)
    dep.redis.flushall()
    wait_until("the other scheduler leads", lambda: _scheduler_leader(dep) not in (None, leader),
               timeout=60)
    took_over = time.monotonic() - killed
    assert_end_state(dep, people, "active scheduler SIGKILLed", killed)
    print(f"[fault] standby scheduler took the lease {took_over:.1f} s after the kill")  # noqa: T201
