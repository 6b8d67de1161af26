"""Vendor rate limits that every privasync process shares.

With a Redis URL (the broker's, or ``PRIVASYNC_RATE_LIMIT_URL``) every worker, the
scheduler and the applier count against one window, one allocation and one set of
connections per vendor; without one (the embedded default, a single process) they are
kept in this process's memory. A limit that says "not now" raises ``Throttled``: the
job is deferred to when it may go, and no attempt is spent.
"""

from __future__ import annotations

import redis
from dramatiq.rate_limits.backends import RedisBackend, StubBackend

from connectors.ratelimits.allowance import Allowance, Left, MemoryAllowance, RedisAllowance
from connectors.ratelimits.concurrency import Connections
from connectors.ratelimits.window import MemoryWindow, Observed, RedisWindow, Window

__all__ = ["Allowance", "Connections", "Left", "Limits", "Observed", "Window"]


class Limits:
    """Builds each vendor's limiter on one store: Redis at ``url``, or memory if empty.
    Keys live under ``<namespace>:ratelimit:``. Nothing connects until a limiter is used."""

    def __init__(self, url: str = "", *, namespace: str = "privasync") -> None:
        self.shared = bool(url)
        self._prefix = f"{namespace}:ratelimit"
        self._client: redis.Redis | None = redis.Redis.from_url(url) if url else None
        self._stub = StubBackend()  # type: ignore[no-untyped-call]
        self._windows: dict[str, Window] = {}
        self._connections: dict[str, Connections] = {}
        self._allowances: dict[str, Allowance] = {}

    def window(self, name: str, *, limit: int, seconds: float, hold_seconds: float) -> Window:
        """The rolling window called ``name`` (one per name: the first call's figures)."""
        if name not in self._windows:
            self._windows[name] = MemoryWindow(
                name, limit=limit, seconds=seconds, hold_seconds=hold_seconds) \
                if self._client is None else RedisWindow(
                    self._client, f"{self._prefix}:{name}:window", name=name, limit=limit,
                    seconds=seconds, hold_seconds=hold_seconds)
        return self._windows[name]

    def connections(self, name: str, *, limit: int, ttl_seconds: float) -> Connections:
        """The connection cap called ``name`` (one per name: the first call's figures)."""
        if name not in self._connections:
            backend = self._stub if self._client is None else RedisBackend(client=self._client)
            self._connections[name] = Connections(
                backend, f"{self._prefix}:{name}:connections", name=name, limit=limit,
                ttl_seconds=ttl_seconds)
        return self._connections[name]

    def allowance(self, name: str, *, reserve: float, refresh_seconds: float) -> Allowance:
        """The daily allocation called ``name`` (one per name: the first call's figures)."""
        if name not in self._allowances:
            self._allowances[name] = MemoryAllowance(
                name, reserve=reserve, refresh_seconds=refresh_seconds) \
                if self._client is None else RedisAllowance(
                    self._client, f"{self._prefix}:{name}:allowance", name=name,
                    reserve=reserve, refresh_seconds=refresh_seconds)
        return self._allowances[name]

    def allowances(self) -> dict[str, Allowance]:
        """Every daily allocation built here, by name (what /metrics reports)."""
        return dict(self._allowances)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
