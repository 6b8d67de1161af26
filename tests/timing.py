"""How long a test waits, and the one way it waits.

Every timeout in the suite is a bound, never a pace: a test waits on the condition it asserts
and returns as soon as it holds. ``PRIVASYNC_TEST_TIMEOUT_SCALE`` multiplies every bound, so a
slow or loaded machine raises them all without editing a test (``make test-stress`` runs the
suite beside busy processes to find a test that waits on a proxy, or not at all).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable


def _scale() -> float:
    raw = os.environ.get("PRIVASYNC_TEST_TIMEOUT_SCALE", "1")
    try:
        value = float(raw)
    except ValueError:
        raise SystemExit(f"PRIVASYNC_TEST_TIMEOUT_SCALE must be a number, not {raw!r}") from None
    if not value >= 1:
        raise SystemExit(f"PRIVASYNC_TEST_TIMEOUT_SCALE must be 1 or more, not {raw!r}")
    return value


SCALE = _scale()


def scaled(seconds: float) -> float:
    """``seconds`` on this machine: a bound on a wait, raised by the scale setting."""
    return seconds * SCALE


def wait_until(what: str, check: Callable[[], object], timeout: float = 20.0, *,
               tolerate: tuple[type[BaseException], ...] = (),
               interval: float = 0.02) -> float:
    """Seconds until ``check()`` is true; fails naming ``what`` after ``timeout`` (scaled).

    ``tolerate`` names exceptions that mean "not yet" (a server still starting, a database
    being cut): they are retried like a false answer until the bound.
    """
    bound = scaled(timeout)
    started = time.monotonic()
    while True:
        try:
            if check():
                return time.monotonic() - started
        except tolerate:
            pass
        if time.monotonic() - started > bound:
            raise AssertionError(f"timed out after {bound:.0f} s waiting for: {what}")
        time.sleep(interval)
