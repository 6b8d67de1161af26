"""Long-running loops: the Dramatiq worker with its heartbeat, and the scheduler.

The scheduler re-enqueues jobs whose broker message was lost (the outbox
reconciler) and polls Salesforce; a database lease keeps one leader at a time.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import dramatiq
import structlog
from sqlalchemy.engine import Engine

from core import outbox, runtime

log = structlog.get_logger("privasync.runtime")


def process_name(kind: str) -> str:
    return f"{kind}:{socket.gethostname()}:{os.getpid()}"


class Ticker:
    """Runs ``fn`` every ``seconds`` on a daemon thread until stopped; errors are logged
    by type and the loop goes on (a database blip must not kill the scheduler)."""

    def __init__(self, name: str, seconds: float, fn: Callable[[], object]) -> None:
        self.name, self.seconds, self.fn = name, seconds, fn
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.fn()
            except Exception as exc:  # noqa: BLE001 - a loop that must survive blips
                log.warning("loop.error", loop=self.name, error=type(exc).__name__)
            self._stop.wait(self.seconds)

    def start(self) -> Ticker:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.seconds + 5)


class WorkerProcess:
    """A Dramatiq worker plus a heartbeat row that /readyz reads."""

    def __init__(self, broker: dramatiq.Broker, engine: Engine, clock: Callable[[], datetime],
                 *, threads: int, heartbeat_seconds: float) -> None:
        self.name = process_name("worker")
        self.engine, self.clock = engine, clock
        self.worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=100)
        self.heartbeat = Ticker("heartbeat", heartbeat_seconds, self.beat)

    def beat(self) -> None:
        runtime.beat(self.engine, self.name, self.clock())

    def start(self) -> None:
        self.worker.start()
        self.heartbeat.start()

    def stop(self) -> None:
        self.heartbeat.stop()
        self.worker.stop(timeout=10_000)
        runtime.forget_beat(self.engine, self.name)


class Scheduler:
    """Reconciler and pollers; only the lease holder acts."""

    LEASE = "scheduler"

    def __init__(self, engine: Engine, enqueue: Callable[[Sequence[int]], None],
                 clock: Callable[[], datetime], *, reconcile_seconds: float,
                 pollers: Sequence[tuple[str, float, Callable[[datetime], int]]] = ()) -> None:
        self.name = process_name("scheduler")
        self.engine, self.enqueue, self.clock = engine, enqueue, clock
        self.reconcile_seconds = reconcile_seconds
        self.tickers = [Ticker("reconciler", reconcile_seconds, self.reconcile)]
        self.tickers += [Ticker(name, seconds, self._poll(fn)) for name, seconds, fn in pollers]

    def leading(self) -> bool:
        ttl = timedelta(seconds=max(30.0, self.reconcile_seconds * 3))
        return runtime.hold_lease(self.engine, self.LEASE, self.name, self.clock(), ttl)

    def reconcile(self) -> int:
        if not self.leading():
            return 0
        now = self.clock()
        runtime.beat(self.engine, self.name, now)
        grace = timedelta(seconds=max(5.0, self.reconcile_seconds))
        ids = outbox.reconcile(self.engine, now, grace=grace, stale_after=timedelta(minutes=10))
        if ids:
            log.info("outbox.reconciled", jobs=len(ids))
            self.enqueue(ids)
        return len(ids)

    def _poll(self, fn: Callable[[datetime], int]) -> Callable[[], None]:
        def tick() -> None:
            if self.leading():
                fn(self.clock())
        return tick

    def start(self) -> None:
        for ticker in self.tickers:
            ticker.start()

    def stop(self) -> None:
        for ticker in self.tickers:
            ticker.stop()
