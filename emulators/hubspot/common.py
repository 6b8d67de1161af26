"""What the HubSpot emulator's modules share: constants, clocks, records, the error shape."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from emulators.http import Response

SUBSCRIBED, NOT_SUBSCRIBED, NOT_SPECIFIED = "SUBSCRIBED", "NOT_SUBSCRIBED", "NOT_SPECIFIED"
LEGAL_BASES = frozenset({
    "LEGITIMATE_INTEREST_PQL", "LEGITIMATE_INTEREST_CLIENT", "PERFORMANCE_OF_CONTRACT",
    "CONSENT_WITH_NOTICE", "NON_GDPR", "PROCESS_AND_STORE", "LEGITIMATE_INTEREST_OTHER",
})
BATCH_LIMIT = 100


def _now_ms() -> int:
    return int(time.time() * 1000)


def _iso(ms: int) -> str:
    stamp = datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def _error(status: int, message: str, category: str, **extra: Any) -> Response:
    body = {"status": "error", "message": message, "correlationId": str(uuid.uuid4()),
            "category": category, **extra}
    return Response(status, body)


class HubSpotError(Exception):
    """A refusal in HubSpot's error shape; route handlers turn it into the HTTP answer."""

    def __init__(self, status: int, message: str, category: str = "VALIDATION_ERROR") -> None:
        super().__init__(message)
        self.status, self.message, self.category = status, message, category

    def response(self) -> Response:
        return _error(self.status, self.message, self.category)


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
