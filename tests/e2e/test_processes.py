"""The scaled-out shape: `privasync serve`, `worker` and `scheduler` as separate
processes sharing a broker (Redis, then RabbitMQ) and PostgreSQL, against the vendor
emulators."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from core.db import jobs, make_engine
from privasync.demo.stack import WEBHOOK_TOKEN, Emulators, hubspot_subscriptions
from tests.conftest import BROKER_NAMESPACE, make_database
from tests.e2e.conftest import BOTH_BROKERS, wait_for
from tests.timing import scaled

MAPPINGS = Path(__file__).parents[2] / "mappings"
EMAIL = "three.processes@example.org"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def emulators() -> Iterator[Emulators]:
    emu = Emulators().start()
    yield emu
    emu.stop()


def environment(emu: Emulators, database: str, broker: str, tmp_path: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("PRIVASYNC_")},
        "PRIVASYNC_DATABASE_URL": database, "PRIVASYNC_BROKER_URL": broker,
        "PRIVASYNC_MAPPINGS_DIR": str(MAPPINGS), "PRIVASYNC_VAR_DIR": str(tmp_path),
        "PRIVASYNC_SECRET_KEY": "process-test-secret-0123456789abcdef",
        "PRIVASYNC_HUBSPOT__BASE_URL": emu.hubspot.url,
        "PRIVASYNC_HUBSPOT__ACCESS_TOKEN": emu.hubspot.access_token,
        "PRIVASYNC_HUBSPOT__CLIENT_SECRET": emu.hubspot.client_secret,
        "PRIVASYNC_SALESFORCE__INSTANCE_URL": emu.salesforce.url,
        "PRIVASYNC_SALESFORCE__SESSION_ID": emu.salesforce.session_id,
        "PRIVASYNC_SALESFORCE__POLL_INTERVAL_SECONDS": "0.5",
        "PRIVASYNC_MAILCHIMP__BASE_URL": f"{emu.mailchimp.url}/3.0",
        "PRIVASYNC_MAILCHIMP__API_KEY": emu.mailchimp.api_key,
        "PRIVASYNC_MAILCHIMP__LIST_ID": emu.mailchimp.list_id,
        "PRIVASYNC_MAILCHIMP__WEBHOOK_TOKEN": WEBHOOK_TOKEN,
        "PRIVASYNC_WORKER__HEARTBEAT_SECONDS": "1",
        "PRIVASYNC_WORKER__DISPATCH_SECONDS": "1",
        "PRIVASYNC_PARTNER_CONTACT_CENTRE_SECRET": emu.partner.secret,
        "PRIVASYNC_PARTNER_CONTACT_CENTRE_URL": emu.partner.url + emu.partner.path,
    }


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    cli = [sys.executable, "-m", "privasync", *args]
    return subprocess.Popen(cli, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


@BOTH_BROKERS
def test_serve_worker_and_scheduler_as_separate_processes(emulators: Emulators,
                                                         broker: str, tmp_path: Path):
    env = environment(emulators, make_database("postgresql", tmp_path), broker, tmp_path)
    env["PRIVASYNC_BROKER_NAMESPACE"] = BROKER_NAMESPACE
    port = free_port()
    procs = [start(["serve", "--port", str(port)], env, tmp_path / "serve.log"),
             start(["worker", "--threads", "2"], env, tmp_path / "worker.log"),
             start(["scheduler"], env, tmp_path / "scheduler.log")]
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for("all parts ready", lambda: _ready(url), timeout=90)
        emulators.mailchimp.configure_webhook(f"{url}/webhooks/mailchimp/{WEBHOOK_TOKEN}")
        contact = emulators.hubspot.create_contact(EMAIL)
        emulators.hubspot.ui_set_subscription(contact, 102, True)
        emulators.mailchimp.add_member(EMAIL)
        emulators.mailchimp.user_unsubscribe(EMAIL)
        wait_for("HubSpot offers unsubscribed by the worker process", lambda: (
            emulators.hubspot.subscription_status(EMAIL, 102) == "NOT_SUBSCRIBED"))
        metrics = requests.get(f"{url}/metrics", timeout=scaled(10)).text
        assert 'privasync_events_received_total{outcome="applied",source="mailchimp"} 1.0' \
            in metrics
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(timeout=scaled(30)) for proc in procs]
    logs = "".join((tmp_path / f"{n}.log").read_text() for n in ("serve", "worker", "scheduler"))
    assert codes == [0, 0, 0], logs[-2000:]
    assert "example.org" not in logs and "Traceback" not in logs


def _ready(url: str) -> bool:
    try:
        return requests.get(f"{url}/readyz", timeout=scaled(2)).status_code == 200
    except requests.ConnectionError:
        time.sleep(0.1)
        return False


@BOTH_BROKERS
def test_a_sigkilled_workers_batch_is_delivered_by_another_within_the_lease(
        emulators: Emulators, broker: str, tmp_path: Path):
    database = make_database("postgresql", tmp_path)
    env = environment(emulators, database, broker, tmp_path)
    env |= {"PRIVASYNC_BROKER_NAMESPACE": BROKER_NAMESPACE,
            "PRIVASYNC_WORKER__LEASE_SECONDS": "3", "PRIVASYNC_WORKER__DISPATCH_SECONDS": "0.5"}
    port = free_port()
    procs = {"serve": start(["serve", "--port", str(port)], env, tmp_path / "serve.log"),
             "scheduler": start(["scheduler"], env, tmp_path / "scheduler.log")}
    workers = {f"worker{i}": start(["worker", "--threads", "2"], env, tmp_path / f"w{i}.log")
               for i in (1, 2)}
    url = f"http://127.0.0.1:{port}"
    engine = make_engine(database)
    try:
        wait_for("all parts ready", lambda: _ready(url), timeout=90)
        emulators.hubspot.configure_webhooks(f"{url}/webhooks/hubspot",
                                             hubspot_subscriptions(_mappings()))
        contact = emulators.hubspot.create_contact(EMAIL)
        emulators.hubspot.ui_set_subscription(contact, 102, True)
        emulators.mailchimp.add_member(EMAIL)
        emulators.mailchimp.latency_seconds = 20.0  # the batch hangs in Mailchimp's hands
        emulators.hubspot.ui_unsubscribe_all(contact)
        wait_for("a worker holds the Mailchimp batch", lambda: _holder(engine) is not None)
        holder = _holder(engine)
        victim = next(name for name, proc in workers.items() if holder.endswith(f":{proc.pid}"))
        workers[victim].kill()  # SIGKILL: no shutdown, no release
        killed = time.monotonic()
        emulators.mailchimp.latency_seconds = 0.0
        wait_for("Mailchimp unsubscribed by the other worker",
                 lambda: _job(engine)[0] == "done", timeout=30)
        recovered = time.monotonic() - killed
        status, attempts = _job(engine)
        assert attempts == 2
        assert (emulators.mailchimp.member(EMAIL) or {}).get("status") == "unsubscribed"
        print(f"killed worker's batch delivered {recovered:.1f} s after SIGKILL "  # noqa: T201
              "(lease 3 s, dispatch tick 0.5 s)")
        assert recovered < 3 + 0.5 + 5  # lease + one tick, with room for a busy machine
    finally:
        engine.dispose()
        for proc in [*procs.values(), *workers.values()]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [*procs.values(), *workers.values()]:
            proc.wait(timeout=scaled(30))


def _mappings():  # type: ignore[no-untyped-def]
    from core.mappings import load_mappings
    from privasync.app.taxonomy import data_categories

    return load_mappings(MAPPINGS, data_categories())


def _holder(engine) -> str | None:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(select(jobs.c.claimed_by).where(
            jobs.c.destination == "mailchimp", jobs.c.kind == "consent",
            jobs.c.status == "running")).scalar_one_or_none()


def _job(engine) -> tuple[str, int]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        row = conn.execute(select(jobs.c.status, jobs.c.attempts).where(
            jobs.c.destination == "mailchimp", jobs.c.kind == "consent")).one()
    return row.status, row.attempts
