"""A database that cannot be reached is an outage, not a bug: 503 with Retry-After.

Webhook senders (HubSpot, Mailchimp, partners) retry a 5xx, so a delivery refused while
the database is away arrives again; nothing of it was stored. A 500 would say the same
to the sender but tell the operator something is broken in privasync."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.responses import JSONResponse

RETRY_AFTER_SECONDS = 5


def outage(exc: Exception) -> JSONResponse | None:
    """The 503 for a database outage (connection refused, reset, lost mid-transaction, or
    SQLite busy past its timeout); None for anything else."""
    if isinstance(exc, OperationalError) or (isinstance(exc, DBAPIError)
                                             and exc.connection_invalidated):
        return JSONResponse({"error": "unavailable",
                             "reason": "the database cannot be reached; nothing was stored, "
                                       "retry later"}, 503,
                            headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    return None
