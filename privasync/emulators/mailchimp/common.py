"""What the Mailchimp emulator's modules share: constants, the clock, problem+json errors."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from privasync.emulators.contracts.mailchimp.common import (
    BATCH_LIMIT,
    INVALID_DETAIL,
    JSON_PARSE_ERROR,
    PAGE_LIMIT,
    PROBLEM_CONTENT_TYPE,
    PROBLEM_TYPE,
    READ_STATUSES,
    TITLES,
    WRITE_STATUSES,
    field_errors,
)
from privasync.emulators.contracts.mailchimp.lists import EVENT_TYPES, SOURCE_TYPES
from privasync.emulators.http import Request, Response

PREFIX = "/3.0"
MAX_BATCH = BATCH_LIMIT
MAX_PAGE = PAGE_LIMIT
EVENTS = frozenset(EVENT_TYPES)
SOURCES = frozenset(SOURCE_TYPES)
WRITABLE = WRITE_STATUSES
STATUSES = READ_STATUSES
_TITLES = TITLES
M = TypeVar("M", bound=BaseModel)
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
        body: dict[str, Any] = {"type": PROBLEM_TYPE, "title": self.title, "status": self.status,
                                "detail": self.detail, "instance": instance or str(uuid.uuid4())}
        if self.errors is not None:
            body["errors"] = self.errors
        return Response(self.status, body, content_type=PROBLEM_CONTENT_TYPE)


def validated(request: Request, model: type[M]) -> M:
    """The request's JSON body checked against its contract, or the problem Mailchimp
    answers: 400 "JSON Parse Error" for a body that is not a JSON object, 400 "Invalid
    Resource" naming each field (wrong type or enum, unknown property, missing field, too
    many items). A body sent as anything but JSON is refused the same way (assumption: the
    specification consumes application/json only and says nothing of other types)."""
    content_type = request.headers.get("content-type", "")
    if request.body and content_type.split(";")[0].strip().lower() != "application/json":
        raise Problem(400, JSON_PARSE_ERROR, "The request body must be sent as "
                      "application/json.")
    try:
        body = request.json()
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Problem(400, JSON_PARSE_ERROR, "The request body is not valid JSON.") from exc
    if not isinstance(body, dict):
        raise Problem(400, JSON_PARSE_ERROR, "The request body must be a JSON object.")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise Problem(400, TITLES[400], INVALID_DETAIL, field_errors(exc)) from exc
