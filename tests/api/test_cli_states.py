"""Every CLI command against a missing, a new (empty) and an unreachable database, a bad
URL, a SQLite file in a missing directory and a missing mappings directory: it works,
or it says in one line what to fix (exit 2); never a traceback, never a password."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from privasync.cli.main import main
from tests.conftest import make_database
from tests.timing import scaled

MAPPINGS = Path(__file__).parents[2] / "mappings"
PASSWORD = "hunter2-not-for-logs"
ID = str(uuid.uuid4())
FRESH = ("missing", "new", "nodir")
STATES = (*FRESH, "closed", "badurl", "nomappings")
LONG_RUNNING = ("serve", "scheduler", "applier")
READ_ONLY = ("status", "audit verify", "mappings diff", "mappings explain",
             "smoke", "requests list")  # never migrate


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Command:
    """``fresh``: exit code on a new database (missing, empty or in a missing directory);
    ``ready``: on a migrated one. ``db``/``maps``: whether it needs the database/mappings."""

    args: tuple[str, ...]
    fresh: int
    ready: int
    db: bool = True
    maps: bool = True


OUT = "{tmp}/out.json"


def commands() -> dict[str, Command]:
    out = OUT
    return {
        "serve": Command(("serve", "--port", "0"), 0, 0),
        "worker": Command(("worker",), 2, 2),  # no broker URL: it says so
        "scheduler": Command(("scheduler",), 0, 0),
        "applier": Command(("applier",), 0, 0),
        "db upgrade": Command(("db", "upgrade"), 0, 0, maps=False),
        "audit verify": Command(("audit", "verify"), 2, 0, maps=False),
        "status": Command(("status",), 2, 0, maps=False),
        "mappings validate": Command(("mappings", "validate"), 0, 0, db=False),
        "mappings show": Command(("mappings", "show"), 0, 0, db=False),
        "mappings explain": Command(("mappings", "explain", "hubspot.date_of_birth", "--to",
                                     "salesforce", "--subject", ID), 2, 2),
        "mappings diff": Command(("mappings", "diff", str(MAPPINGS), str(MAPPINGS)), 2, 0,
                                 maps=False),  # it names its directories
        "jobs list": Command(("jobs", "list", "--dead"), 0, 0, maps=False),
        "jobs retry": Command(("jobs", "retry", "12345"), 2, 2, maps=False),
        "tokens create": Command(("tokens", "create", "ops", "--scope", "requests:read"), 0, 0,
                                 maps=False),
        "tokens list": Command(("tokens", "list"), 0, 0, maps=False),
        "tokens revoke": Command(("tokens", "revoke", "nobody"), 2, 2, maps=False),
        "requests create": Command(("requests", "create", "--kind", "access", "--email",
                                    "zeph@example.com", "--identity", "verified"), 0, 0),
        "requests list": Command(("requests", "list"), 2, 0, maps=False),
        "requests show": Command(("requests", "show", ID), 2, 2),
        "requests verify-identity": Command(("requests", "verify-identity", ID), 2, 2),
        "requests extend": Command(("requests", "extend", ID, "--months", "1", "--reason",
                                    "complex"), 2, 2),
        "requests reject": Command(("requests", "reject", ID, "--reason", "unfounded"), 2, 2),
        "requests not-applicable": Command(("requests", "not-applicable", ID, "salesforce",
                                            "--reason", "never held"), 2, 2),
        "requests retry": Command(("requests", "retry", ID), 2, 2),
        "requests review": Command(("requests", "review", ID, "--include", "Contact:1",
                                    "--reason", "her own account"), 2, 2),
        "requests export": Command(("requests", "export", ID, "--out", out), 2, 2),
        "requests evidence": Command(("requests", "evidence", ID), 2, 2),
        "breach scope": Command(("breach", "scope", "--destination", "partner:contact_centre",
                                 "--from", "2026-01-01", "--to", "2026-02-01"), 0, 0),
        "health": Command(("health", "--component", "worker"), 2, 1, maps=False),  # no beat
        "keys status": Command(("keys", "status"), 0, 0, maps=False),
        "keys rotate": Command(("keys", "rotate", "--digest", "--wait", "0"), 0, 0, maps=False),
        "keys prune": Command(("keys", "prune"), 0, 0, maps=False),
        # No applier ever ran here, so there is no erasure log: it says so.
        "restore-check": Command(("restore-check",), 2, 2, maps=False),
        "config show": Command(("config", "show"), 0, 0, db=False, maps=False),
        "check": Command(("check",), 1, 1, db=False),  # the partner does not listen
        "demo": Command(("demo", "--help"), 0, 0, db=False, maps=False),  # test_demo runs it
        # No vendor is configured here: it says so before it writes anywhere (test_smoke
        # runs it against the emulators).
        "smoke": Command(("smoke", "--i-understand-this-writes", "--address",
                          "ops@example.com"), 2, 2),
    }


def _leaves(group: click.Group, prefix: str = "") -> set[str]:
    found: set[str] = set()
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found |= _leaves(command, f"{prefix}{name} ")
        else:
            found.add(prefix + name)
    return found


def test_the_matrix_covers_every_command():
    assert _leaves(main) == set(commands())


def expected(command: Command, state: str) -> int:
    if state in ("closed", "badurl"):
        return 2 if command.db else command.ready
    if state == "nomappings":
        return 2 if command.maps else command.ready
    return command.fresh


@pytest.fixture
def environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    for name in list(os.environ):
        if name.upper().startswith("PRIVASYNC_") and not name.upper().startswith(
                "PRIVASYNC_TEST_"):
            monkeypatch.delenv(name)
    values = {"PRIVASYNC_VAR_DIR": str(tmp_path / "var"),
              "PRIVASYNC_MAPPINGS_DIR": str(MAPPINGS),
              "PRIVASYNC_SECRETS_DIR": str(tmp_path / "no-secrets"),
              "PRIVASYNC_SECRET_KEY": "matrix-secret-key-0123456789abcdef",
              "PRIVASYNC_PARTNER_CONTACT_CENTRE_SECRET": "partner-secret",
              "PRIVASYNC_PARTNER_CONTACT_CENTRE_URL":
                  f"http://127.0.0.1:{_closed_port()}/privasync/consent"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def arrange(state: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path}/privasync.db"
    if state == "new":
        (tmp_path / "privasync.db").touch()
    elif state == "nodir":
        url = f"sqlite:///{tmp_path}/not/yet/privasync.db"
    elif state == "closed":
        url = f"postgresql+psycopg://privasync:{PASSWORD}@127.0.0.1:{_closed_port()}/privasync"
    elif state == "badurl":
        url = f"not a url://privasync:{PASSWORD}@nowhere"
    elif state == "nomappings":
        url = make_database("sqlite", tmp_path)
        monkeypatch.setenv("PRIVASYNC_MAPPINGS_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setenv("PRIVASYNC_DATABASE_URL", url)
    return url


def assert_said_well(output: str, code: int, want: int) -> None:
    assert code == want, output
    assert "Traceback" not in output and PASSWORD not in output, output
    if code == 2:
        errors = [line for line in output.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1 and "unexpected" not in errors[0], output


def run_in_thread(args: tuple[str, ...]) -> Result:
    """A long-running command expected to stop at once: in a thread, so a regression that
    makes it run on fails the test instead of hanging the suite."""
    box: list[Result] = []
    thread = threading.Thread(target=lambda: box.append(CliRunner().invoke(
        main, ["--traceback", *args], catch_exceptions=False)), daemon=True)
    thread.start()
    thread.join(30)
    assert box, f"{args} did not stop"
    return box[0]


def run_until_started(args: tuple[str, ...]) -> tuple[int, str]:
    """Start it as a process, wait for its start line, stop it with SIGTERM."""
    process = subprocess.Popen([str(Path(sys.executable).parent / "privasync"), *args],
                               stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    assert process.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + scaled(30)
    for line in process.stderr:
        lines.append(line)
        if '"privasync listening"' in line or '"privasync running"' in line \
                or time.monotonic() > deadline:
            break
    process.send_signal(signal.SIGTERM)
    _, rest = process.communicate(timeout=scaled(30))
    return process.returncode, "".join(lines) + rest


# A long-running command that starts is run as a process, below.
CELLS = [(state, name) for state in STATES for name in sorted(commands())
         if not (name in LONG_RUNNING and expected(commands()[name], state) == 0)]


@pytest.mark.parametrize(("state", "name"), CELLS)
def test_every_command_works_or_says_what_to_fix(state: str, name: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 environ: dict[str, str]):
    command = commands()[name]
    want = expected(command, state)
    arrange(state, tmp_path, monkeypatch)
    args = tuple(a.replace("{tmp}", str(tmp_path)) for a in command.args)
    if name in (*LONG_RUNNING, "worker"):
        result = run_in_thread(args)
    else:
        result = CliRunner().invoke(main, ["--traceback", *args], catch_exceptions=False)
    assert_said_well(result.output, result.exit_code, want)
    if state in ("missing", "nodir") and name in READ_ONLY:  # nothing is left behind
        assert not (tmp_path / "privasync.db").exists() and not (tmp_path / "not").exists()


@pytest.mark.parametrize(("name", "state"), [("serve", "nodir"), ("scheduler", "new"),
                                             ("applier", "missing")])  # serve, missing: below
def test_long_running_commands_start_on_a_new_database(name: str, state: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       environ: dict[str, str]):
    arrange(state, tmp_path, monkeypatch)
    code, output = run_until_started(commands()[name].args)
    assert code == 0 and "Traceback" not in output, output
    assert ("privasync listening" if name == "serve" else "privasync running") in output


def test_serve_says_where_it_listens_on_what_and_to_whom_without_secrets(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, environ: dict[str, str]):
    import json

    arrange("missing", tmp_path, monkeypatch)
    monkeypatch.setenv("PRIVASYNC_HUBSPOT__ACCESS_TOKEN", "pat-do-not-print")
    code, output = run_until_started(("serve", "--port", "0"))
    start = next(json.loads(line) for line in output.splitlines()
                 if '"privasync listening"' in line)
    assert code == 0
    # port 0: the supervisor binds a free port and the API says which
    assert re.fullmatch(r"http://127\.0\.0\.1:[1-9][0-9]*", start["address"])
    assert start["database"] == "sqlite"
    assert start["broker"] == "embedded"
    assert start["systems"] == ["hubspot", "partner:contact_centre"]
    assert "pat-do-not-print" not in output and "partner-secret" not in output
