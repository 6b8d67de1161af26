"""A small threaded HTTP server that vendor emulators build on.

Each emulator registers routes (method + regex) and keeps its state in memory
behind a lock. The base adds what every vendor has: request counting, fault
injection (a queue of canned failures, or a failure rate for a path) and a
clean start/stop on a loopback port, so tests, the demo and the benchmark run
the official clients against a real socket.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


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


class _Server(ThreadingHTTPServer):
    # The default listen queue of 5 makes a burst wait on TCP retries instead of
    # reaching the vendor's own limits (e.g. Mailchimp's 10 connections).
    request_queue_size = 128
    daemon_threads = True


class Emulator:
    """Base class: subclasses call ``self.route`` in ``__init__`` and keep state."""

    name = "emulator"

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.lock = threading.RLock()
        self.calls: Counter[str] = Counter()
        self.log: deque[tuple[str, str, int]] = deque(maxlen=10_000)
        self._faults: deque[Fault] = deque()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- configuration ---------------------------------------------------
    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method, re.compile(f"^{pattern}$"), handler))

    def inject(self, *faults: Fault) -> None:
        """Answer the next matching requests with these failures, in order."""
        with self.lock:
            self._faults.extend(faults)

    def clear_faults(self) -> None:
        with self.lock:
            self._faults.clear()

    def total_calls(self, prefix: str = "") -> int:
        with self.lock:
            return sum(n for k, n in self.calls.items() if k.split(" ", 1)[1].startswith(prefix))

    # -- hooks for subclasses -------------------------------------------------
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

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on a loopback port (0: any free one); return the base URL."""
        emulator = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Keep-alive plus Nagle's algorithm costs ~40 ms a call; vendors don't.
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(self.command, parts.path, parse_qs(parts.query),
                                  {k.lower(): v for k, v in self.headers.items()}, body)
                response = emulator.dispatch(request)
                if response.delay_seconds:
                    time.sleep(response.delay_seconds)
                payload = response.encode()
                with emulator.lock:
                    emulator.log.append((request.method, request.path, response.status))
                self.send_response(response.status)
                if payload:
                    self.send_header("Content-Type", response.content_type)
                for key, value in response.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        server = _Server((host, port), _Handler)
        self._server = server
        self._thread = threading.Thread(target=lambda: server.serve_forever(poll_interval=0.05),
                                        name=f"{self.name}-emulator", daemon=True)
        self._thread.start()
        return f"http://{host}:{server.server_address[1]}"

    @property
    def url(self) -> str:
        assert self._server is not None, "emulator not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
