"""The admin API's refusals: one JSON shape, one table from error to status.

Every refusal is ``{"error": <kind>, "reason": <what to fix>}``, plus the fields at
fault for a body that fails its schema and the scope at fault for a 403. Reasons
name fields and scopes, never a value that came in, and never a token.
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from starlette.responses import JSONResponse

from core.errors import (
    BadInput,
    Conflict,
    Forbidden,
    NotFound,
    PrivasyncError,
    Unauthenticated,
    UnknownSubject,
)
from privasync.web.bodies import BodyReadTimeout, BodyTooLarge, UnsupportedMediaType, close_after


class FieldProblem(BaseModel):
    field: str = Field(description="Where in the body or query, dotted: `scopes.0`.")
    problem: str = Field(description="What is wrong with it (never its value).")


class Problem(BaseModel):
    """The body of every refusal."""

    error: str = Field(description="The kind of refusal, e.g. `Unauthenticated`.")
    reason: str = Field(description="What went wrong, for a person to act on.")
    fields: list[FieldProblem] | None = Field(
        default=None, description="The fields at fault (422 only).")
    scope: str | None = Field(default=None, description="The scope needed (403 only).")


class ValidationFailed(BadInput):
    """JSON that does not fit the operation's schema (-> 422), with the fields at fault."""

    def __init__(self, fields: list[FieldProblem]) -> None:
        first = fields[0]
        more = f" (and {len(fields) - 1} more)" if len(fields) > 1 else ""
        super().__init__(f"{first.field}: {first.problem}{more}")
        self.fields = fields


class RateLimited(BadInput):
    """Too many failed authentications from one address (-> 429); nothing was checked."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed authentications; retry in {retry_after} s")
        self.retry_after = retry_after


STATUS: tuple[tuple[type[PrivasyncError], int], ...] = (
    (Unauthenticated, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (BodyReadTimeout, 408),
    (BodyTooLarge, 413),
    (UnsupportedMediaType, 415),
    (ValidationFailed, 422),
    (UnknownSubject, 422),
    (RateLimited, 429),
    (BadInput, 400),
)


def status_for(exc: PrivasyncError) -> int:
    """The status of a refusal; an error not in the table is the server's fault (500)."""
    return next((code for kind, code in STATUS if isinstance(exc, kind)), 500)


def refusal(exc: PrivasyncError) -> JSONResponse:
    """The response for one of our errors, with the headers its status calls for."""
    status = status_for(exc)
    body = Problem(error=type(exc).__name__, reason=str(exc))
    headers = close_after(exc)
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="privasync"'
    if isinstance(exc, ValidationFailed):
        body.fields = exc.fields
    if isinstance(exc, Forbidden) and exc.scope is not None:
        body.scope = exc.scope
        headers["WWW-Authenticate"] = (f'Bearer realm="privasync", error="insufficient_scope", '
                                       f'scope="{exc.scope}"')
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    if status >= 500:
        body = Problem(error="internal", reason="internal error")
    return JSONResponse(body.model_dump(mode="json", exclude_none=True), status, headers)
