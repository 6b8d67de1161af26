"""What the HubSpot emulator's modules share: constants, clocks, records, the error shape."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, get_args

from privasync.emulators.contracts.hubspot.common import BATCH_LIMIT as CONTRACT_BATCH_LIMIT
from privasync.emulators.contracts.hubspot.preferences import LegalBasis
from privasync.emulators.http import Response

# The emulator keeps statuses in v3's spelling (what ``subscription_status`` answers); the
# v4 endpoints translate: v4 spells an opt-out UNSUBSCRIBED (contracts.hubspot.preferences).
SUBSCRIBED, NOT_SUBSCRIBED, NOT_SPECIFIED = "SUBSCRIBED", "NOT_SUBSCRIBED", "NOT_SPECIFIED"
UNSUBSCRIBED = "UNSUBSCRIBED"
TO_V4 = {SUBSCRIBED: SUBSCRIBED, NOT_SUBSCRIBED: UNSUBSCRIBED, NOT_SPECIFIED: NOT_SPECIFIED}
FROM_V4 = {v4: v3 for v3, v4 in TO_V4.items()}
LEGAL_BASES = frozenset(get_args(LegalBasis))
BATCH_LIMIT = CONTRACT_BATCH_LIMIT


def _now_ms() -> int:
    return int(time.time() * 1000)


def _iso(ms: int) -> str:
    stamp = datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def _error(status: int, message: str, category: str, **extra: Any) -> Response:
    """HubSpot's ``Error`` body (contracts.hubspot.common.Error)."""
    body = {"status": "error", "message": message, "correlationId": str(uuid.uuid4()),
            "category": category, **{k: v for k, v in extra.items() if v is not None}}
    return Response(status, body)


def standard_error(message: str, category: str, context: dict[str, list[str]],
                   errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One refused item of a batch, in the spec's ``StandardError`` shape (all six
    fields; ``status`` is "error" as HubSpot's batch answers carry it)."""
    return {"status": "error", "category": category, "message": message, "context": context,
            "errors": errors or [], "links": {}}


class HubSpotError(Exception):
    """A refusal in HubSpot's error shape; route handlers turn it into the HTTP answer."""

    def __init__(self, status: int, message: str, category: str = "VALIDATION_ERROR", *,
                 errors: list[dict[str, Any]] | None = None,
                 context: dict[str, list[str]] | None = None,
                 links: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.category = status, message, category
        self.errors, self.context, self.links = errors, context, links

    def response(self) -> Response:
        return _error(self.status, self.message, self.category, errors=self.errors,
                      context=self.context, links=self.links)


@dataclass
class _Contact:
    id: str
    properties: dict[str, str]
    created_ms: int
    updated_ms: int
    archived_ms: int | None = None


@dataclass(frozen=True)
class StatusChange:
    """One recorded change of an address's subscription status (the audit trail)."""

    subscription_id: int
    status: str
    at: datetime
    source: str
    legal_basis: str | None = None
    explanation: str | None = None


@dataclass(frozen=True)
class _Definition:
    id: int
    name: str
