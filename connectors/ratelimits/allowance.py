"""A daily allocation (Salesforce's DailyApiRequests), read now and then from the vendor
and counted down between readings, that stops privasync's calls above a reserve.

Every process shares the last reading and the calls made since through Redis (or this
process's memory, for one process). One process at a time refreshes a reading older
than ``refresh_seconds`` (a lock key); the others go on with the last one. Below the
reserve a call is not made: ``Throttled`` until the next reading is due, so the job
waits without spending an attempt, and the org's own users keep their share.

Reaching the reserve is logged once (a warning, by whichever process sees it first), and
again only after a reading has shown the allocation clear of it by a margin (``REARM``):
near the reserve the allowance stops and goes with every reading, and one line says it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import redis

from core.errors import DeliveryError, Throttled

log = logging.getLogger("privasync.ratelimits")

UNAVAILABLE_RETRY_AFTER = 5.0
_READ_LOCK_SECONDS = 30
# A reading this share of the allocation (at least) above the reserve ends an episode at
# the reserve: the next time it is reached is warned of again.
REARM = 0.05


@dataclass(frozen=True)
class Reading:
    """What the vendor said: its allocation and what was left, at ``at`` (epoch seconds)."""

    limit: int
    remaining: int
    at: float


@dataclass(frozen=True)
class Left:
    """Where the allocation stands: the vendor's ``limit``, what ``remaining`` of it (the
    last reading less the calls counted since), the calls kept in ``reserve``, and when
    the vendor was last read (``read_at``, epoch seconds)."""

    limit: int
    remaining: int
    reserve: float
    read_at: float


class Allowance(ABC):
    def __init__(self, name: str, *, reserve: float, refresh_seconds: float) -> None:
        self.name, self.reserve, self.refresh_seconds = name, reserve, refresh_seconds
        self._asked: Reading | None = None  # the last reading this process warned (or not) on

    def admit(self, read: Callable[[], tuple[int, int]]) -> None:
        """Count one call, or raise Throttled when the allocation is down to its reserve.
        ``read`` asks the vendor for (allocation, remaining), outside this gate."""
        reading, spent = self._current()
        if (reading is None or time.time() - reading.at >= self.refresh_seconds) \
                and self._lock(_READ_LOCK_SECONDS):
            try:
                limit, remaining = read()
            except DeliveryError as exc:
                log.warning("ratelimit.reading_failed", extra={"limit": self.name,
                                                               "error": exc.error_class})
            else:
                reading, spent = self.record(limit, remaining), 0
            finally:
                self._unlock()
        wait = self._held(reading, spent)
        if wait is not None:
            raise Throttled(f"{self.name}: the daily API allocation is down to its reserve",
                            retry_after=wait, error_class="api_reserve")
        self._spend()

    def wait(self) -> float:
        """Seconds until calls may go again, from the last reading (0: now)."""
        reading, spent = self._current()
        return self._held(reading, spent) or 0.0

    def left(self) -> Left | None:
        """Where the allocation stands now, by the last reading (None before the first).
        Raises Throttled when the shared store cannot be read."""
        reading, spent = self._current()
        if reading is None:
            return None
        return Left(reading.limit, reading.remaining - spent, self.reserve * reading.limit,
                    reading.at)

    def _held(self, reading: Reading | None, spent: int) -> float | None:
        """``_below_reserve``, and the warning the first time an episode reaches it (asked
        of the store once per reading and process)."""
        wait = self._below_reserve(reading, spent)
        if wait is not None and reading is not None and reading != self._asked:
            self._asked = reading
            if self._claim_warning():
                log.warning("ratelimit.reserve_reached", extra={
                    "limit": self.name, "allocation": reading.limit,
                    "remaining": reading.remaining - spent,
                    "reserve": round(self.reserve * reading.limit),
                    "reserve_share": self.reserve, "retry_after": round(wait, 1)})
        return wait

    def _below_reserve(self, reading: Reading | None, spent: int) -> float | None:
        if reading is None or reading.remaining - spent > self.reserve * reading.limit:
            return None
        return max(1.0, reading.at + self.refresh_seconds - time.time())

    def record(self, limit: int, remaining: int) -> Reading:
        """A reading taken now (by ``admit``, or a health check that read it anyway). One
        clear of the reserve by ``REARM`` ends an episode there, if one was warned of."""
        reading = Reading(limit, remaining, time.time())
        self._store(reading)
        if remaining > (self.reserve + REARM) * limit and self._clear_warning():
            log.info("ratelimit.reserve_cleared", extra={
                "limit": self.name, "allocation": limit, "remaining": remaining})
        return reading

    @abstractmethod
    def _current(self) -> tuple[Reading | None, int]:
        """The last reading and the calls counted since it."""

    @abstractmethod
    def _store(self, reading: Reading) -> None:
        """Keep ``reading`` and start counting from zero."""

    @abstractmethod
    def _spend(self) -> None: ...

    @abstractmethod
    def _lock(self, seconds: int) -> bool:
        """True for the one caller that should read the vendor now (for ``seconds`` at
        most, should it die reading)."""

    @abstractmethod
    def _unlock(self) -> None: ...

    @abstractmethod
    def _claim_warning(self) -> bool:
        """True for the one caller that should warn that the reserve is reached (until
        ``_clear_warning``)."""

    @abstractmethod
    def _clear_warning(self) -> bool:
        """End the episode; True if one had been warned of."""


class MemoryAllowance(Allowance):
    def __init__(self, name: str, *, reserve: float, refresh_seconds: float) -> None:
        super().__init__(name, reserve=reserve, refresh_seconds=refresh_seconds)
        self._mutex = threading.Lock()
        self._reading: Reading | None = None
        self._spent = 0
        self._locked_until = 0.0
        self._warned = False

    def _current(self) -> tuple[Reading | None, int]:
        with self._mutex:
            return self._reading, self._spent

    def _store(self, reading: Reading) -> None:
        with self._mutex:
            self._reading, self._spent = reading, 0

    def _spend(self) -> None:
        with self._mutex:
            self._spent += 1

    def _lock(self, seconds: int) -> bool:
        with self._mutex:
            now = time.monotonic()
            if self._locked_until > now:
                return False
            self._locked_until = now + seconds
            return True

    def _unlock(self) -> None:
        with self._mutex:
            self._locked_until = 0.0

    def _claim_warning(self) -> bool:
        with self._mutex:
            claimed, self._warned = not self._warned, True
            return claimed

    def _clear_warning(self) -> bool:
        with self._mutex:
            was, self._warned = self._warned, False
            return was


class RedisAllowance(Allowance):
    def __init__(self, client: redis.Redis, key: str, *, name: str, reserve: float,
                 refresh_seconds: float) -> None:
        super().__init__(name, reserve=reserve, refresh_seconds=refresh_seconds)
        self._client = client
        self._reading_key, self._spent_key, self._lock_key, self._warned_key = (
            f"{key}:reading", f"{key}:spent", f"{key}:reading-lock", f"{key}:reserve-warned")
        # Kept well past the refresh, so that a reading is never lost while it matters.
        self._ttl = int(max(refresh_seconds * 10, 86_400))

    def _unavailable(self, exc: redis.RedisError) -> Throttled:
        log.warning("ratelimit.unavailable", extra={"limit": self.name,
                                                    "error": type(exc).__name__})
        return Throttled(f"{self.name}: the shared rate limiter is unreachable",
                         retry_after=UNAVAILABLE_RETRY_AFTER,
                         error_class="rate_limiter_unavailable")

    def _current(self) -> tuple[Reading | None, int]:
        try:
            raw, spent = cast(list[bytes | None],
                              self._client.mget(self._reading_key, self._spent_key))
        except redis.RedisError as exc:
            raise self._unavailable(exc) from exc
        if raw is None:
            return None, 0
        data = json.loads(raw)
        return Reading(int(data["limit"]), int(data["remaining"]), float(data["at"])), \
            int(spent or 0)

    def _store(self, reading: Reading) -> None:
        body = json.dumps({"limit": reading.limit, "remaining": reading.remaining,
                           "at": reading.at})
        try:
            with self._client.pipeline() as pipe:  # MULTI: the count restarts with it
                pipe.set(self._reading_key, body, ex=self._ttl)
                pipe.set(self._spent_key, 0, ex=self._ttl)
                pipe.execute()
        except redis.RedisError as exc:
            raise self._unavailable(exc) from exc

    def _spend(self) -> None:
        try:
            self._client.incr(self._spent_key)
        except redis.RedisError as exc:
            raise self._unavailable(exc) from exc

    def _lock(self, seconds: int) -> bool:
        try:
            return bool(self._client.set(self._lock_key, 1, nx=True, ex=seconds))
        except redis.RedisError as exc:
            raise self._unavailable(exc) from exc

    def _unlock(self) -> None:
        try:
            self._client.delete(self._lock_key)
        except redis.RedisError as exc:  # it expires by itself
            log.warning("ratelimit.unlock_failed", extra={"limit": self.name,
                                                          "error": type(exc).__name__})

    def _claim_warning(self) -> bool:
        try:
            return bool(self._client.set(self._warned_key, 1, nx=True, ex=self._ttl))
        except redis.RedisError:  # the calls are held all the same; only the line is lost
            return False

    def _clear_warning(self) -> bool:
        try:
            return bool(self._client.delete(self._warned_key))
        except redis.RedisError:  # it expires by itself
            return False
