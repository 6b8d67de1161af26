"""``privasync serve|worker|scheduler|applier``: the long-running processes. Each says once
that it runs (where, on what, talking to whom; no secrets) and stops cleanly on SIGTERM or
SIGINT, closing the worker and the database."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

import click

from privasync.cli import context
from privasync.cli.errors import OperatorError

if TYPE_CHECKING:
    import socket

    import uvicorn

    from privasync.app.bootstrap import Container


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--api-only", is_flag=True,
              help="With no broker URL: leave the applier, scheduler and worker to a "
                   "`privasync scheduler` process on the same database.")
@click.option("--single-process", is_flag=True,
              help="With no broker URL: run the applier, scheduler and worker inside the "
                   "API's own process (slower; for debugging) instead of beside it.")
@click.option("--fd", type=int, default=None, hidden=True,
              help="Serve on this listening socket (the supervisor's).")
@click.option("--nudge-fd", type=int, default=None, hidden=True,
              help="Nudge the background's dispatch through this pipe (the supervisor's).")
def serve(host: str, port: int, api_only: bool, single_process: bool, fd: int | None,
          nudge_fd: int | None) -> None:
    """The HTTP app. With no broker URL it also runs the worker, the applier and the
    scheduler: in a second process it starts, watches and stops with the API (restarting
    either if it dies), or in the API's own with --single-process; none with --api-only."""
    if api_only and single_process:
        raise OperatorError("--api-only and --single-process contradict each other: choose "
                            "one (--api-only: the background work runs elsewhere)")
    if not context.settings().broker_url and not api_only and not single_process \
            and fd is None:
        raise SystemExit(_supervise(host, port))

    import socket

    import uvicorn

    from privasync.web.app import create_app

    container = context.build()
    in_process = container.embedded and not api_only
    if in_process:
        container.start_worker()
        container.start_scheduler()  # and the applier
    elif container.embedded:
        # The embedded broker's worker is in the background process, so a message sent
        # here would reach no one (and its guard would hold that destination's dispatch
        # back until it went stale): nudge the background process instead, or, started by
        # hand with no pipe, leave the jobs to its next dispatch tick.
        container.dispatch = dispatch_elsewhere(nudge_fd)
    sockets = [socket.socket(fileno=fd)] if fd is not None else None
    # No access log: Mailchimp's webhook path carries its secret token.
    # log_config=None: uvicorn's own lines go through our handler (and its redaction).
    server = _GracefulServer(uvicorn.Config(create_app(container), host=host, port=port,
                                            access_log=False, log_level="warning",
                                            log_config=None),
                             started=lambda: _log_start(
                                 container, "api, applier, scheduler and worker" if in_process
                                 else "api", address=f"http://{host}:{port}"))
    try:
        server.run(sockets)
    finally:
        container.close()


def dispatch_elsewhere(nudge_fd: int | None) -> Callable[[Iterable[str]], None]:
    """Dispatch for an API process whose embedded worker runs in the background process:
    a nudge through the supervisor's pipe, or with none (started by hand) nothing, and
    the scheduler's dispatch tick finds the due jobs within a second."""
    if nudge_fd is None:
        return lambda destinations: None
    from privasync.cli.supervisor import Nudge

    return Nudge(nudge_fd).dispatch


def _supervise(host: str, port: int) -> int:
    """The embedded default: the API and the background work as two processes, supervised
    (privasync/cli/supervisor.py). The settings are checked, the database migrated and its
    keys made here first, so that a mistake is one line now and the two never race to
    migrate; the socket is bound here, so that a port in use is one line too."""
    import os
    import socket
    import sys
    from datetime import UTC, datetime

    import structlog

    from core import runtime
    from privasync.app.database import open_engine
    from privasync.cli.supervisor import Child, Supervisor
    from workers.retries import backoff

    stop = threading.Event()  # SIGTERM while starting: stop before starting anything
    if threading.current_thread() is threading.main_thread():  # (only it may take signals)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    settings = context.settings()
    checked = context.build()  # every setting checked, the database migrated, its keys made
    try:
        listener = socket.create_server((host, port), backlog=2048)
    except OSError as exc:
        checked.close()
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise OperatorError(f"cannot listen on {host}:{port}: {reason}; choose "
                            "another --port or stop what uses it") from None
    bound = listener.getsockname()[1]
    _log_start(checked, "api, and applier, scheduler and worker in a second process",
               address=f"http://{host}:{bound}")
    checked.close()
    engine = open_engine(settings.database_url, create=False)
    listener.set_inheritable(True)
    hints, nudges = os.pipe()  # the API nudges the background's dispatch (supervisor.Nudge)
    ctx = click.get_current_context()
    root = ["--log-level", level] if (level := ctx.find_root().params.get("log_level")) else []
    command = [sys.executable, "-m", "privasync", *root]
    children = [Child("api", [*command, "serve", "--api-only", "--fd", str(listener.fileno()),
                              "--nudge-fd", str(nudges), "--host", host, "--port", str(bound)],
                      fds=(listener.fileno(), nudges)),
                Child("background", [*command, "scheduler", "--nudge-fd", str(hints)],
                      fds=(hints,))]
    host_name = os.uname().nodename

    def restarted(process: str, last_exit: int) -> None:
        try:
            runtime.count_restart(engine, process, host_name, last_exit, datetime.now(UTC))
        except Exception as exc:  # noqa: BLE001 - counting must not stop supervising
            structlog.get_logger("privasync.supervisor").warning(
                "process.restart_not_counted", process=process, error=type(exc).__name__)

    delay = backoff(settings.supervisor.min_restart_seconds,
                    settings.supervisor.max_restart_seconds)
    try:
        return Supervisor(children, env=dict(os.environ),
                          shutdown_seconds=settings.worker.shutdown_seconds
                          + settings.supervisor.grace_seconds,
                          delay=lambda n: delay(n, None), restarted=restarted,
                          stop=stop).run()
    finally:
        listener.close()
        os.close(hints)
        os.close(nudges)
        engine.dispose()


def _log_start(container: Container, runs: str, address: str | None = None) -> None:
    """One line once running (serve: once the socket listens): where, on what, talking to
    whom; no secrets."""
    from urllib.parse import urlsplit

    import structlog

    scheme = urlsplit(container.settings.broker_url).scheme
    broker = {"": "embedded", "redis": "redis", "rediss": "redis", "amqp": "rabbitmq",
              "amqps": "rabbitmq"}.get(scheme, scheme)
    systems = set(container.connections)
    where = {"address": address} if address else {}
    structlog.get_logger("privasync").info(
        "privasync listening" if address else "privasync running", **where, runs=runs,
        database=container.engine.dialect.name, broker=broker, systems=sorted(systems))


class _GracefulServer:
    """uvicorn that stops on SIGTERM/SIGINT and returns (uvicorn itself re-raises the
    signal after shutdown, which would skip closing the worker and database)."""

    def __init__(self, config: uvicorn.Config,
                 started: Callable[[], None] | None = None) -> None:
        import contextlib

        import uvicorn

        class Server(uvicorn.Server):
            async def startup(self, sockets: list[socket.socket] | None = None) -> None:
                await super().startup(sockets)
                if self.started and started is not None:
                    started()

            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                previous = {s: signal.signal(s, lambda *_: setattr(self, "should_exit", True))
                            for s in (signal.SIGINT, signal.SIGTERM)}
                try:
                    yield
                finally:
                    for s, handler in previous.items():
                        signal.signal(s, handler)

        self._server = Server(config)

    def run(self, sockets: list[socket.socket] | None = None) -> None:
        self._server.run(sockets)


def _wait_for_signal(container: Container, runs: str) -> None:
    """Say it runs (once SIGTERM stops it cleanly), then block until SIGINT or SIGTERM.
    The main thread wakes every second: Python runs a signal's handler only in the main
    thread, and a signal the kernel hands to another thread (it does when the main one
    cannot take it, e.g. just after SIGCONT) would otherwise never interrupt a wait
    without a timeout."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    _log_start(container, runs)
    while not stop.wait(1.0):
        pass


@click.command()
@click.option("--threads", type=int, default=None, help="Worker threads (default: settings).")
@click.option("--metrics-port", type=int, default=None, help="Serve /metrics on this port.")
# Prometheus scrapes from outside the container or host: every address, unless told.
@click.option("--metrics-host", default="0.0.0.0", show_default=True,  # noqa: S104
              help="The address /metrics listens on.")
def worker(threads: int | None, metrics_port: int | None, metrics_host: str) -> None:
    """Dramatiq workers delivering jobs (needs PRIVASYNC_BROKER_URL)."""
    if not context.settings().broker_url:
        raise OperatorError("privasync worker needs PRIVASYNC_BROKER_URL (redis:// or amqp://); "
                            "on one machine privasync serve runs the worker")
    container = context.build()
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=metrics_host, registry=container.metrics.registry)
    try:
        container.start_worker(threads)
    except BaseException:
        container.close()  # the root group's handler says what went wrong, in one line
        raise
    try:
        _wait_for_signal(container, "worker")
    finally:
        container.close()


@click.command()
@click.option("--no-applier", is_flag=True, help="Leave applying the inbox to `privasync "
              "applier` processes.")
@click.option("--nudge-fd", type=int, default=None, hidden=True,
              help="Take the API's nudges from this pipe (the supervisor's).")
def scheduler(no_applier: bool, nudge_fd: int | None) -> None:
    """Dispatch ticks, the Salesforce poller and the applier (one leader each, by lease).
    With no broker URL the embedded broker lives in this process, so the worker does too."""
    container = context.build()
    if container.embedded:
        container.start_worker()
    running = container.start_scheduler(with_applier=not no_applier)
    if nudge_fd is not None:
        from privasync.cli.supervisor import listen

        listen(nudge_fd, running.wake_dispatch)
    try:
        _wait_for_signal(container, ("scheduler" if no_applier else "scheduler and applier")
                         + (" and worker" if container.embedded else ""))
    finally:
        container.close()


@click.command()
def applier() -> None:
    """Only the applier: applies stored deliveries (one active at a time, by lease)."""
    container = context.build()
    container.start_applier()
    try:
        _wait_for_signal(container, "applier")
    finally:
        container.close()


COMMANDS = (serve, worker, scheduler, applier)
