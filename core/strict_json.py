"""JSON from outside, read within bounds: every webhook and callback parser reads its
body through ``loads``.

The standard parser recurses once per nesting level, so a signed body of 5,000
``[`` ends in RecursionError; it also accepts lone surrogates (``"\\ud800"``),
which fail much later, when the value is hashed or encrypted, and NUL
characters, which PostgreSQL refuses in text. Here the nesting depth is
measured before parsing, the bytes must be UTF-8, ``NaN``/``Infinity`` are
refused, and every string (key or value) must be valid Unicode without NUL.
A refusal is BadInput naming where in the document, never what was there.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection
from typing import Any

from core.errors import BadInput

MAX_DEPTH = 16


class NotJson(BadInput):
    """The body is no JSON document at all (as opposed to one beyond our bounds)."""

# A string literal (escapes included), then anything that is no bracket: what remains of a
# document is its brackets, from which the depth is counted without recursion.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")
_EMPTY_PAIR = re.compile(rb"\[\]|\{\}")


def depth(body: bytes) -> int | None:
    """How deeply ``body``'s arrays and objects nest, counted up to ``MAX_DEPTH + 1`` (a
    body with few brackets gets their number, a bound); None when its brackets do not
    pair up (it is no JSON then). Regular expressions only: no recursion, linear passes."""
    brackets_in_all = body.count(b"[") + body.count(b"{")
    if brackets_in_all <= MAX_DEPTH:
        return brackets_in_all
    brackets = _NOT_BRACKET.sub(b"", _STRING.sub(b"", body))
    level = 0
    while brackets and level <= MAX_DEPTH:
        inner = _EMPTY_PAIR.sub(b"", brackets)
        if inner == brackets:
            return None
        brackets, level = inner, level + 1
    return level


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("a number too large for a float")
    return value


def _place(path: tuple[str | int, ...], names: Collection[str]) -> str:
    """A path like ``[3].propertyValue``; a key the caller did not name is shown as ``?``
    (keys come from the sender too)."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else "." + (part if part in names else "?")
    return out.lstrip(".") or "the top level"


def text_problem(text: str) -> str | None:
    """What makes ``text`` unfit to keep (a NUL, a lone surrogate), or None."""
    return _bad_text(text)


def _bad_text(text: str) -> str | None:
    if "\x00" in text:
        return "holds a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid UTF-8 (a lone surrogate)"
    return None


def check_strings(document: Any, names: Collection[str] = ()) -> tuple[str, str] | None:
    """The first string in ``document`` (a key or a value) that is not valid Unicode or holds
    a NUL: (where, what is wrong), or None. Iterative, so any depth is safe."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), document)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, str):
            problem = _bad_text(node)
            if problem:
                return "the value at " + _place(path, names), problem
        elif isinstance(node, dict):
            for key, value in node.items():
                problem = _bad_text(key)
                if problem:
                    return "a key in " + _place(path, names), problem
                stack.append(((*path, key), value))
        elif isinstance(node, list):
            stack.extend(((*path, i), v) for i, v in enumerate(node))
    return None


def loads(body: bytes, what: str, names: Collection[str] = ()) -> Any:
    """Parse ``body`` (the document called ``what`` in reasons). Raises NotJson when it is
    no JSON, BadInput when it nests deeper than ``MAX_DEPTH`` or holds a string that is not
    valid Unicode or holds a NUL; the reason names the place (keys in ``names`` by name),
    never the value.
    """
    nesting = depth(body)
    if nesting is None:
        raise NotJson(f"{what} is not JSON")
    if nesting > MAX_DEPTH:
        raise BadInput(f"{what} nests deeper than {MAX_DEPTH} levels")
    # Invalid bytes become lone surrogates here, so that they are reported with their place.
    text = body.decode("utf-8", "surrogateescape")
    try:
        document = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite)
    except (ValueError, RecursionError):
        raise NotJson(f"{what} is not JSON") from None
    found = check_strings(document, names)
    if found is not None:
        where, problem = found
        raise BadInput(f"{what}: {where} {problem}")
    return document
