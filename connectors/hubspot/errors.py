"""HubSpot's HTTP failures in privasync's error tree, for the SDK and raw calls alike.

HubSpot answers a 429 without Retry-After but with its rolling window in
``X-HubSpot-RateLimit-Interval-Milliseconds``: waiting one window is the hint.
"""

from __future__ import annotations

from collections.abc import Mapping

from connectors.transport import error_for_status, parse_retry_after
from core.errors import DeliveryError

DEFAULT_WINDOW_SECONDS = 10.0


def retry_after(status: int, headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait: Retry-After if sent, else (for a 429) HubSpot's window."""
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    hinted = parse_retry_after(lowered.get("retry-after"))
    if hinted is not None or status != 429:
        return hinted
    interval = lowered.get("x-hubspot-ratelimit-interval-milliseconds", "")
    return int(interval) / 1000 if interval.isdigit() else DEFAULT_WINDOW_SECONDS


def http_error(status: int, headers: Mapping[str, str] | None, what: str) -> DeliveryError:
    """Translate one HubSpot status; ``what`` names the call, never data."""
    return error_for_status(status, what, retry_after=retry_after(status, headers))
