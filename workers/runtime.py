"""Long-running loops: the Dramatiq worker with its heartbeat, the applier, the scheduler.

Each leader holds a database lease (``applier``, ``scheduler``), so running two
of a kind is safe: one acts, the other waits to take over. Every loop, leading
or standing by, writes a heartbeat (``kind:host:pid``) that /readyz, the
metrics and ``privasync health`` read; the worker's also extends the leases of
the jobs it holds.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta

import dramatiq
import structlog
from sqlalchemy.engine import Engine

from core import inbox, outbox, runtime
from core.applier import Applier
from core.db import reader
from core.delivery import Deliverer

log = structlog.get_logger("privasync.runtime")


def process_name(kind: str) -> str:
    return f"{kind}:{socket.gethostname()}:{os.getpid()}"


class Foreground:
    """Requests this process is answering right now. Background loops sharing the process
    (the applier, the dispatch actor: the embedded default) wait for a pause in them, a
    bounded time, before each round: a webhook's answer never queues behind background
    work for the interpreter or for SQLite's write lock, and the background still moves."""

    def __init__(self, max_wait: float = 0.05) -> None:
        self.max_wait = max_wait
        self._lock = threading.Lock()
        self._busy = 0
        self._quiet = threading.Event()
        self._quiet.set()

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        with self._lock:
            self._busy += 1
            self._quiet.clear()
        try:
            yield
        finally:
            with self._lock:
                self._busy -= 1
                if not self._busy:
                    self._quiet.set()

    def give_way(self) -> bool:
        """Wait for a pause in requests (at most ``max_wait``); True if they still run."""
        return not self._quiet.wait(self.max_wait)


class Ticker:
    """Runs ``fn`` every ``seconds`` on a daemon thread until stopped; errors are logged
    by type and the loop goes on (a database blip must not kill the scheduler).
    ``wake()`` runs it now; when ``fn`` returns True there is more to do, and it runs
    again at once."""

    def __init__(self, name: str, seconds: float, fn: Callable[[], object]) -> None:
        self.name, self.seconds, self.fn = name, seconds, fn
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            busy = False
            try:
                busy = self.fn() is True
            except Exception as exc:  # noqa: BLE001 - a loop that must survive blips
                log.warning("loop.error", loop=self.name, error=type(exc).__name__)
            if not busy:
                self._wake.wait(self.seconds)
            self._wake.clear()

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> Ticker:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=self.seconds + 10)


class WorkerProcess:
    """A Dramatiq worker plus a heartbeat that /readyz reads and that extends the leases
    of the claims this process's threads are working on.

    ``prefetch`` (0: one per thread) caps the messages this process holds unacknowledged,
    running ones included: a message waiting behind a busy thread here is one an idle
    worker elsewhere could have taken, so by default none wait. ``shutdown_seconds`` is how
    long a stop waits for running batches (twice: Dramatiq joins workers, then consumers);
    a batch still running then is claimed again by another worker when its lease ends."""

    def __init__(self, broker: dramatiq.Broker, deliverer: Deliverer, *, threads: int,
                 heartbeat_seconds: float, prefetch: int = 0,
                 shutdown_seconds: float = 10.0) -> None:
        self.name = deliverer.holder
        self.deliverer = deliverer
        self.shutdown_seconds = shutdown_seconds
        self.worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=100)
        self.worker.queue_prefetch = self.worker.delay_prefetch = prefetch or threads
        self.heartbeat = Ticker("heartbeat", heartbeat_seconds, self.beat)

    def beat(self) -> None:
        d = self.deliverer
        now = d.clock()
        runtime.beat(d.engine, self.name, now)
        outbox.extend(d.engine, d.working(), now, lease=d.policy.lease,
                      max_hold=d.policy.max_hold)

    def start(self) -> None:
        self.beat()
        self.worker.start()
        self.heartbeat.start()

    def stop(self) -> None:
        """Finish the batches in hand (at most ``shutdown_seconds``), then stop beating."""
        self.heartbeat.stop()
        self.worker.stop(timeout=round(self.shutdown_seconds * 1000))
        runtime.forget_beat(self.deliverer.engine, self.name)


BUSY_BITE = 200  # events per applier tick while this process answers requests


class Heartbeat:
    """A loop's own heartbeat, led or not: ``privasync health`` and the metrics read it."""

    def __init__(self, engine: Engine, name: str, clock: Callable[[], datetime],
                 seconds: float) -> None:
        self.engine, self.name, self.clock = engine, name, clock
        self.ticker = Ticker(f"heartbeat-{name.split(':', 1)[0]}", seconds, self.beat)

    def beat(self) -> None:
        runtime.beat(self.engine, self.name, self.clock())

    def start(self) -> None:
        self.beat()
        self.ticker.start()

    def stop(self) -> None:
        self.ticker.stop()
        try:
            runtime.forget_beat(self.engine, self.name)
        except Exception as exc:  # noqa: BLE001 - the database may be what is going away
            log.warning("heartbeat.forget_failed", error=type(exc).__name__)


class ApplierLoop:
    """The applier on its own thread: a tick whenever ``wake()`` says a delivery was
    stored, or every ``poll_seconds``; straight on while rows keep coming."""

    def __init__(self, applier: Applier, on_jobs: Callable[[Iterable[str]], object], *,
                 poll_seconds: float, foreground: Foreground | None = None,
                 heartbeat_seconds: float = 5.0) -> None:
        self.applier = applier
        self.on_jobs = on_jobs
        self.foreground = foreground
        self.ticker = Ticker("applier", poll_seconds, self.tick)
        self.heartbeat = Heartbeat(applier.engine, applier.holder, applier.clock,
                                   heartbeat_seconds)

    def tick(self) -> bool:
        busy = self.foreground is not None and self.foreground.give_way()
        # While requests keep coming, small bites: the write lock and the interpreter are
        # back to them within milliseconds; the backlog waits in the inbox, durable.
        report = self.applier.tick(BUSY_BITE if busy else None)
        if report is None:
            return False
        if report.destinations:
            self.on_jobs(report.destinations)
        return report.rows > 0

    def wake(self) -> None:
        self.ticker.wake()

    def start(self) -> ApplierLoop:
        self.heartbeat.start()
        self.ticker.start()
        return self

    def stop(self) -> None:
        self.ticker.stop()
        _release(self.applier.lease)
        self.heartbeat.stop()


class Scheduler:
    """Dispatch ticks, pollers and housekeeping; only the lease holder acts."""

    LEASE = "scheduler"
    # Finished jobs deleted per transaction, and the pause after each in which intake and
    # delivery get their turn. SQLite's one writer waits for a whole batch: a smaller one
    # (2,000 took about 0.2 s there, 10,000 about 0.6 s; PostgreSQL 10,000 about 0.3 s).
    PRUNE_BATCH, SQLITE_PRUNE_BATCH, PRUNE_PAUSE = 10_000, 2_000, 0.1

    def __init__(self, engine: Engine, dispatch: Callable[[Iterable[str]], object],
                 clock: Callable[[], datetime], *, dispatch_seconds: float,
                 inbox_keep: timedelta, jobs_keep: timedelta, lease_seconds: float = 15.0,
                 heartbeat_seconds: float = 5.0,
                 pollers: Sequence[tuple[str, float, Callable[[datetime], object]]] = ()) -> None:
        self.name = process_name("scheduler")
        self.engine, self.dispatch, self.clock = engine, dispatch, clock
        # A lease shorter than a few dispatch ticks would change hands between them.
        self.lease = runtime.Leadership(engine, self.LEASE, self.name, timedelta(
            seconds=max(lease_seconds, dispatch_seconds * 3)))
        self.heartbeat = Heartbeat(engine, self.name, clock, heartbeat_seconds)
        self.dispatch_seconds = dispatch_seconds
        self.inbox_keep, self.jobs_keep = inbox_keep, jobs_keep
        self.prune_batch = (self.SQLITE_PRUNE_BATCH if engine.dialect.name == "sqlite"
                            else self.PRUNE_BATCH)
        self._stopping = threading.Event()
        self._dispatch = Ticker("dispatch", dispatch_seconds, self.dispatch_due)
        self.tickers = [self._dispatch, Ticker("housekeeping", 3600.0, self._lead(self.prune))]
        self.tickers += [Ticker(name, seconds, self._lead(fn)) for name, seconds, fn in pollers]

    def leading(self) -> bool:
        return self.lease.held(self.clock())

    def dispatch_due(self) -> int:
        """Send a dispatch message for every destination with due jobs (guarded: one in
        flight each), which also recovers jobs whose worker died and messages lost."""
        if not self.leading():
            return 0
        now = self.clock()
        with reader(self.engine).connect() as conn:
            due = outbox.due_destinations(conn, now)
        if due:
            self.dispatch(due)
        return len(due)

    def wake_dispatch(self) -> None:
        """Run the dispatch tick now (jobs were made due elsewhere)."""
        self._dispatch.wake()

    def prune(self, now: datetime) -> int:
        """Housekeeping: applied inbox rows and finished jobs past their keeping times.
        Jobs go a batch at a time; a stop or a lost lease ends that between two batches,
        and the next run goes on from there."""
        with self.engine.begin() as conn:
            rows = inbox.prune(conn, now - self.inbox_keep)
        jobs = outbox.prune(self.engine, now - self.jobs_keep, batch=self.prune_batch,
                            go_on=self._prune_on)
        if jobs:
            log.info("jobs.pruned", jobs=jobs)
        return rows + jobs

    def _prune_on(self) -> bool:
        return not self._stopping.wait(self.PRUNE_PAUSE) and self.leading()

    def _lead(self, fn: Callable[[datetime], object]) -> Callable[[], None]:
        def tick() -> None:
            if self.leading():
                fn(self.clock())
        return tick

    def start(self) -> None:
        self.heartbeat.start()
        for ticker in self.tickers:
            ticker.start()

    def stop(self) -> None:
        self._stopping.set()
        for ticker in self.tickers:
            ticker.stop()
        _release(self.lease)
        self.heartbeat.stop()


def _release(lease: runtime.Leadership) -> None:
    try:
        lease.release()
    except Exception as exc:  # noqa: BLE001 - it runs out by itself; stopping goes on
        log.warning("lease.release_failed", lease=lease.name, error=type(exc).__name__)
