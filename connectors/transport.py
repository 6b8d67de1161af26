"""HTTP plumbing every connector shares: one way to send a request, the error table, the
blip retry.

``send`` is the only place a raw vendor call is made: it retries a blip, turns a dropped
connection into ``TransientError`` and a refused status into our error tree through the
vendor's ``ErrorTable``. Connectors built on a vendor's own client (hubspot-api-client,
simple-salesforce) keep the client for the call and share the table and the blip retry.

Retry layers each have one job (STYLE.md): ``blip_retry`` absorbs a dropped
connection or a single 502/503 inside one call, bounded to a few seconds;
anything longer is the worker's business (``TransientError`` with
``retry_after``); lost messages are the outbox reconciler's.
"""

from __future__ import annotations

import email.utils
import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TypeVar, overload

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
ErrorKind = type[TransientError] | type[PermanentError]

TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
# What each status means when a vendor's table says nothing else; any other is permanent.
STATUS_KINDS: Mapping[int, ErrorKind] = MappingProxyType({
    401: AuthError, 403: AuthError, 429: Throttled,
    **{s: TransientError for s in TRANSIENT_STATUSES - {429}}})
SUCCESS = range(200, 300)
EVERY_STATUS = range(100, 600)


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


def _error(kind: ErrorKind, status: int, what: str, retry_after: float | None,
           error_class: str | None) -> DeliveryError:
    message, error_class = f"{what}: HTTP {status}", error_class or f"http_{status}"
    if issubclass(kind, TransientError):
        return kind(message, retry_after=retry_after, error_class=error_class)
    return kind(message, error_class=error_class)


def error_for_status(status: int, what: str, *, retry_after: float | None = None,
                     error_class: str | None = None) -> DeliveryError:
    """Translate an HTTP status into our error tree. ``what`` names the call, not data."""
    return _error(STATUS_KINDS.get(status, PermanentError), status, what, retry_after,
                  error_class)


def error_for_network(exc: Exception, what: str) -> TransientError:
    """A connection failure or timeout: always worth another try later."""
    return TransientError(f"{what}: {type(exc).__name__}", error_class="network")


def json_object(body: object) -> dict[str, Any]:
    """An error body (bytes, text or already parsed) as a JSON object; {} when it is none."""
    if isinstance(body, bytes | str):
        try:
            body = json.loads(body)
        except (ValueError, RecursionError):
            return {}
    return body if isinstance(body, dict) else {}


@dataclass(frozen=True)
class ErrorTable:
    """One vendor's failed answers in our error tree, as data.

    ``kinds``: the error each status is (any other is PermanentError). ``retry_after_header``:
    whether the vendor's Retry-After is read. ``quiet_429``: the wait a 429 without one
    means (from the other headers, lower-cased). ``error_class``: the vendor's word for the
    failure, read from the body's JSON object, instead of ``http_NNN``. ``refusal``: a
    failure the body spells out, which wins over the status. Reasons name the call and
    the status or the vendor's word, never a value.
    """

    kinds: Mapping[int, ErrorKind] = field(default_factory=lambda: STATUS_KINDS)
    retry_after_header: bool = True
    quiet_429: Callable[[Mapping[str, str]], float] | None = None
    error_class: Callable[[int, dict[str, Any]], str | None] | None = None
    refusal: Callable[[int, dict[str, Any], str], DeliveryError | None] | None = None

    def retry_after(self, status: int, headers: Mapping[str, str] | None) -> float | None:
        """Seconds the vendor asks us to wait before the next try, if it says."""
        lowered = {k.lower(): v for k, v in (headers or {}).items()}
        hinted = parse_retry_after(lowered.get("retry-after")) if self.retry_after_header \
            else None
        if hinted is None and status == 429 and self.quiet_429 is not None:
            return self.quiet_429(lowered)
        return hinted

    def error(self, status: int, what: str, *, headers: Mapping[str, str] | None = None,
              body: object = None) -> DeliveryError:
        """Our error for one refused answer; ``what`` names the call, never data."""
        found = json_object(body) if self.error_class or self.refusal else {}
        refused = self.refusal(status, found, what) if self.refusal else None
        if refused is not None:
            return refused
        return _error(self.kinds.get(status, PermanentError), status, what,
                      self.retry_after(status, headers),
                      self.error_class(status, found) if self.error_class else None)


PLAIN = ErrorTable()  # by status alone, Retry-After honoured


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


def _response(response: requests.Response) -> requests.Response:
    return response


@overload
def send(session: requests.Session, method: str, url: str, *, what: str,
         errors: ErrorTable, read: Callable[[requests.Response], T],
         accept: Collection[int] = ..., blips: bool = ..., **kwargs: Any) -> T: ...
@overload
def send(session: requests.Session, method: str, url: str, *, what: str,
         errors: ErrorTable, accept: Collection[int] = ..., blips: bool = ...,
         **kwargs: Any) -> requests.Response: ...
def send(session: requests.Session, method: str, url: str, *, what: str,
         errors: ErrorTable, read: Callable[[requests.Response], Any] = _response,
         accept: Collection[int] = SUCCESS, blips: bool = True, **kwargs: Any) -> Any:
    """Send one request (``kwargs`` as for ``requests``) and return ``read(response)``.

    A status outside ``accept`` raises the error ``errors`` makes of it; a network failure
    raises TransientError (error_class ``network``). With ``blips``, a dropped connection
    or a bare 502/503 is tried again (``blip_retry``), ``read`` included, so a request is
    prepared (and signed by an ``auth``) afresh each time. ``what`` names the call in
    errors and must not hold personal data.
    """
    def attempt() -> Any:
        response = session.request(method, url, **kwargs)
        if response.status_code not in accept:
            raise errors.error(response.status_code, what, headers=response.headers,
                               body=response.content)
        return read(response)

    try:
        return (blip_retry(attempt) if blips else attempt)()
    except requests.RequestException as exc:
        raise error_for_network(exc, what) from exc


def json_answer(response: requests.Response, unreadable: DeliveryError) -> Any:
    """The answer's JSON document; ``unreadable`` is raised when it is none."""
    try:
        return response.json()
    except ValueError:
        raise unreadable from None


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
