"""`privasync health --component ...`: what a container's liveness probe runs, against
real processes writing real heartbeats."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import make_database
from tests.e2e.conftest import wait_for
from tests.timing import scaled

MAPPINGS = Path(__file__).parents[2] / "mappings"


def _env(database: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("PRIVASYNC_")},
            "PRIVASYNC_DATABASE_URL": database, "PRIVASYNC_MAPPINGS_DIR": str(MAPPINGS),
            "PRIVASYNC_VAR_DIR": str(tmp_path), "PRIVASYNC_SECRET_KEY": "h" * 32,
            "PRIVASYNC_PARTNER_CONTACT_CENTRE_SECRET": "s" * 16,
            "PRIVASYNC_WORKER__HEARTBEAT_SECONDS": "1", **extra}


def health(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "privasync", "health",
                           *args], env=env, capture_output=True, text=True, timeout=scaled(60))


def _start(env: dict[str, str], tmp_path: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "privasync", *args],
                            env=env, stdout=(tmp_path / "proc.log").open("wb"),
                            stderr=subprocess.STDOUT)


def test_each_loop_of_a_running_scheduler_is_healthy_and_a_frozen_one_is_named(tmp_path):  # type: ignore[no-untyped-def]
    env = _env(make_database("sqlite", tmp_path), tmp_path)
    # On one machine without a broker the scheduler process runs the worker and the
    # applier too: three loops, three heartbeats.
    proc = _start(env, tmp_path, "scheduler")
    try:
        wait_for("the scheduler's heartbeat", lambda: health(
            env, "--component", "scheduler").returncode == 0, timeout=30)
        for component in ("worker", "applier"):  # each loop beats on its own first tick
            wait_for(f"the {component}'s heartbeat", lambda c=component: health(
                env, "--component", c).returncode == 0, timeout=30)
            done = health(env, "--component", component)
            assert done.stdout.startswith(f"{component}: heartbeat from host ")
        proc.send_signal(signal.SIGSTOP)  # alive but stuck: what a liveness probe is for
        try:
            time.sleep(3.5)
            stale = health(env, "--component", "scheduler", "--stale-after", "3")
        finally:
            proc.send_signal(signal.SIGCONT)
        assert stale.returncode == 1
        assert stale.stderr.strip().splitlines()[-1].startswith(
            "Error: scheduler: last heartbeat from host ")
        assert "(stale after 3s)" in stale.stderr and "Traceback" not in stale.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=scaled(30)) == 0, (tmp_path / "proc.log").read_text()[-2000:]
    # A process that stopped cleanly takes its heartbeat with it.
    gone = health(env, "--component", "worker")
    assert gone.returncode == 1
    assert gone.stderr.strip() == f"Error: worker: no heartbeat from host {os.uname().nodename}"


def test_a_heartbeat_on_another_host_counts_only_when_asked_for(tmp_path):  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from core import runtime
    from core.db import make_engine

    url = make_database("sqlite", tmp_path)
    engine = make_engine(url)
    runtime.beat(engine, "worker:other-pod:7", datetime.now(UTC))
    engine.dispose()
    env = _env(url, tmp_path)
    fresh = ("--stale-after", "600")  # a busy machine may take seconds per call
    assert health(env, "--component", "worker", *fresh).returncode == 1
    assert health(env, "--component", "worker", "--host", "other-pod", *fresh).returncode == 0
    assert health(env, "--component", "worker", "--host", "*", *fresh).returncode == 0


@pytest.mark.parametrize("database", [
    "postgresql+psycopg://postgres@127.0.0.1:1/privasync", "sqlite:///{tmp}/missing/p.db",
    "nonsense://x"])
def test_an_unreachable_database_is_exit_2_in_one_line(database, tmp_path):  # type: ignore[no-untyped-def]
    done = health(_env(database.format(tmp=tmp_path), tmp_path), "--component", "worker")
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.startswith("Error: database: ") and "Traceback" not in done.stderr
    assert not (tmp_path / "missing").exists()


def test_a_database_without_a_schema_is_exit_2(tmp_path):  # type: ignore[no-untyped-def]
    (tmp_path / "empty.db").write_bytes(b"")
    done = health(_env(f"sqlite:///{tmp_path}/empty.db", tmp_path), "--component", "applier")
    assert (done.returncode, done.stderr.strip()) == (
        2, "Error: database: unreachable or without a schema (OperationalError)")
