"""Vendor and partner JSON in: read within ``core.strict_json``'s bounds, then validated by
a pydantic model, the one place a shape is written down.

A refusal is BadInput whose reason the caller builds from ``errors(include_input=False)``:
the field and the rule, never a value. The ValidationError is not chained (its text
quotes the input), so no traceback can carry what the sender wrote.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

from core import strict_json
from core.errors import BadInput

M = TypeVar("M", bound=BaseModel)
Reason = Callable[[Sequence[ErrorDetails]], str]


def validated(model: type[M], document: object, reason: Reason, *,
              context: Mapping[str, Any] | None = None) -> M:
    """``document`` as ``model``; BadInput with ``reason(errors)`` when it does not fit."""
    try:
        return model.model_validate(document, context=context)
    except ValidationError as exc:
        problems = exc.errors(include_url=False, include_input=False, include_context=False)
    raise BadInput(reason(problems))


def parsed(body: bytes, what: str, names: Collection[str], model: type[M], reason: Reason,
           *, context: Mapping[str, Any] | None = None) -> M:
    """``body`` read by ``strict_json.loads`` (depth, UTF-8, surrogate and NUL guard), then
    validated as ``model``. Raises BadInput (NotJson for no JSON at all)."""
    return validated(model, strict_json.loads(body, what, names), reason, context=context)


def required(value: object) -> object:
    """A before-validator: null is as absent as a missing key."""
    if value is None:
        raise PydanticCustomError("missing", "required")
    return value


def field_of(problem: ErrorDetails) -> str:
    """The top-level field a problem is about ('' for the document itself)."""
    return str(problem["loc"][0]) if problem["loc"] else ""
