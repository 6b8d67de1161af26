"""``privasync serve`` on one machine: the API and the background work (applier, scheduler
and the embedded worker) as two processes on the same SQLite file, started, watched and
stopped together by this one.

Why two: one interpreter that answers webhooks and also applies, schedules and delivers
makes every answer wait for that work (BENCHMARKS.md). Split, each has its own interpreter
and SQLite's one writer at a time is the only thing they share.

The supervisor binds the listening socket itself and hands it to the API process: a
restarted API never leaves the port closed (connections wait in the socket's backlog), and
a port already taken is one line before anything starts. A child that dies is started
again after tenacity's exponential backoff (with jitter; back to the shortest wait once a
child has run for a minute), each exit and restart logged, and each restart counted in the
database so that ``/metrics`` shows it (``privasync_process_restarts_total``). SIGTERM or
SIGINT stops both, waits for them to drain up to the shutdown timeout, then kills what is
left. A child exiting with the CLI's "fix the configuration" status (2) is not started
again: it would fail the same way; the supervisor stops the other and exits 2.

The API process has no worker (the embedded broker's worker runs in the background
process), so jobs an admin call makes due there (a dead letter retried) are announced
through a pipe the supervisor made (``Nudge``, ``listen``), and the background process runs
its dispatch tick at once. The supervisor keeps both ends open, so either child can be
restarted and the other never sees the pipe close. A nudge is a hint: lost (the pipe full,
the reader restarting), the next dispatch tick does the same a second later. Stored
deliveries are not announced: woken for each, the applier's small transactions competed
with intake for SQLite's one writer (BENCHMARKS.md, "The default shape on a quiet machine").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import structlog

log = structlog.get_logger("privasync.supervisor")

CONFIG_ERROR = 2  # privasync.cli.errors.OperatorError's exit status
DISPATCH = b"d"  # a nudge: jobs were made due
STABLE_SECONDS = 60.0  # a child that ran this long starts again after the shortest wait
POLL_SECONDS = 0.2


@dataclass
class Child:
    """One supervised process: its name (``api``, ``background``), command line and the
    descriptors it inherits."""

    name: str
    argv: list[str]
    fds: tuple[int, ...] = ()  # descriptors it inherits (its listening socket, its pipe end)
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    quick_exits: int = 0  # exits in a row before STABLE_SECONDS: the backoff's attempt
    start_at: float | None = None
    last_exit: int = 0  # set when it exits, before any restart


def exit_text(code: int) -> str:
    """``exit 1`` or ``SIGKILL``: how a child ended, for the log."""
    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit {code}"


class Supervisor:
    """Runs ``children`` until SIGTERM or SIGINT (``run`` installs the handlers) or until one
    exits with CONFIG_ERROR; ``restarted(name, code)`` is called after each restart, and
    ``delay(n)`` says how long to wait before the n-th quick restart in a row."""

    def __init__(self, children: Sequence[Child], *, env: dict[str, str],
                 shutdown_seconds: float, delay: Callable[[int], float],
                 restarted: Callable[[str, int], None], pass_fds: Sequence[int] = (),
                 stop: threading.Event | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.children = list(children)
        self.env, self.pass_fds = env, tuple(pass_fds)
        self.shutdown_seconds, self.delay, self.restarted = shutdown_seconds, delay, restarted
        self.clock = clock
        self._stop = stop or threading.Event()  # set by a signal taken before ``run``
        self._status = 0

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> int:
        """Start every child, keep them running, and return the exit status: 0 after a
        signal, CONFIG_ERROR when a child could not start for its configuration."""
        previous = {s: signal.signal(s, lambda *_: self.stop())
                    for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            for child in self.children:
                if not self._stop.is_set():
                    self._start(child)
            while not self._stop.is_set():
                self._watch()
                self._stop.wait(POLL_SECONDS)
        finally:
            self._stop_all()
            for s, handler in previous.items():
                signal.signal(s, handler)
        return self._status

    def _watch(self) -> None:
        now = self.clock()
        for child in self.children:
            code = child.proc.poll() if child.proc is not None else None
            if code is not None:
                self._exited(child, code, now)
            if child.proc is None and child.start_at is not None and now >= child.start_at \
                    and not self._stop.is_set():
                pid = self._start(child)
                log.warning("process.restarted", process=child.name, pid=pid,
                            restarts_in_a_row=child.quick_exits)
                self.restarted(child.name, child.last_exit)

    def _exited(self, child: Child, code: int, now: float) -> None:
        child.proc, child.last_exit = None, code
        if self._stop.is_set():
            return
        if code == CONFIG_ERROR:
            log.error("process.exited", process=child.name, exit=exit_text(code),
                      restart="never: its configuration must be fixed first")
            self._status = CONFIG_ERROR
            self._stop.set()
            return
        ran = now - child.started_at
        child.quick_exits = 1 if ran >= STABLE_SECONDS else child.quick_exits + 1
        wait = self.delay(child.quick_exits)
        child.start_at = now + wait
        log.warning("process.exited", process=child.name, exit=exit_text(code),
                    ran_seconds=round(ran, 1), restart_in_seconds=round(wait, 2))

    def _start(self, child: Child) -> int:
        child.proc = subprocess.Popen(  # noqa: S603 - our own command line, built by serve
            child.argv, env=self.env, pass_fds=(*self.pass_fds, *child.fds),
            preexec_fn=functools.partial(_die_with_parent, os.getpid()))
        child.started_at, child.start_at = self.clock(), None
        return child.proc.pid

    def _stop_all(self) -> None:
        """SIGTERM to every child still running, then wait for them together until the
        shutdown timeout; SIGKILL for any still running after it."""
        running = [c for c in self.children if c.proc is not None and c.proc.poll() is None]
        for child in running:
            assert child.proc is not None
            child.proc.send_signal(signal.SIGTERM)
        deadline = self.clock() + self.shutdown_seconds
        for child in running:
            assert child.proc is not None
            try:
                child.proc.wait(timeout=max(0.0, deadline - self.clock()))
            except subprocess.TimeoutExpired:
                log.error("process.killed", process=child.name,
                          reason=f"still running {self.shutdown_seconds:.0f}s after SIGTERM")
                child.proc.kill()
                child.proc.wait()
            child.proc = None


def _die_with_parent(supervisor: int) -> None:
    """In the child, before exec: on Linux, have the kernel send SIGTERM should the
    supervisor itself be killed, so no child outlives it holding the database."""
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != supervisor:  # the supervisor died before prctl took hold
        os.kill(os.getpid(), signal.SIGTERM)


class Nudge:
    """The API's end of the pipe: a byte per hint, never blocking (a full pipe already
    holds a hint the reader has yet to take)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        os.set_blocking(fd, False)

    def dispatch(self, destinations: Iterable[str] = ()) -> None:
        """Jobs were made due (which destinations does not matter: the tick finds them)."""
        try:
            os.write(self.fd, DISPATCH)
        except (BlockingIOError, BrokenPipeError):
            pass


def listen(fd: int, dispatch: Callable[[], None]) -> threading.Thread:
    """The background process's end: a daemon thread that runs ``dispatch`` once per read,
    however many hints it took. It ends with the process (or should the pipe close)."""

    def run() -> None:
        while True:
            try:
                got = os.read(fd, 4096)
            except InterruptedError:
                continue
            except OSError as exc:
                log.warning("nudge.unreadable", error=type(exc).__name__)
                return
            if not got:
                return
            dispatch()

    thread = threading.Thread(target=run, name="nudges", daemon=True)
    thread.start()
    return thread
