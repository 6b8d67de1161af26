"""When a failed job runs again: tenacity's exponential backoff with jitter, the vendor's
Retry-After honoured. The database holds the next attempt's time; workers never sleep."""

from __future__ import annotations

from collections.abc import Callable

import tenacity


def backoff(min_seconds: float, max_seconds: float) -> Callable[[int, float | None], float]:
    """``delay(attempts, retry_after)``: ``min * 2**(attempts-1)`` plus up to ``min`` of
    jitter, capped at ``max``, and never sooner than the vendor asked."""
    wait = tenacity.wait_exponential_jitter(multiplier=min_seconds, max=max_seconds,
                                            jitter=min_seconds)

    def delay(attempts: int, retry_after: float | None) -> float:
        state = tenacity.RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.attempt_number = max(1, attempts)
        return max(float(wait(state)), retry_after or 0.0)

    return delay
