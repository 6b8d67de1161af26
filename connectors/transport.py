"""HTTP plumbing every connector shares: the error table and the blip retry.

Retry layers each have one job (STYLE.md): ``blip_retry`` absorbs a dropped
connection or a single 502/503 inside one call, bounded to a few seconds;
anything longer is the worker's business (``TransientError`` with
``retry_after``); lost messages are the outbox reconciler's.
"""

from __future__ import annotations

import email.utils
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

import requests
from tenacity import (
    retry,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from core.errors import (
    AuthError,
    ConfigError,
    DeliveryError,
    PermanentError,
    Throttled,
    TransientError,
)

T = TypeVar("T")

TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date); None if absent."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def error_for_status(status: int, what: str, *, retry_after: float | None = None,
                     error_class: str | None = None) -> DeliveryError:
    """Translate an HTTP status into our error tree. ``what`` names the call, not data."""
    if status in (401, 403):
        return AuthError(f"{what}: HTTP {status}", error_class=error_class or f"http_{status}")
    if status == 429:
        return Throttled(f"{what}: HTTP 429", retry_after=retry_after,
                         error_class=error_class or "http_429")
    if status in TRANSIENT_STATUSES:
        return TransientError(f"{what}: HTTP {status}", retry_after=retry_after,
                              error_class=error_class or f"http_{status}")
    return PermanentError(f"{what}: HTTP {status}", error_class=error_class or f"http_{status}")


def error_for_network(exc: Exception, what: str) -> TransientError:
    """A connection failure or timeout: always worth another try later."""
    return TransientError(f"{what}: {type(exc).__name__}", error_class="network")


def _is_blip(exc: BaseException) -> bool:
    if isinstance(exc, requests.ConnectionError | requests.Timeout):
        return True
    return isinstance(exc, TransientError) and exc.error_class in {"http_502", "http_503"} \
        and exc.retry_after is None


def blip_retry(fn: Callable[..., T]) -> Callable[..., T]:
    """Retry ``fn`` on a network blip or a bare 502/503: 3 tries within 5 seconds."""
    wrapped: Callable[..., T] = retry(
        retry=retry_if_exception(_is_blip),
        stop=stop_after_attempt(3) | stop_after_delay(5),
        wait=wait_exponential(multiplier=0.1, max=1),
        reraise=True,
    )(fn)
    return wrapped


class TimeoutSession(requests.Session):
    """A requests session that always sets a timeout (workers must never hang) and always
    verifies TLS certificates (the system trust store, or REQUESTS_CA_BUNDLE)."""

    def __init__(self, timeout: float) -> None:
        if not timeout > 0:
            raise ConfigError("an HTTP timeout must be more than 0 seconds")
        super().__init__()
        self.timeout = timeout
        self.verify = True

    def request(self, method: str | bytes, url: str | bytes,
                *args: object, **kwargs: object) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        if kwargs.get("timeout") is None or kwargs.get("verify") is False or not self.verify:
            raise ConfigError("refusing an HTTP call without a timeout or TLS verification")
        return super().request(method, url, *args, **kwargs)  # type: ignore[arg-type]
