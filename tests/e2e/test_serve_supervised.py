"""``privasync serve`` as README starts it (SQLite, no broker): the API and the background
work run as two processes it supervises. An opt-out still reaches the other systems; a
background process SIGKILLed is started again and counted in /metrics while the API keeps
answering; an API process SIGKILLed is started again on the same socket; SIGTERM stops
everything cleanly; a port in use is one line; ``--single-process`` keeps one process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from privasync.demo.stack import WEBHOOK_TOKEN, Emulators
from tests.conftest import make_database
from tests.e2e.test_processes import _ready, environment, free_port, start
from tests.timing import scaled, wait_until

EMAIL = "two.processes@example.org"


@pytest.fixture
def emulators() -> Iterator[Emulators]:
    emu = Emulators().start()
    yield emu
    emu.stop()


def children(pid: int) -> dict[str, int]:
    """The supervisor's children by role (``api``, ``background``)."""
    found: dict[str, int] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            role = "api" if b"--api-only" in argv else "background" if b"scheduler" in argv \
                else "other"
            found[role] = int(child)
    return found


def restarts(url: str, process: str) -> float:
    for line in requests.get(f"{url}/metrics", timeout=scaled(10)).text.splitlines():
        if line.startswith("privasync_process_restarts_total{") and \
                f'process="{process}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_serve_supervises_its_api_and_background_processes(emulators: Emulators,
                                                           tmp_path: Path):
    env = environment(emulators, make_database("sqlite", tmp_path), "", tmp_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    serve = start(["serve", "--port", str(port)], env, tmp_path / "serve.log")
    try:
        # (the supervisor's socket takes connections before the API process answers them)
        wait_until("the API and the background ready", lambda: _ready(url), timeout=90,
                   tolerate=(requests.Timeout,))
        roles = children(serve.pid)
        assert set(roles) == {"api", "background"}, roles
        emulators.mailchimp.configure_webhook(f"{url}/webhooks/mailchimp/{WEBHOOK_TOKEN}")
        contact = emulators.hubspot.create_contact(EMAIL)
        emulators.hubspot.ui_set_subscription(contact, 102, True)
        emulators.mailchimp.add_member(EMAIL)

        os.kill(roles["background"], signal.SIGKILL)
        emulators.mailchimp.user_unsubscribe(EMAIL)  # taken in by the API meanwhile
        wait_until("the background process started again and counted", lambda: restarts(
            url, "background") == 1.0, timeout=60)
        wait_until("HubSpot offers unsubscribed by the new background process", lambda: (
            emulators.hubspot.subscription_status(EMAIL, 102) == "NOT_SUBSCRIBED"), 60)

        api = children(serve.pid)["api"]
        os.kill(api, signal.SIGKILL)
        # The socket stays open in the supervisor: a request made meanwhile waits in its
        # backlog for the new API process rather than being refused.
        answer = requests.get(f"{url}/healthz", timeout=scaled(30))
        assert answer.status_code == 200
        assert children(serve.pid).get("api") not in (None, api)
        assert restarts(url, "api") == 1.0
        assert children(serve.pid)["background"] != roles["background"]
    finally:
        serve.send_signal(signal.SIGTERM)
        code = serve.wait(timeout=scaled(40))
    log = (tmp_path / "serve.log").read_text()
    assert code == 0, log[-3000:]
    assert '"process": "background", "exit": "SIGKILL"' in log
    assert '"process": "api", "exit": "SIGKILL"' in log
    assert "example.org" not in log and "Traceback" not in log
    # the supervisor, its API process, and the API process started again
    assert log.count('"event": "privasync listening"') == 3


def test_a_port_in_use_is_one_line_and_exit_2(emulators: Emulators, tmp_path: Path):
    env = environment(emulators, make_database("sqlite", tmp_path), "", tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "privasync", "serve", "--port",
                               str(port)], env=env, capture_output=True, text=True,
                              timeout=scaled(60))
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"Error: cannot listen on 127.0.0.1:{port}: Address already in use; choose another "
        "--port or stop what uses it"]


def test_single_process_keeps_everything_in_one_process(emulators: Emulators,
                                                        tmp_path: Path):
    env = environment(emulators, make_database("sqlite", tmp_path), "", tmp_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    serve = start(["serve", "--port", str(port), "--single-process"], env,
                  tmp_path / "serve.log")
    try:
        wait_until("ready", lambda: _ready(url), timeout=90)
        assert children(serve.pid) == {}
    finally:
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=scaled(40)) == 0
    assert '"runs": "api, applier, scheduler and worker"' in (tmp_path / "serve.log").read_text()
