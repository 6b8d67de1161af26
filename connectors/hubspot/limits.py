"""HubSpot's rolling rate window around every call, the SDK's and the raw ones alike.

HubSpot counts per app, every process of privasync included, and says on every answer
(429s too) how much of its window is left (``X-HubSpot-RateLimit-*``). Each call takes
a slot of the shared window first and hands back what the answer said, so that one
process's observation slows all of them; a 429 blocks all of them for its Retry-After
(HubSpot sends none: its window is the hint).

Where this comes from: HubSpot's "API usage guidelines" (developers.hubspot.com/docs/api/
usage-details), documentation, not the OpenAPI files, which say nothing of rate limits:
the header names, 100 requests per 10 s for Free/Starter private apps (190 Professional,
110 public apps).
"""

from __future__ import annotations

from collections.abc import Mapping

import requests

from connectors.hubspot.errors import retry_after
from connectors.ratelimits import Observed, Window
from connectors.ratelimits.window import MemoryWindow
from connectors.transport import TimeoutSession

REQUESTS_PER_10S = 100  # private apps on Free/Starter; Professional 190, public apps 110
WINDOW_SECONDS = 10.0


def hold_seconds(timeout: float) -> float:
    """How long a slot may stay in flight before it is presumed lost: a call, its blip
    retries and their pauses."""
    return 3 * timeout + 5


def default_window(timeout: float) -> Window:
    """A window of this process only, at the Free/Starter private-app limit."""
    return MemoryWindow("hubspot", limit=REQUESTS_PER_10S, seconds=WINDOW_SECONDS,
                        hold_seconds=hold_seconds(timeout))


def _number(value: str | None) -> int | None:
    return int(value) if value is not None and value.strip().isdigit() else None


def observed(status: int, headers: Mapping[str, str] | None) -> Observed:
    """What one answer said of the app's window."""
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    interval = _number(lowered.get("x-hubspot-ratelimit-interval-milliseconds"))
    limit = _number(lowered.get("x-hubspot-ratelimit-max"))
    return Observed(
        remaining=_number(lowered.get("x-hubspot-ratelimit-remaining")),
        limit=limit if limit else None,
        window_seconds=interval / 1000 if interval else None,
        blocked_for=retry_after(status, headers) if status == 429 else None)


class WindowedSession(TimeoutSession):
    """The raw-HTTP session (v4 batch writes, contacts batch update, definitions): every
    request takes a slot of the window first; a full window raises Throttled."""

    def __init__(self, timeout: float, window: Window) -> None:
        super().__init__(timeout)
        self.window = window

    def request(self, method: str | bytes, url: str | bytes,
                *args: object, **kwargs: object) -> requests.Response:
        with self.window.slot() as call:
            response = super().request(method, url, *args, **kwargs)
            call.observe(observed(response.status_code, response.headers))
        return response
