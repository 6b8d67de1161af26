"""A small HTTP server (Starlette on uvicorn, in a thread) that vendor emulators build on.

Each emulator registers routes (method + regex) and keeps its state in memory
behind a lock. The base adds what every vendor has: request counting, fault
injection (a queue of canned failures, each for any path or for matching ones)
and a clean start/stop on a loopback port, so tests, the demo and the benchmark
run the official clients against a real socket. Handlers stay synchronous and
run in worker threads; uvicorn's loop only parses, waits out delays and writes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import anyio.to_thread
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import Response as StarletteResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

logger = logging.getLogger(__name__)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body else None

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    delay_seconds: float = 0.0

    def encode(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body).encode("utf-8")


Handler = Callable[[Request, re.Match[str]], Response]


@dataclass
class Fault:
    """A canned failure: ``status`` with ``body`` (or a delay, for timeouts)."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0
    path_pattern: str = ""


# ThreadingHTTPServer gave every request its own thread; handlers still block (they take the
# lock, Mailchimp sleeps its latency), so the pool must outgrow every cap a test provokes.
_THREADS = 128
# What http.server answered; anything else got 501 before reaching the emulator.
_METHODS = frozenset({"GET", "POST", "PATCH", "PUT", "DELETE"})


class _Server(uvicorn.Server):
    """One run of an emulator: uvicorn, serving a Starlette app whose only route is this
    object, an ASGI app taking every method and path (a function route would filter them)."""

    def __init__(self, emulator: Emulator) -> None:
        super().__init__(uvicorn.Config(
            Starlette(routes=[Route("/{path:path}", self)]),
            access_log=False, log_level="warning", lifespan="off",
            # Leave the process's logging alone; uvicorn's errors still reach the root logger.
            log_config=None,
            # http.server never dropped idle connections; clients' pools reuse them across pauses.
            timeout_keep_alive=60))
        self.emulator = emulator
        self.ready = threading.Event()
        self.stopping = asyncio.Event()
        self.limiter: anyio.CapacityLimiter | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.emulator._serve(self, StarletteRequest(scope, receive))
        await response(scope, receive, send)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        # Both belong to the loop uvicorn.run creates, so they are made in it, before requests.
        self._loop = asyncio.get_running_loop()
        self.limiter = anyio.CapacityLimiter(_THREADS)
        await super().startup(sockets=sockets)
        self.ready.set()

    def halt(self) -> None:
        """Ask uvicorn to finish in-flight requests and exit; end their delays now."""
        self.should_exit = True
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.stopping.set)

    # uvicorn notices should_exit within 0.1 s and then pauses 0.1 s more; with four
    # emulators per test stack that doubled the suite's time, so both wake on ``stopping``.
    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864_000
            with anyio.move_on_after(0.1):
                await self.stopping.wait()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()  # closes idle keep-alive connections, ends busy ones after
        while (self.server_state.connections or self.server_state.tasks) and not self.force_exit:
            await asyncio.sleep(0.005)


def _outgoing(response: Response) -> StarletteResponse:
    """http.server's framing: Content-Type only with a body, then the headers, Content-Length."""
    payload = response.encode()
    headers = {"Content-Type": response.content_type} if payload else {}
    headers.update(response.headers)
    headers["Content-Length"] = str(len(payload))
    return StarletteResponse(payload, status_code=response.status, headers=headers)


class Emulator:
    """Base class: subclasses call ``self.route`` in ``__init__`` and keep state."""

    name = "emulator"

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.lock = threading.RLock()
        self.calls: Counter[str] = Counter()
        self.log: deque[tuple[str, str, int]] = deque(maxlen=10_000)
        self._faults: deque[Fault] = deque()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._port = 0
        self._stopping = threading.Event()  # set by stop(): handlers' waits end at once

    # -- configuration ---------------------------------------------------
    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method, re.compile(f"^{pattern}$"), handler))

    def inject(self, *faults: Fault) -> None:
        """Answer the next matching requests with these failures, in order."""
        with self.lock:
            self._faults.extend(faults)

    @property
    def faults_pending(self) -> int:
        """Injected faults not yet served."""
        with self.lock:
            return len(self._faults)

    def clear_faults(self) -> None:
        with self.lock:
            self._faults.clear()

    def total_calls(self, prefix: str = "") -> int:
        with self.lock:
            return sum(n for k, n in self.calls.items() if k.split(" ", 1)[1].startswith(prefix))

    # -- hooks for subclasses -------------------------------------------------
    def linger(self, seconds: float) -> None:
        """Hold a handler ``seconds`` (a slow vendor), ending at once when the emulator
        stops, as an injected fault's delay does."""
        self._stopping.wait(seconds)

    def authorize(self, request: Request) -> Response | None:
        """Return an error response if the request's credentials are wrong."""
        return None

    def admit(self, request: Request) -> Response | None:
        """Rate limiting: return a 429 response to refuse, None to admit."""
        return None

    def release(self, request: Request) -> None:
        """Called when an admitted request is done (for concurrency caps)."""

    def error(self, status: int, message: str) -> Response:
        return Response(status, {"message": message})

    # -- serving --------------------------------------------------------------
    def _take_fault(self, path: str) -> Fault | None:
        with self.lock:
            for i, fault in enumerate(self._faults):
                if not fault.path_pattern or re.search(fault.path_pattern, path):
                    del self._faults[i]
                    return fault
        return None

    def dispatch(self, request: Request) -> Response:
        fault = self._take_fault(request.path)
        if fault is not None:
            return Response(fault.status, fault.body, dict(fault.headers),
                            delay_seconds=fault.delay_seconds)
        denied = self.authorize(request)
        if denied is not None:
            return denied
        refused = self.admit(request)
        if refused is not None:
            return refused
        try:
            for method, pattern, handler in self._routes:
                match = pattern.match(request.path)
                if match and method == request.method:
                    with self.lock:
                        self.calls[f"{request.method} {request.path}"] += 1
                    return handler(request, match)
            return self.error(404, f"no route for {request.method} {request.path}")
        finally:
            self.release(request)

    async def _serve(self, server: _Server, incoming: StarletteRequest) -> StarletteResponse:
        """Run ``dispatch`` in a worker thread; wait out a delay without holding a thread."""
        if incoming.method not in _METHODS:
            return _outgoing(Response(501, f"Unsupported method ({incoming.method!r})",
                                      content_type="text/plain"))
        # The raw target, as http.server saw it: routes and unquoting work on it unchanged.
        parts = urlsplit(incoming.scope["raw_path"].decode("latin-1"))
        request = Request(incoming.method, parts.path,
                          parse_qs(incoming.scope["query_string"].decode("latin-1")),
                          {k.lower(): v for k, v in incoming.headers.items()},
                          await incoming.body())
        try:
            response = await anyio.to_thread.run_sync(self.dispatch, request,
                                                      limiter=server.limiter)
        except Exception:
            # A handler's bug: keep the traceback, answer 500 and close the connection so the
            # client does not reuse it (http.server dropped the connection without an answer).
            logger.exception("%s emulator failed on %s %s", self.name, request.method, request.path)
            response = Response(500, {"message": "emulator error"}, {"Connection": "close"})
        if response.delay_seconds:
            with anyio.move_on_after(response.delay_seconds):
                await server.stopping.wait()
        with self.lock:
            self.log.append((request.method, request.path, response.status))
        return _outgoing(response)

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on a loopback port (0: any free one); return the base URL once it accepts."""
        if self._server is not None:
            raise RuntimeError(f"{self.name} emulator already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Keep-alive plus Nagle's algorithm costs ~40 ms a call; accepted sockets inherit this.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        self._stopping.clear()
        server = _Server(self)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                                  name=f"{self.name}-emulator", daemon=True)
        thread.start()
        while not server.ready.wait(0.01):
            if not thread.is_alive():
                sock.close()
                raise RuntimeError(f"{self.name} emulator did not start on {host}:{port}")
        self._server, self._thread, self._sock = server, thread, sock
        self._port = int(sock.getsockname()[1])
        return f"http://{host}:{self._port}"

    @property
    def url(self) -> str:
        assert self._server is not None, "emulator not started"
        return f"http://127.0.0.1:{self._port}"

    def stop(self) -> None:
        """Finish in-flight requests (delays end at once), close the port, end the thread."""
        server, thread, sock = self._server, self._thread, self._sock
        self._server, self._thread, self._sock = None, None, None
        if server is None or thread is None or sock is None:
            return
        self._stopping.set()
        server.halt()
        thread.join(timeout=5)
        if thread.is_alive():
            # A client that never finishes its request would hold the shutdown forever;
            # http.server never waited for anyone, so give up on it as well.
            server.force_exit = True
            thread.join(timeout=5)
        sock.close()
