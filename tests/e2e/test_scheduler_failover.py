"""Two schedulers, one leading: `privasync serve`, two workers and two schedulers as
separate processes on PostgreSQL and Redis. SIGKILL the leading scheduler and the other
takes the lease within its time, and does the leader's work (the Salesforce poller)."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from core.db import heartbeats, make_engine
from core.runtime import lease_holder
from privasync.demo.stack import Emulators, hubspot_subscriptions
from tests.conftest import BROKER_NAMESPACE, clear_broker, make_database
from tests.e2e.conftest import wait_for
from tests.e2e.test_processes import _mappings, _ready, emulators, environment, free_port, start
from tests.timing import scaled

__all__ = ["emulators"]  # the fixture, shared with test_processes

EMAIL = "failover.person@example.org"
LEASE = 4.0
TICK = 0.5


def test_a_sigkilled_leading_scheduler_is_replaced_within_the_lease(
        emulators: Emulators, redis_url: str, tmp_path: Path):
    clear_broker(redis_url)
    database = make_database("postgresql", tmp_path)
    env = environment(emulators, database, redis_url, tmp_path)
    env |= {"PRIVASYNC_BROKER_NAMESPACE": BROKER_NAMESPACE,
            "PRIVASYNC_SCHEDULER__LEASE_SECONDS": str(LEASE),
            "PRIVASYNC_APPLIER__LEASE_SECONDS": str(LEASE),
            "PRIVASYNC_WORKER__DISPATCH_SECONDS": str(TICK)}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    procs = {"serve": start(["serve", "--port", str(port)], env, tmp_path / "serve.log")}
    procs |= {f"worker{i}": start(["worker", "--threads", "2"], env, tmp_path / f"w{i}.log")
              for i in (1, 2)}
    schedulers = {f"scheduler{i}": start(["scheduler"], env, tmp_path / f"s{i}.log")
                  for i in (1, 2)}
    engine = make_engine(database)
    try:
        wait_for("all parts ready", lambda: _ready(url), timeout=90)  # five processes start
        wait_for("a scheduler leads", lambda: _leader(engine) is not None)
        # The standby beats too (its liveness probe must pass while it waits).
        wait_for("both schedulers beat", lambda: {p.pid for p in schedulers.values()}
                 <= _beating(engine, "scheduler"))
        _seed(emulators, url)
        leader = _leader(engine)
        assert leader is not None
        victim = next(n for n, p in schedulers.items() if leader.endswith(f":{p.pid}"))
        survivor = next(p for n, p in schedulers.items() if n != victim)
        schedulers[victim].kill()  # SIGKILL: no clean stop, the lease is not released
        killed = time.monotonic()
        wait_for("the other scheduler leads", lambda: (_leader(engine) or "").endswith(
            f":{survivor.pid}"), timeout=LEASE + 15)
        takeover = time.monotonic() - killed
        print(f"scheduler takeover {takeover:.1f} s after SIGKILL "  # noqa: T201
              f"(lease {LEASE:.0f} s, dispatch tick {TICK} s)")
        assert takeover <= LEASE + TICK + 3  # the lease, one look, room for a busy machine
        # The new leader does what only the leader does: the Salesforce poller.
        sf = emulators.salesforce
        sf.ui_set_opt_out(sf.find_by_email(EMAIL)[0], True)
        wait_for("HubSpot unsubscribed from the Salesforce opt-out", lambda: all(
            emulators.hubspot.subscription_status(EMAIL, s) == "NOT_SUBSCRIBED"
            for s in (101, 102)), timeout=30)
    finally:
        engine.dispose()
        running = [p for p in [*procs.values(), *schedulers.values()] if p.poll() is None]
        for proc in running:
            proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(timeout=scaled(30)) for proc in running]
    logs = "".join(f.read_text() for f in tmp_path.glob("*.log"))
    assert codes == [0] * len(codes), logs[-2000:]
    assert "example.org" not in logs and "Traceback" not in logs


def _seed(emu: Emulators, url: str) -> None:
    """A customer known to HubSpot and Salesforce, subscribed, applied by privasync."""
    emu.hubspot.configure_webhooks(f"{url}/webhooks/hubspot", hubspot_subscriptions(_mappings()))
    contact = emu.hubspot.create_contact(EMAIL)
    emu.hubspot.ui_set_subscription(contact, 101, True)
    emu.hubspot.ui_set_subscription(contact, 102, True)
    emu.salesforce.create_contact(EMAIL, last_name="Customer")
    emu.hubspot.flush_webhooks()


def _leader(engine) -> str | None:  # type: ignore[no-untyped-def]
    return lease_holder(engine, "scheduler", datetime.now(UTC))


def _beating(engine, component: str) -> set[int]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        names = conn.execute(select(heartbeats.c.name, heartbeats.c.at)).all()
    now = datetime.now(UTC)
    return {int(n.rsplit(":", 1)[1]) for n, at in names
            if n.startswith(f"{component}:") and (now - at).total_seconds() < 3}
