"""Every request body the emulator takes is read through its contract, and refused as
HubSpot refuses it.

What is from the spec: the refusal is the spec's ``Error`` (400, category
``VALIDATION_ERROR``) and what is refused (a missing required field, a value outside an
enum, a batch over the documented 100). The wording is HubSpot's JSON reader's as seen in
its answers ("Invalid input JSON on line 1, column 1: Cannot build X, some of required
attributes are not set [...]", "... not one of the values accepted for Enum class: [...]",
"Unrecognized field ... not marked as ignorable"): an assumption the spec does not fix.
A body that is not ``application/json`` gets 415 (the spec's ``requestBody`` names only
that media type; status and wording are assumptions).
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from privasync.emulators.http import Request
from privasync.emulators.hubspot.common import BATCH_LIMIT, HubSpotError

M = TypeVar("M", bound=BaseModel)
_PREFIX = "Invalid input JSON on line 1, column 1: "


def json_body(request: Request) -> Any:
    """The parsed JSON of a request that must carry one; HubSpotError otherwise."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise HubSpotError(415, f"Content type '{kind or 'none'}' is not supported; send "
                                "application/json")
    try:
        return json.loads(request.body.decode("utf-8")) if request.body else None
    except (UnicodeDecodeError, ValueError):
        raise HubSpotError(400, _PREFIX + "Unexpected character") from None


def parse(model: type[M], request: Request) -> M:
    """The request's body as ``model``; the first contract violation becomes HubSpot's 400."""
    body = json_body(request)
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise refusal(model, exc) from None


def refusal(model: type[BaseModel], exc: ValidationError) -> HubSpotError:
    """HubSpot's answer to the first of ``exc``'s errors, naming fields, never values
    (but an enum's, which is one of HubSpot's words)."""
    errors = exc.errors()
    missing = [_where(e["loc"]) for e in errors if e["type"] == "missing"]
    if missing:
        return _bad(f"Cannot build {model.__name__}, some of required attributes are not set "
                    f"[{', '.join(missing)}]", missing[0])
    first = errors[0]
    where, kind = _where(first["loc"]), first["type"]
    if kind == "literal_error":
        expected = str(first.get("ctx", {}).get("expected", "")).replace("'", "")
        expected = expected.replace(" or ", ", ")
        return _bad(f"Cannot deserialize value of type `{where}` from String "
                    f"\"{first['input']}\": not one of the values accepted for Enum class: "
                    f"[{expected}]", where)
    if kind == "extra_forbidden":
        return _bad(f"Unrecognized field \"{first['loc'][-1]}\" (class {model.__name__}), "
                    "not marked as ignorable", where)
    if kind == "too_long":
        size = len(first["input"]) if isinstance(first["input"], list) else BATCH_LIMIT + 1
        return HubSpotError(400, f"Too many inputs: {size} (limit {BATCH_LIMIT})",
                            errors=[{"message": f"at most {BATCH_LIMIT} inputs", "in": where}])
    return _bad(f"{first['msg']} at {where}", where)


def _where(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "body"


def _bad(message: str, where: str) -> HubSpotError:
    return HubSpotError(400, _PREFIX + message, errors=[{"message": message, "in": where}])
