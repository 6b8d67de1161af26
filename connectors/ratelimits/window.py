"""A rolling window of N calls per W seconds (HubSpot's), shared by every process.

A slot is one call. Each is kept, in a Redis sorted set, scored by the time it frees:
while its call is in flight, taken + hold + W (a killed holder's slot frees by itself);
once the answer is back, answered + W. Stamping at the answer, never sooner than the
vendor can have counted the call, is what lets privasync fill the vendor's window to
the last call and still never meet its 429. Times are Redis's own clock (``TIME``), so
the hosts' clocks do not matter.

Why not dramatiq's ``WindowRateLimiter``: it sums whole-second buckets, so its window
covers between W-1 and W seconds of real time and, run flat out, lets more than N calls
into a vendor's exact rolling window. Nor the ``limits`` package's moving window: it
stamps a call when it is let through, and the vendor counts it on arrival, later by a
varying amount. Neither can be told what the vendor says of its own window.

The vendor's figures correct the window for everyone (``Observed``): a lower limit or
a longer window than configured is kept in Redis (a day after it was last seen), calls
the vendor counted and privasync did not (another integration on the same app) become
slots of their own, and a 429's Retry-After blocks every process until it has passed.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis

from core.errors import Throttled

log = logging.getLogger("privasync.ratelimits")

UNAVAILABLE_RETRY_AFTER = 5.0
STATE_TTL_SECONDS = 86_400


@dataclass(frozen=True)
class Observed:
    """What one vendor answer said of its window; None where it said nothing."""

    remaining: int | None = None
    limit: int | None = None
    window_seconds: float | None = None
    blocked_for: float | None = None  # a 429: seconds no process may call


class Window(ABC):
    """``take`` slots before calls, ``done`` each when its answer is back, ``give_back``
    the ones not used. A refusal is ``Throttled`` with the seconds until a slot frees."""

    def __init__(self, name: str, *, limit: int, seconds: float, hold_seconds: float) -> None:
        self.name, self.limit, self.seconds = name, limit, seconds
        self.hold_seconds = hold_seconds
        self._local = threading.local()

    def take(self, want: int = 1, *, at_least: int = 1, patience: float = 0.0) -> list[str]:
        """Between ``at_least`` and ``want`` slots, as many as are free. With ``patience``
        (seconds), wait that long at most for them; workers pass none and defer instead."""
        at_least = max(1, min(at_least, want, self.limit))
        deadline = time.monotonic() + patience
        while True:
            slots, wait = self._take(want, at_least)
            if slots:
                return slots
            if wait > deadline - time.monotonic():
                raise Throttled(f"{self.name}: the shared rate window is full",
                                retry_after=wait, error_class="rate_limited")
            time.sleep(wait)

    @contextmanager
    def slot(self, *, patience: float = 0.0) -> Iterator[_Call]:
        """One call: a slot (from the thread's ``reserved`` ones, or taken now), stamped
        when the block ends, with what the block ``observe``d of the answer."""
        pool: list[str] | None = getattr(self._local, "pool", None)
        call = _Call(pool.pop() if pool else self.take(patience=patience)[0])
        try:
            yield call
        finally:
            self.done(call.slot, call.observed)

    @contextmanager
    def reserved(self, slots: list[str]) -> Iterator[None]:
        """Calls of this thread inside the block use ``slots`` first (taken together, so
        that a batch of calls knows it fits); those left over are given back."""
        self._local.pool = slots
        try:
            yield
        finally:
            self._local.pool = None
            self.give_back(slots)

    @abstractmethod
    def _take(self, want: int, at_least: int) -> tuple[list[str], float]:
        """(slots, 0) or ([], seconds until ``at_least`` are free)."""

    @abstractmethod
    def done(self, slot: str, observed: Observed | None = None) -> None:
        """The call of ``slot`` was answered (or failed) now; learn what it said."""

    @abstractmethod
    def give_back(self, slots: Sequence[str]) -> None:
        """Slots taken and not used: free at once."""

    @abstractmethod
    def wait(self) -> float:
        """Seconds until one call may go out (0: now). Takes nothing."""


@dataclass
class _Call:
    slot: str
    observed: Observed | None = None

    def observe(self, observed: Observed) -> None:
        self.observed = observed


class MemoryWindow(Window):
    """The window in this process's memory: the embedded default, one process."""

    def __init__(self, name: str, *, limit: int, seconds: float, hold_seconds: float) -> None:
        super().__init__(name, limit=limit, seconds=seconds, hold_seconds=hold_seconds)
        self._lock = threading.Lock()
        self._frees: dict[str, float] = {}
        self._seen_limit: int | None = None
        self._seen_window: float | None = None
        self._blocked_until = 0.0

    def _limits(self) -> tuple[int, float]:
        limit = min(self.limit, self._seen_limit or self.limit)
        return limit, max(self.seconds, self._seen_window or 0.0)

    def _used(self, now: float) -> list[float]:
        for slot in [s for s, at in self._frees.items() if at <= now]:
            del self._frees[slot]
        return sorted(self._frees.values())

    def _take(self, want: int, at_least: int) -> tuple[list[str], float]:
        with self._lock:
            now = time.monotonic()
            if self._blocked_until > now:
                return [], self._blocked_until - now
            limit, window = self._limits()
            used = self._used(now)
            at_least = min(at_least, limit)
            if limit - len(used) < at_least:
                return [], max(0.001, used[len(used) - limit + at_least - 1] - now)
            slots = [uuid.uuid4().hex for _ in range(min(want, limit - len(used)))]
            self._frees |= dict.fromkeys(slots, now + self.hold_seconds + window)
            return slots, 0.0

    def done(self, slot: str, observed: Observed | None = None) -> None:
        with self._lock:
            now = time.monotonic()
            seen = observed or Observed()
            if seen.limit is not None:
                self._seen_limit = seen.limit
            if seen.window_seconds is not None:
                self._seen_window = seen.window_seconds
            limit, window = self._limits()
            self._frees[slot] = now + window
            if seen.remaining is not None:
                counted = (seen.limit if seen.limit is not None else limit) - seen.remaining
                missing = counted - len(self._used(now))
                self._frees |= {uuid.uuid4().hex: now + window for _ in range(max(0, missing))}
            if seen.blocked_for is not None:
                self._blocked_until = max(self._blocked_until, now + seen.blocked_for)

    def give_back(self, slots: Sequence[str]) -> None:
        with self._lock:
            for slot in slots:
                self._frees.pop(slot, None)

    def wait(self) -> float:
        with self._lock:
            now = time.monotonic()
            if self._blocked_until > now:
                return self._blocked_until - now
            limit, _ = self._limits()
            used = self._used(now)
            return 0.0 if len(used) < limit else max(0.001, used[len(used) - limit] - now)


_PRELUDE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local slots, state = KEYS[1], KEYS[2]
local limit, window, hold = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local function effective()
  local seen = redis.call('HMGET', state, 'limit', 'window', 'blocked_until')
  if seen[1] then limit = math.min(limit, tonumber(seen[1])) end
  if seen[2] then window = math.max(window, tonumber(seen[2])) end
  return tonumber(seen[3] or '0')
end
local function keep()
  if redis.call('PTTL', slots) < hold + window then redis.call('PEXPIRE', slots, hold + window) end
end
"""

# ARGV: limit, window ms, hold ms, want, at least, id prefix -> {1, ids...} | {0, wait ms}
_TAKE = _PRELUDE + """
local blocked = effective()
if blocked > now then return {0, blocked - now} end
redis.call('ZREMRANGEBYSCORE', slots, '-inf', now)
local used = redis.call('ZCARD', slots)
local want, at_least = tonumber(ARGV[4]), math.min(tonumber(ARGV[5]), limit)
if limit - used < at_least then
  local rank = used - limit + at_least - 1
  local frees = redis.call('ZRANGE', slots, rank, rank, 'WITHSCORES')
  return {0, math.max(1, tonumber(frees[2]) - now)}
end
local n, args, out = math.min(want, limit - used), {}, {1}
for i = 1, n do
  local id = ARGV[6] .. i
  args[#args + 1] = now + hold + window
  args[#args + 1] = id
  out[#out + 1] = id
end
redis.call('ZADD', slots, unpack(args))
keep()
return out
"""

# ARGV: limit, window ms, hold ms, slot, seen limit, seen window ms, remaining, blocked ms,
# id prefix ('' where the answer said nothing)
_DONE = _PRELUDE + """
if ARGV[5] ~= '' then redis.call('HSET', state, 'limit', ARGV[5]) end
if ARGV[6] ~= '' then redis.call('HSET', state, 'window', ARGV[6]) end
effective()
redis.call('ZADD', slots, now + window, ARGV[4])
if ARGV[7] ~= '' then
  local counted = tonumber(ARGV[5] ~= '' and ARGV[5] or limit) - tonumber(ARGV[7])
  redis.call('ZREMRANGEBYSCORE', slots, '-inf', now)
  local missing = counted - redis.call('ZCARD', slots)
  for i = 1, missing do redis.call('ZADD', slots, now + window, ARGV[9] .. i) end
end
if ARGV[8] ~= '' then
  local blocked = now + tonumber(ARGV[8])
  if blocked > tonumber(redis.call('HGET', state, 'blocked_until') or '0') then
    redis.call('HSET', state, 'blocked_until', blocked)
  end
end
redis.call('EXPIRE', state, STATE_TTL)
keep()
return 1
""".replace("STATE_TTL", str(STATE_TTL_SECONDS))

# ARGV: limit, window ms, hold ms -> ms until one slot frees (0: now)
_WAIT = _PRELUDE + """
local blocked = effective()
if blocked > now then return blocked - now end
redis.call('ZREMRANGEBYSCORE', slots, '-inf', now)
local used = redis.call('ZCARD', slots)
if used < limit then return 0 end
local frees = redis.call('ZRANGE', slots, used - limit, used - limit, 'WITHSCORES')
return math.max(1, tonumber(frees[2]) - now)
"""


def _text(value: object) -> str:
    return "" if value is None else str(value)


class RedisWindow(Window):
    """The window in Redis: one for every process that shares ``key``."""

    def __init__(self, client: redis.Redis, key: str, *, name: str, limit: int,
                 seconds: float, hold_seconds: float) -> None:
        super().__init__(name, limit=limit, seconds=seconds, hold_seconds=hold_seconds)
        self._client = client
        self._keys = [f"{key}:slots", f"{key}:state"]
        self._take_script = client.register_script(_TAKE)
        self._done_script = client.register_script(_DONE)
        self._wait_script = client.register_script(_WAIT)

    def _args(self) -> list[Any]:
        return [self.limit, int(self.seconds * 1000), int(self.hold_seconds * 1000)]

    def _unavailable(self, exc: redis.RedisError) -> Throttled:
        log.warning("ratelimit.unavailable", extra={"limit": self.name,
                                                    "error": type(exc).__name__})
        return Throttled(f"{self.name}: the shared rate limiter is unreachable",
                         retry_after=UNAVAILABLE_RETRY_AFTER,
                         error_class="rate_limiter_unavailable")

    def _take(self, want: int, at_least: int) -> tuple[list[str], float]:
        try:
            answer = self._take_script(keys=self._keys, args=[
                *self._args(), want, at_least, f"{uuid.uuid4().hex}:"])
        except redis.RedisError as exc:
            raise self._unavailable(exc) from exc
        if int(answer[0]) == 1:
            return [s.decode() if isinstance(s, bytes) else str(s) for s in answer[1:]], 0.0
        return [], int(answer[1]) / 1000

    def done(self, slot: str, observed: Observed | None = None) -> None:
        """Never raises: an answer already in hand is not undone by the limiter. A slot
        that could not be stamped frees late (hold + window), never early."""
        seen = observed or Observed()
        window_ms = None if seen.window_seconds is None else int(seen.window_seconds * 1000)
        blocked_ms = None if seen.blocked_for is None else int(seen.blocked_for * 1000)
        try:
            self._done_script(keys=self._keys, args=[
                *self._args(), slot, _text(seen.limit), _text(window_ms),
                _text(seen.remaining), _text(blocked_ms), f"{uuid.uuid4().hex}:"])
        except redis.RedisError as exc:
            log.warning("ratelimit.unrecorded", extra={"limit": self.name,
                                                       "error": type(exc).__name__})

    def give_back(self, slots: Sequence[str]) -> None:
        if not slots:
            return
        try:
            self._client.zrem(self._keys[0], *slots)
        except redis.RedisError as exc:
            log.warning("ratelimit.unreturned", extra={"limit": self.name,
                                                       "error": type(exc).__name__})

    def wait(self) -> float:
        try:
            return int(self._wait_script(keys=self._keys, args=self._args())) / 1000
        except redis.RedisError as exc:
            raise self._unavailable(exc) from exc
