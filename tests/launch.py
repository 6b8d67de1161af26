"""privasync's commands as processes, forked from a server that imported privasync once.

Each is still a process of its own running ``privasync <command>``: the CLI's ``main`` with
the caller's arguments, environment, working directory and log; it opens its own
connections and is killed, paused and stopped by signals like any other, and exits with
the command's status. What is no longer repeated is the interpreter's start and the imports
every ``python -m privasync`` makes (~1.3 s of CPU each; a fault case starts six):
multiprocessing's fork server makes them once per pytest process, then forks. privasync
imports nothing that connects, reads the environment or starts a thread (STYLE.md), so a
fork of the imported modules is what a fresh start builds. (One difference: a forked
process skips the interpreter's own exit, atexit handlers included; privasync registers
none. tests/e2e/test_processes.py still starts the commands as `python -m privasync`.)
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import subprocess
import sys
from multiprocessing.process import BaseProcess
from pathlib import Path

# What `serve`, `worker`, `scheduler`, `applier` and `audit verify` import (python -X importtime):
# a module missing here is imported by the process itself, as without the server.
PRELOAD = [
    "privasync.cli.main", "privasync.app.bootstrap", "privasync.app.pollers",
    "privasync.app.taxonomy", "privasync.web.app", "workers.actors", "workers.broker",
    "workers.runtime", "core.applier", "core.delivery", "core.ledger", "core.outbox",
    "core.schema", "connectors.hubspot", "connectors.salesforce", "connectors.mailchimp",
    "connectors.partner", "fideslang.default_taxonomy", "hubspot.discovery.crm.discovery",
    "hubspot.discovery.crm.contacts.discovery", "hubspot.discovery.crm.objects.discovery",
    "hubspot.discovery.crm.properties.discovery",
    "hubspot.discovery.crm.associations.discovery",
    "hubspot.discovery.crm.associations.v4.discovery", "psycopg", "alembic.command",
    "uvicorn.main", "uvicorn.loops.asyncio", "uvicorn.protocols.http.h11_impl",
    "prometheus_client", "pika", "dramatiq.brokers.redis", "dramatiq.brokers.rabbitmq",
    __name__,
]


def _context() -> multiprocessing.context.ForkServerContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


class Process:
    """A started ``privasync`` command, with the part of ``subprocess.Popen`` the suite
    uses (``pid``, ``poll``, ``wait``, ``kill``, ``send_signal``)."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path, log: Path) -> None:
        self.args = ["privasync", *args]
        log.touch()  # there to read from the start, as a log the parent opened would be
        self._process: BaseProcess = _context().Process(
            target=_main, args=(args, env, str(cwd), str(log)), daemon=True,
            name=f"privasync {' '.join(args)}")
        self._process.start()
        assert self._process.pid is not None
        self.pid: int = self._process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.exitcode

    def poll(self) -> int | None:
        return self._process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        code = self._process.exitcode
        if code is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
        return code

    def send_signal(self, sig: int) -> None:
        if self._process.exitcode is None:
            with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
                os.kill(self.pid, sig)

    def kill(self) -> None:
        self._process.kill()


def run(args: list[str], env: dict[str, str], cwd: Path, output: Path,
        timeout: float) -> tuple[int, str]:
    """Run a command to its end: its exit status and what it wrote."""
    process = Process(args, env, cwd, output)
    try:
        code = process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return code, output.read_text(errors="replace")


def _main(args: list[str], env: dict[str, str], cwd: str, log: str) -> None:
    """In the forked process: what ``python -m privasync ARGS`` with this environment, in
    this directory, writing to this log, runs."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # the process's own, line by line
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    sys.argv = ["privasync", *args]
    from privasync.cli.main import main

    main()
