"""At most N calls in flight at once across every process (Mailchimp's 10 connections).

Dramatiq's ``ConcurrentRateLimiter`` on its Redis backend (or its in-memory stub for
one process). A slot frees when its call returns; a holder killed mid-call leaks its
slot until the key's TTL, which every acquire and release renews: under steady
traffic the leak lasts until traffic pauses for that long, so the TTL is kept short.
A full house is waited out briefly (slots free within a call's time); past that the
call is not made and the job is deferred.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from dramatiq.rate_limits import ConcurrentRateLimiter, RateLimiterBackend

from core.errors import Throttled

log = logging.getLogger("privasync.ratelimits")

UNAVAILABLE_RETRY_AFTER = 5.0
_FIRST_PAUSE, _LONGEST_PAUSE = 0.005, 0.05


class Connections:
    """``with connections.call(): ...`` around every request to the vendor."""

    def __init__(self, backend: RateLimiterBackend, key: str, *, name: str, limit: int,
                 ttl_seconds: float, patience: float = 1.0) -> None:
        self.name, self.limit, self.patience = name, limit, patience
        self._limiter = ConcurrentRateLimiter(  # type: ignore[no-untyped-call]
            backend, key, limit=limit, ttl=int(ttl_seconds * 1000))

    @contextmanager
    def call(self) -> Iterator[None]:
        """Hold one of the ``limit`` slots for the block. Raises Throttled (the job waits,
        no attempt spent) when none frees within ``patience`` seconds."""
        deadline, pause = time.monotonic() + self.patience, _FIRST_PAUSE
        while True:
            try:
                with self._limiter.acquire(raise_on_failure=False) as acquired:
                    if acquired:
                        yield
                        return
            except redis.RedisError as exc:
                log.warning("ratelimit.unavailable", extra={"limit": self.name,
                                                            "error": type(exc).__name__})
                raise Throttled(f"{self.name}: the shared connection limiter is unreachable",
                                retry_after=UNAVAILABLE_RETRY_AFTER,
                                error_class="rate_limiter_unavailable") from exc
            if time.monotonic() + pause > deadline:
                raise Throttled(f"{self.name}: all {self.limit} connections are in use",
                                retry_after=self.patience, error_class="rate_limited")
            time.sleep(pause)
            pause = min(pause * 2, _LONGEST_PAUSE)
