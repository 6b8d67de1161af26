"""Dead letters end to end, on SQLite with the embedded broker and on PostgreSQL with
Redis: Salesforce's emulator refuses a write for good (400) or fails until a small
attempt budget is spent (500); the jobs are dead, listed, counted and fail readiness;
retried by the CLI and over the admin API, they deliver once Salesforce recovers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from sqlalchemy import select

from core.db import jobs, ledger, ledger_pending
from privasync.app.settings import RetrySettings
from privasync.cli.main import configure_logging, main
from privasync.demo.stack import Stack, start_stack
from privasync.emulators.http import Fault
from tests.api.conftest import issue_token
from tests.conftest import BROKER_NAMESPACE, clear_broker, make_database
from tests.e2e.conftest import seed, settle, sf_opted_out, wait_for
from tests.timing import scaled

MAPPINGS = Path(__file__).parents[2] / "mappings"
WRITE = "composite/sobjects"  # Salesforce's batch write, where consent lands
REFUSED = [{"message": "field integrity exception", "errorCode": "FIELD_INTEGRITY_EXCEPTION"}]
BROKEN = [{"message": "internal", "errorCode": "UNKNOWN_EXCEPTION"}]


@pytest.fixture(params=["sqlite", "postgresql"])
def failing(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    """A stack whose Salesforce gets two attempts, and whose readiness fails on dead jobs."""
    broker = ""
    if request.param == "postgresql":
        broker = request.getfixturevalue("redis_url")
        clear_broker(broker)
    running = start_stack(
        database_url=make_database(request.param, tmp_path), var_dir=tmp_path,
        broker_url=broker, broker_namespace=BROKER_NAMESPACE, mappings_dir=MAPPINGS,
        poll_seconds=0.3, overrides={
            "readyz_fail_on_dead_jobs": True,
            "retry": {"salesforce": RetrySettings(max_attempts=2, min_backoff_seconds=0.1,
                                                  max_backoff_seconds=0.2)}})
    yield running
    running.stop()


def dead_jobs(stack: Stack) -> list[int]:
    with stack.container.engine.connect() as conn:
        return list(conn.execute(select(jobs.c.id).where(jobs.c.status == "dead")
                                 .order_by(jobs.c.id)).scalars())


def unsubscribe(stack: Stack, contact: str) -> None:
    stack.emulators.hubspot.ui_unsubscribe_all(contact)
    stack.emulators.hubspot.flush_webhooks()


def cli(stack: Stack, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str]:
    settings = stack.container.settings
    monkeypatch.setenv("PRIVASYNC_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("PRIVASYNC_VAR_DIR", str(settings.var_dir))
    try:
        result = CliRunner().invoke(main, ["--log-level", "WARNING", "jobs", *args])
    finally:
        configure_logging("WARNING")
    return result.exit_code, result.output


def ready(stack: Stack) -> requests.Response:
    return requests.get(f"{stack.url}/readyz", timeout=scaled(10))


def dead_metric(stack: Stack) -> float:
    text = requests.get(f"{stack.url}/metrics", timeout=scaled(10)).text
    line = next(ln for ln in text.splitlines()
                if ln.startswith('privasync_jobs_dead{destination="salesforce"}'))
    return float(line.rsplit(" ", 1)[1])


def retried_by(stack: Stack) -> list[str]:
    with stack.container.engine.connect() as conn:
        return [json.loads(r.detail)["actor"] for table in (ledger, ledger_pending)
                for r in conn.execute(select(table.c.detail)
                                      .where(table.c.kind == "jobs.retried"))]


def test_dead_jobs_are_listed_counted_and_delivered_once_retried(
        failing: Stack, monkeypatch: pytest.MonkeyPatch):
    stack, emu = failing, failing.emulators.salesforce
    refused, broken = seed(stack, "refused@example.org"), seed(stack, "broken@example.org")
    settle(stack)
    assert ready(stack).status_code == 200 and dead_metric(stack) == 0

    emu.inject(Fault(400, REFUSED, path_pattern=WRITE))
    unsubscribe(stack, refused)
    wait_for("a refused write is dead at once", lambda: len(dead_jobs(stack)) == 1)
    emu.inject(Fault(500, BROKEN, path_pattern=WRITE), Fault(500, BROKEN, path_pattern=WRITE))
    unsubscribe(stack, broken)
    wait_for("a failing write is dead after two attempts", lambda: len(dead_jobs(stack)) == 2)
    first, second = dead_jobs(stack)
    assert not sf_opted_out(stack, "refused@example.org")
    assert not sf_opted_out(stack, "broken@example.org")

    code, out = cli(stack, monkeypatch, "list", "--dead", "--format", "json")
    listed = json.loads(out)
    assert code == 0 and [j["id"] for j in listed] == [first, second]
    assert [(j["destination"], j["kind"], j["attempts"], j["last_error_class"], j["note"])
            for j in listed] == [
        ("salesforce", "consent", 1, "field_integrity_exception", "permanent error"),
        ("salesforce", "consent", 2, "http_500", "attempts exhausted")]
    assert all(j["subject_id"] and j["created_at"] and j["last_attempt_at"] for j in listed)
    assert "example.org" not in out
    assert dead_metric(stack) == 2
    answer = ready(stack)
    assert answer.status_code == 503 and "dead_jobs" in answer.json()["failing"]
    assert answer.json()["checks"]["dead_jobs"]["reason"] == "dead jobs: salesforce 2"

    code, out = cli(stack, monkeypatch, "retry", str(first))
    assert code == 0 and "1 job(s) sent back" in out, out
    wait_for("the refused person opted out after the retry",
             lambda: sf_opted_out(stack, "refused@example.org"))
    token = issue_token(stack, "night-ops", "jobs:read", "jobs:write")
    headers = {"Authorization": f"Bearer {token}"}
    page = requests.get(f"{stack.url}/api/v1/jobs", params={"dead": "true"}, headers=headers,
                        timeout=scaled(10)).json()
    assert [j["id"] for j in page["jobs"]] == [second] and page["next_cursor"] is None
    sent = requests.post(f"{stack.url}/api/v1/jobs/retry-dead", headers=headers,
                         json={"destination": "salesforce"}, timeout=scaled(10))
    assert sent.status_code == 200 and sent.json() == {"retried": [second], "superseded": {}}
    wait_for("the other person opted out after the retry",
             lambda: sf_opted_out(stack, "broken@example.org"))
    settle(stack)
    assert dead_jobs(stack) == [] and dead_metric(stack) == 0
    assert ready(stack).status_code == 200
    assert sorted(retried_by(stack)) == ["cli", "night-ops"]


@pytest.mark.parametrize("failing", ["sqlite"], indirect=True)
def test_retrying_an_unknown_or_live_job_is_one_line_and_exit_2(
        failing: Stack, monkeypatch: pytest.MonkeyPatch):
    code, out = cli(failing, monkeypatch, "retry", "424242")
    assert code == 2 and out.strip() == "Error: no job 424242"
    seed(failing, "live@example.org")
    settle(failing)
    with failing.container.engine.connect() as conn:
        done = conn.execute(select(jobs.c.id).where(jobs.c.status == "done")).scalars().first()
    assert done is not None
    code, out = cli(failing, monkeypatch, "retry", str(done))
    assert code == 2 and out.strip() == f"Error: job {done} is done, not dead: nothing to retry"
    code, out = cli(failing, monkeypatch, "retry")
    assert code == 2 and "name one JOB_ID or --all-dead" in out
    code, out = cli(failing, monkeypatch, "list", "--dead", "--status", "pending")
    assert code == 2 and len(out.strip().splitlines()) == 1
