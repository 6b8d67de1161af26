"""The supervisor behind ``privasync serve`` on one machine, on real child processes: a
child that dies is started again after the backoff and counted, the other left alone; a
child exiting with the configuration status stops everything with that status; a stop
sends SIGTERM to every child and kills one still running after the shutdown timeout."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from privasync.cli.processes import dispatch_elsewhere
from privasync.cli.supervisor import CONFIG_ERROR, Child, Supervisor, exit_text, listen
from tests.timing import wait_until

SLEEPER = "import time\nwhile True: time.sleep(0.05)"


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def stubborn(ready: Path) -> list[str]:
    """A child that ignores SIGTERM (a drain that never ends)."""
    return python("import pathlib, signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                  f"pathlib.Path({str(ready)!r}).touch()\nwhile True: time.sleep(0.05)")


class Run:
    """A supervisor running in a thread of its own (signals go to the main thread's handler
    only, so the test stops it with ``stop``)."""

    def __init__(self, children: list[Child], *, shutdown_seconds: float = 5.0) -> None:
        self.restarts: list[tuple[str, int]] = []
        self.supervisor = Supervisor(children, env=dict(os.environ),
                                     shutdown_seconds=shutdown_seconds,
                                     delay=lambda n: 0.1 * n,
                                     restarted=lambda *a: self.restarts.append(a))
        self.status: int | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.status = self.supervisor.run()

    def pid(self, name: str) -> int | None:
        [child] = [c for c in self.supervisor.children if c.name == name]
        return child.proc.pid if child.proc is not None else None


@pytest.fixture
def no_signal_handlers(monkeypatch: pytest.MonkeyPatch) -> None:
    """``run`` installs SIGTERM/SIGINT handlers, which only the main thread may do."""
    monkeypatch.setattr(signal, "signal", lambda *_: signal.SIG_DFL)


@pytest.fixture
def running(no_signal_handlers: None) -> Iterator[list[Run]]:
    runs: list[Run] = []
    yield runs
    for run in runs:
        run.supervisor.stop()
        run.thread.join(timeout=30)


def start(runs: list[Run], children: list[Child], **kwargs: float) -> Run:
    run = Run(children, **kwargs)
    runs.append(run)
    run.thread.start()
    wait_until("every child started", lambda: all(
        run.pid(c.name) is not None for c in children), 10)
    return run


def test_a_child_that_dies_is_started_again_and_counted_and_the_other_left_alone(
        running: list[Run]) -> None:
    run = start(running, [Child("api", python(SLEEPER)), Child("background", python(SLEEPER))])
    api, background = run.pid("api"), run.pid("background")
    assert background is not None
    os.kill(background, signal.SIGKILL)
    wait_until("the background process started again", lambda: run.pid("background") not in
               (None, background), 10)
    assert run.restarts == [("background", -signal.SIGKILL)]
    assert run.pid("api") == api  # not restarted with it
    run.supervisor.stop()
    run.thread.join(timeout=30)
    assert run.status == 0


def test_quick_deaths_in_a_row_wait_longer_each_time(running: list[Run]) -> None:
    run = start(running, [Child("background", python("raise SystemExit(1)"))])
    wait_until("three restarts", lambda: len(run.restarts) >= 3, 20)
    [child] = run.supervisor.children
    assert child.quick_exits >= 3 and run.restarts[0] == ("background", 1)


def test_a_child_stopped_by_its_configuration_stops_everything_with_its_status(
        running: list[Run], tmp_path: Path) -> None:
    stopped = tmp_path / "stopped"
    api = python("import pathlib, signal, sys, time\n"
                 f"signal.signal(signal.SIGTERM, lambda *_: (pathlib.Path({str(stopped)!r})"
                 ".touch(), sys.exit(0)))\nwhile True: time.sleep(0.05)")
    run = start(running, [Child("api", api),
                          Child("background", python("import time; time.sleep(1); "
                                                     f"raise SystemExit({CONFIG_ERROR})"))])
    run.thread.join(timeout=30)
    assert run.status == CONFIG_ERROR
    assert run.restarts == []  # never started again: it would fail the same way
    assert stopped.exists()  # the other was told to stop, and did


def test_a_stop_kills_a_child_still_running_after_the_shutdown_timeout(
        running: list[Run], tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    run = start(running, [Child("background", stubborn(ready))], shutdown_seconds=1.0)
    wait_until("the child ignores SIGTERM", ready.exists, 10)
    pid = run.pid("background")
    run.supervisor.stop()
    run.thread.join(timeout=30)
    assert run.status == 0 and not run.thread.is_alive()
    assert pid is not None and not Path(f"/proc/{pid}").exists()  # killed and reaped


def test_exit_text_names_the_signal() -> None:
    assert exit_text(-9) == "SIGKILL" and exit_text(1) == "exit 1"


def test_a_nudge_runs_the_background_dispatch_once_per_read_and_never_blocks_the_api():
    hints, nudges = os.pipe()
    try:
        ran = threading.Event()
        runs: list[int] = []

        def dispatch() -> None:
            runs.append(1)
            ran.set()

        listen(hints, dispatch)
        dispatch_elsewhere(nudges)(["mailchimp"])
        wait_until("the nudge taken", ran.is_set, timeout=10)
        assert len(runs) == 1
        # A reader that has stopped (restarting) leaves the pipe to fill: the API's end
        # drops the hint instead of waiting.
        stalled, writer = os.pipe()
        nudge = dispatch_elsewhere(writer)
        for _ in range(70_000):  # more than a pipe's 64 KiB
            nudge(["hubspot"])
        os.close(stalled)
        os.close(writer)
    finally:
        os.close(nudges)

