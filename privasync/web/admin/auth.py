"""Who an admin request acts as: ``Authorization: Bearer <token>``, a scope, a failure limit.

Missing or wrong token: 401 with ``WWW-Authenticate: Bearer``; a right token without
the operation's scope: 403 naming the scope. Failed authentications are counted per
client address, and past the limit a request gets 429 with ``Retry-After`` before
anything is checked. The token itself is never logged nor put in an error.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from core import tokens
from core.db import reader
from core.errors import Unauthenticated
from core.tokens import Principal
from privasync.app.views import Gate
from privasync.web.admin.errors import RateLimited


class FailureLimiter:
    """Failed authentications per client address over a sliding window, held in this API
    process's memory: each process counts its own (N processes allow N times the limit)
    and a restart forgets. Tokens carry 256 random bits, so this is not what keeps them
    safe; it keeps a guesser, or a script with a stale token, from hammering the database.

    The address is the one the server reports: privasync reads no forwarding header
    itself (anyone can send one). uvicorn takes X-Forwarded-For only from proxies it
    trusts (``--forwarded-allow-ips``, 127.0.0.1 by default); behind any other proxy,
    every client shares the proxy's address, and so one budget.
    """

    def __init__(self, limit: int = 10, window: float = 60.0, *,
                 clock: Callable[[], float] = time.monotonic,
                 max_addresses: int = 10_000) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self.max_addresses = max_addresses
        self._lock = threading.Lock()
        # Per address, its last ``limit`` failures; ordered by the latest failure, oldest
        # first, so stale addresses are dropped from the front.
        self._failures: dict[str, deque[float]] = {}

    def blocked_for(self, address: str) -> int | None:
        """Whole seconds until ``address`` may try again, or None if it may now."""
        now = self.clock()
        with self._lock:
            seen = self._failures.get(address)
            if seen is None or len(seen) < self.limit or seen[0] <= now - self.window:
                return None
            return max(1, math.ceil(seen[0] + self.window - now))

    def failed(self, address: str) -> None:
        now = self.clock()
        with self._lock:
            seen = self._failures.pop(address, None) or deque(maxlen=self.limit)
            seen.append(now)
            self._failures[address] = seen
            while self._failures:
                oldest = next(iter(self._failures))
                if len(self._failures) <= self.max_addresses \
                        and self._failures[oldest][-1] > now - self.window:
                    break
                del self._failures[oldest]


def bearer(header: str | None) -> str:
    """The token in an Authorization header. Raises Unauthenticated (never quoting it)."""
    if not header:
        raise Unauthenticated("missing token: send Authorization: Bearer <token>")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must be: Bearer <token>")
    return token.strip()


class Guard:
    """Authenticates admin requests for one app: a token, its scope, the failure limit."""

    def __init__(self, gate: Gate, limiter: FailureLimiter | None = None) -> None:
        self.gate = gate
        self.limiter = limiter or FailureLimiter()

    async def authorized(self, request: Request, scope: str) -> Principal:
        """The caller, if its token is valid and holds ``scope``. Raises RateLimited,
        Unauthenticated or Forbidden (with the scope), in that order of checks."""
        address = request.client.host if request.client is not None else "-"
        header = request.headers.get("authorization")
        return await run_in_threadpool(self.authorize, header, address, scope)

    def authorize(self, header: str | None, address: str, scope: str) -> Principal:
        wait = self.limiter.blocked_for(address)
        if wait is not None:
            raise RateLimited(wait)
        c = self.gate
        now = c.clock()
        with c.foreground.serving():
            try:
                token = bearer(header)
                with reader(c.engine).connect() as conn:
                    principal = tokens.authenticate(conn, c.keyring, token, now)
            except Unauthenticated:
                self.limiter.failed(address)
                raise
            if principal.touch_due(now):
                with c.engine.begin() as conn:
                    tokens.touch(conn, principal.name, now)
        principal.require(scope)
        return principal
