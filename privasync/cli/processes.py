"""``privasync serve|worker|scheduler|applier``: the long-running processes. Each says once
that it runs (where, on what, talking to whom; no secrets) and stops cleanly on SIGTERM or
SIGINT, closing the worker and the database."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
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
def serve(host: str, port: int, api_only: bool) -> None:
    """The HTTP app. With no broker URL it also runs the worker, the applier and the
    scheduler in-process, unless --api-only."""
    import uvicorn

    from privasync.web.app import create_app

    container = context.build()
    in_process = container.embedded and not api_only
    if in_process:
        container.start_worker()
        container.start_scheduler()  # and the applier
    # No access log: Mailchimp's webhook path carries its secret token.
    # log_config=None: uvicorn's own lines go through our handler (and its redaction).
    server = _GracefulServer(uvicorn.Config(create_app(container), host=host, port=port,
                                            access_log=False, log_level="warning",
                                            log_config=None),
                             started=lambda: _log_start(
                                 container, "api, applier, scheduler and worker" if in_process
                                 else "api", address=f"http://{host}:{port}"))
    try:
        server.run()
    finally:
        container.close()


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

    def run(self) -> None:
        self._server.run()


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
def worker(threads: int | None, metrics_port: int | None) -> None:
    """Dramatiq workers delivering jobs (needs PRIVASYNC_BROKER_URL)."""
    if not context.settings().broker_url:
        raise OperatorError("privasync worker needs PRIVASYNC_BROKER_URL (redis:// or amqp://); "
                            "on one machine privasync serve runs the worker")
    container = context.build()
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, registry=container.metrics.registry)
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
def scheduler(no_applier: bool) -> None:
    """Dispatch ticks, the Salesforce poller and the applier (one leader each, by lease).
    With no broker URL the embedded broker lives in this process, so the worker does too."""
    container = context.build()
    if container.embedded:
        container.start_worker()
    container.start_scheduler(with_applier=not no_applier)
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
