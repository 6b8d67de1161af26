"""One exception tree for the whole product.

    PrivasyncError
    ├── BadInput                 the caller sent something we refuse (-> 4xx, exit 2)
    │   ├── UnknownSubject       an event names a record no system knows (-> 422)
    │   ├── Suppressed           an event names a person who was erased (nothing applies)
    │   ├── Unauthenticated      a bad or stale signature or token (-> 401)
    │   ├── Forbidden            authenticated, but not allowed to do this (-> 403)
    │   ├── NotFound             the named thing does not exist (-> 404)
    │   └── Conflict             it collides with what exists (-> 409)
    ├── ConfigError              settings or mappings are wrong (refuse to start)
    ├── PolicyViolation          an action would break a privacy rule
    └── DeliveryError            a destination call failed
        ├── TransientError       worth retrying; may carry retry_after seconds
        └── PermanentError       retrying will not help (validation, compliance state)
            └── AuthError        credentials rejected (401/403): fix config, then replay

Messages never carry personal data: name ids, fields, hashes, never values.
Third-party exceptions are translated once, at the connector's edge, with
``raise ... from exc``.
"""

from __future__ import annotations


class PrivasyncError(Exception):
    """Root of every error privasync raises on purpose."""


class BadInput(PrivasyncError):  # noqa: N818 - the name reads as the HTTP class it maps to
    """Input we refuse; the message tells a person what to fix."""


class UnknownSubject(BadInput):
    """An event refers to a record that cannot be resolved to a person."""


class Suppressed(BadInput):
    """The person an event is about was erased: it must not bring them back (R18)."""

    def __init__(self, message: str, *, request_id: str | None = None,
                 subject_id: str | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id
        self.subject_id = subject_id


class Unauthenticated(BadInput):
    """The sender could not be authenticated: bad, missing or stale signature."""


class Forbidden(BadInput):  # noqa: N818
    """The caller is who they say, but lacks the right: ``scope`` names the one missing."""

    def __init__(self, message: str, *, scope: str | None = None) -> None:
        super().__init__(message)
        self.scope = scope


class NotFound(BadInput):  # noqa: N818
    """The request names something that does not exist (a token, a request id)."""


class Conflict(BadInput):  # noqa: N818
    """The request would collide with what exists (a name already taken)."""


class ConfigError(PrivasyncError):
    """Settings or mapping files are invalid."""


class PolicyViolation(PrivasyncError):  # noqa: N818
    """Carrying out the action would break a purpose, consent or erasure rule."""


class DeliveryError(PrivasyncError):
    """A destination call failed. ``error_class`` is what the outbox records."""

    error_class = "delivery"


class TransientError(DeliveryError):
    """Worth retrying later; ``retry_after`` (seconds) is the vendor's hint, if any."""

    error_class = "transient"

    def __init__(self, message: str, *, retry_after: float | None = None,
                 error_class: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        if error_class:
            self.error_class = error_class


class Throttled(TransientError):
    """The vendor's rate limit (a 429), or a call not made because one was met: the job
    was never tried, so it costs no attempt."""

    error_class = "http_429"


class PermanentError(DeliveryError):
    """Retrying will not help: the request itself is refused."""

    error_class = "permanent"

    def __init__(self, message: str, *, error_class: str | None = None) -> None:
        super().__init__(message)
        if error_class:
            self.error_class = error_class


class AuthError(PermanentError):
    """The destination rejected our credentials."""

    error_class = "auth"
