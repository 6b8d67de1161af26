"""What the Mailchimp emulator's modules share: constants, the clock, problem+json errors."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

from emulators.http import Response

PREFIX = "/3.0"
MAX_BATCH = 500
MAX_PAGE = 1000
EVENTS = frozenset({"subscribe", "unsubscribe", "profile", "cleaned", "upemail", "campaign"})
SOURCES = frozenset({"user", "admin", "api"})
WRITABLE = frozenset({"subscribed", "unsubscribed", "pending", "transactional"})
STATUSES = WRITABLE | {"cleaned", "archived"}
_ERRORS_DOC = "https://mailchimp.com/developer/marketing/docs/errors/"
_TITLES = {400: "Invalid Resource", 401: "API Key Invalid", 404: "Resource Not Found",
           405: "Method Not Allowed", 429: "Too Many Requests"}
_COMPLIANCE = ("The contact is in a compliance state due to unsubscribe, bounce, or "
               "compliance review and cannot be subscribed.")
_FORGOTTEN = ("The contact was permanently deleted and cannot be re-imported. "
              "The contact must re-subscribe to get back on the list.")


def subscriber_hash(email: str) -> str:
    return hashlib.md5(email.lower().encode("utf-8"), usedforsecurity=False).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


class Problem(Exception):
    """An API error answered as ``application/problem+json``."""

    def __init__(self, status: int, title: str, detail: str,
                 errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(title)
        self.status, self.title, self.detail, self.errors = status, title, detail, errors

    def response(self, instance: str = "") -> Response:
        body: dict[str, Any] = {"type": _ERRORS_DOC, "title": self.title, "status": self.status,
                                "detail": self.detail, "instance": instance or str(uuid.uuid4())}
        if self.errors is not None:
            body["errors"] = self.errors
        return Response(self.status, body, content_type="application/problem+json")
