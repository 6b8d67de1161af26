"""What deployment monitoring calls: /healthz, /readyz, /metrics."""

from __future__ import annotations

import re

import requests

from privasync.demo.stack import Stack
from tests.e2e.conftest import mc_status, seed, settle, wait_for
from tests.timing import scaled


def test_healthz_says_alive(embedded: Stack):
    response = requests.get(f"{embedded.url}/healthz", timeout=scaled(10))
    assert response.status_code == 200 and response.json() == {"status": "alive"}


def test_readyz_is_200_when_every_part_is_up(embedded: Stack):
    wait_for("a worker heartbeat", lambda: requests.get(
        f"{embedded.url}/readyz", timeout=scaled(10)).status_code == 200)
    body = requests.get(f"{embedded.url}/readyz", timeout=scaled(10)).json()
    assert body["failing"] == [] and body["checks"]["broker"]["kind"] == "embedded"
    assert body["checks"]["mappings"]["destinations"] == [
        "hubspot", "mailchimp", "partner:contact_centre", "salesforce"]


def test_readyz_is_503_naming_the_worker_when_it_stops(embedded: Stack):
    embedded.container.stop_background()
    response = requests.get(f"{embedded.url}/readyz", timeout=scaled(10))
    assert response.status_code == 503
    assert response.json()["failing"] == ["worker"]
    assert response.json()["checks"]["worker"]["reason"] == "no worker has reported"


def test_metrics_show_events_jobs_latency_and_backlog(embedded: Stack):
    contact = seed(embedded, "metrics.person@example.org")
    embedded.emulators.hubspot.ui_unsubscribe_all(contact)
    wait_for("Mailchimp unsubscribed",
             lambda: mc_status(embedded, "metrics.person@example.org") == "unsubscribed")
    settle(embedded)
    text = requests.get(f"{embedded.url}/metrics", timeout=scaled(10)).text
    applied = re.search(r'privasync_events_received_total\{outcome="applied",source="hubspot"\}'
                        r" (\d+)", text)
    assert applied is not None and int(applied.group(1)) >= 1
    assert 'privasync_job_runs_total{destination="mailchimp",outcome="done"}' in text
    assert _value(text, 'privasync_propagation_seconds_count{destination="mailchimp"}') >= 1
    assert _value(text, "privasync_inbox_pending_rows") == 0
    assert _value(text, "privasync_inbox_failed_rows") == 0
    assert "privasync_jobs_pending" in text
    # Salesforce's daily allocation as privasync last read it (the emulator's 15,000).
    assert _value(text, 'privasync_vendor_allocation{destination="salesforce"}') == 15_000
    assert 0 < _value(text, 'privasync_vendor_allocation_remaining{destination="salesforce"}'
                      ) < 15_000
    assert _value(text, 'privasync_vendor_allocation_reserve{destination="salesforce"}') == 1_500
    assert "metrics.person" not in text


def _value(text: str, series: str) -> float:
    line = next((ln for ln in text.splitlines() if ln.startswith(series + " ")), None)
    assert line is not None, f"{series} not exported"
    return float(line.rsplit(" ", 1)[1])


def test_readyz_names_the_broker_when_redis_is_unreachable(sqlite_url: str, tmp_path):  # type: ignore[no-untyped-def]
    from pathlib import Path

    from pydantic import SecretStr

    from privasync.app.bootstrap import build
    from privasync.app.settings import Settings
    from privasync.demo.stack import AppServer

    settings = Settings(database_url=sqlite_url, broker_url="redis://127.0.0.1:1/0",
                        var_dir=tmp_path, secret_key=SecretStr("x" * 32),
                        mappings_dir=Path(__file__).parents[2] / "mappings")
    container = build(settings, environ={"PRIVASYNC_PARTNER_CONTACT_CENTRE_SECRET": "s" * 16})
    server = AppServer(container).start()
    try:
        body = requests.get(f"{server.url}/readyz", timeout=scaled(10))
        assert body.status_code == 503
        assert body.json()["failing"] == ["broker", "worker"]
        assert body.json()["checks"]["broker"]["reason"] == "ConnectionError"
    finally:
        server.stop()
        container.close()


def test_readyz_and_metrics_answer_while_a_writer_holds_sqlites_write_lock(embedded: Stack):
    wait_for("a worker heartbeat", lambda: requests.get(
        f"{embedded.url}/readyz", timeout=scaled(10)).status_code == 200)
    writer = embedded.container.engine.connect()
    writer.begin()  # BEGIN IMMEDIATE: what a long write transaction holds
    try:
        # Readers never queue for the write lock: with it held for the whole call, both
        # answer (a reader taking the lock would wait out SQLite's 30 s busy timeout).
        ready = requests.get(f"{embedded.url}/readyz", timeout=scaled(10))
        metrics = requests.get(f"{embedded.url}/metrics", timeout=scaled(10))
    finally:
        writer.rollback()
        writer.close()
    assert ready.json()["checks"]["database"]["ok"] is True
    assert metrics.status_code == 200 and "privasync_inbox_pending_rows" in metrics.text


def _rabbitmq_readiness(url: str, sqlite_url: str, tmp_path):  # type: ignore[no-untyped-def]
    from pathlib import Path

    from pydantic import SecretStr

    from privasync.app.bootstrap import build
    from privasync.app.settings import Settings
    from privasync.demo.stack import AppServer
    from tests.conftest import BROKER_NAMESPACE

    settings = Settings(database_url=sqlite_url, broker_url=url, var_dir=tmp_path,
                        broker_namespace=BROKER_NAMESPACE, secret_key=SecretStr("x" * 32),
                        mappings_dir=Path(__file__).parents[2] / "mappings")
    container = build(settings, environ={"PRIVASYNC_PARTNER_CONTACT_CENTRE_SECRET": "s" * 16})
    server = AppServer(container).start()
    try:
        return requests.get(f"{server.url}/readyz", timeout=scaled(10)).json()
    finally:
        server.stop()
        container.close()


def test_readyz_checks_the_rabbitmq_connection(rabbitmq_url: str, sqlite_url: str, tmp_path):  # type: ignore[no-untyped-def]
    body = _rabbitmq_readiness(rabbitmq_url, sqlite_url, tmp_path)
    assert body["checks"]["broker"] == {"ok": True, "kind": "remote"}


def test_readyz_names_the_broker_when_rabbitmq_is_unreachable(rabbitmq_url: str,  # type: ignore[no-untyped-def]
                                                              sqlite_url: str, tmp_path):
    unreachable = rabbitmq_url.replace(":5672", ":1")
    body = _rabbitmq_readiness(unreachable, sqlite_url, tmp_path)
    assert body["failing"] == ["broker", "worker"]
    assert body["checks"]["broker"] == {"ok": False, "reason": "AMQPConnectionError"}
