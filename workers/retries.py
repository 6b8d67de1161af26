"""When a failed job runs again: tenacity's exponential backoff with jitter, the vendor's
Retry-After honoured. The database holds the next attempt's time; workers never sleep.

Tenacity's wait strategies read the state of a retry loop. Ours lives in the database, one
attempt per run of a worker, so ``delay`` hands the strategy the state a ``Retrying``
loop holds after that many attempts: the one tenacity makes itself when it runs as an
iterator (no wrapped function), its attempt number set. Nothing is called or slept.
"""

from __future__ import annotations

from collections.abc import Callable

import tenacity


def backoff(min_seconds: float, max_seconds: float) -> Callable[[int, float | None], float]:
    """``delay(attempts, retry_after)``: ``min * 2**(attempts-1)`` plus up to ``min`` of
    jitter, capped at ``max``, and never sooner than the vendor asked."""
    loop = tenacity.Retrying(wait=tenacity.wait_exponential_jitter(
        multiplier=min_seconds, max=max_seconds, jitter=min_seconds))

    def delay(attempts: int, retry_after: float | None) -> float:
        state = tenacity.RetryCallState(retry_object=loop, fn=None, args=(), kwargs={})
        state.attempt_number = max(1, attempts)
        return max(float(loop.wait(state)), retry_after or 0.0)

    return delay
