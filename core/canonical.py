"""One canonical JSON for every hash a reader must recompute: RFC 8785 (JCS).

RFC 8785 fixes the bytes of a JSON value: UTF-8, no whitespace, members sorted by
their UTF-16 code units, numbers as ECMAScript prints them, strings minimally
escaped. So a DPO, an auditor or any JCS library in any language gets the same bytes,
and the same SHA-256, from the same value. The serialisation itself is the maintained
``rfc8785`` package (pure Python, no dependencies); this module only says what our
values become first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from enum import Enum

import rfc8785

NAME = "RFC 8785"
_SAFE = 2**53 - 1  # past this an integer has no exact JSON (IEEE 754) number


def _plain(value: object) -> object:
    """JSON's own types; anything else as its ``str`` (what ``json.dumps(default=str)``
    did before, so a datetime still reads the same), an unsafe integer as its digits."""
    if value is None or isinstance(value, bool | float | str):
        return value
    if isinstance(value, Enum):
        return _plain(value.value)
    if isinstance(value, int):
        return value if -_SAFE <= value <= _SAFE else str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)


def canonical(value: object) -> bytes:
    """The RFC 8785 bytes of ``value``. Raises ValueError for NaN or an infinity (JCS
    has no form for them) and for text that is not valid Unicode (a lone surrogate)."""
    try:
        return rfc8785.dumps(_plain(value))  # type: ignore[arg-type]
    except rfc8785.CanonicalizationError as exc:
        raise ValueError(f"no RFC 8785 form: {exc}") from None


def digest(value: object) -> str:
    """The SHA-256 (hex) of ``value``'s RFC 8785 bytes."""
    return hashlib.sha256(canonical(value)).hexdigest()
