"""What a read's query string asks of the Mailchimp emulator: paging and partial responses.

Mailchimp answers every read with the whole resource, ``_links`` included, unless
``fields`` names what to keep or ``exclude_fields`` what to leave out. Both take
comma-separated dotted paths (``members.email_address``, ``merge_fields.FNAME``)
that reach into arrays, so clients can keep answers small; the emulator applies
them the same way so a client relying on them is tested against that.
"""

from __future__ import annotations

from typing import Any

from privasync.emulators.http import Request
from privasync.emulators.mailchimp.common import Problem

# A path tree: each name maps to the tree below it, or to None for the whole value.
Tree = dict[str, "Tree | None"]


def page_arg(request: Request, name: str, default: int, lowest: int, highest: int | None) -> int:
    """``count``/``offset`` checked, not clamped: a client paging wrongly should see a 400."""
    raw = request.arg(name)
    value = default if raw is None else int(raw) if raw.isdecimal() else -1
    if value < lowest or (highest is not None and value > highest):
        limit = f"from {lowest} to {highest}" if highest is not None else f"at least {lowest}"
        raise Problem(400, "Invalid Resource", f"{name} must be a whole number {limit}.",
                      [{"field": name, "message": "Invalid value."}])
    return value


def select(body: dict[str, Any], request: Request) -> dict[str, Any]:
    """The body cut down by the request's ``fields`` and then its ``exclude_fields``."""
    fields, excluded = request.arg("fields"), request.arg("exclude_fields")
    kept: dict[str, Any] = _pick(body, _tree(fields)) if fields else body
    return _drop(kept, _tree(excluded)) if excluded else kept


def _tree(paths: str) -> Tree:
    """``a,b.c,b.d`` as ``{a: None, b: {c: None, d: None}}``; a whole ``b`` beats ``b.c``."""
    tree: Tree = {}
    for path in (p.strip() for p in paths.split(",")):
        *parents, leaf = path.split(".")
        node: Tree | None = tree
        for part in parents:
            node = node.setdefault(part, {}) if node is not None else None
        if node is not None and leaf:
            node[leaf] = None
    return tree


def _pick(value: Any, tree: Tree | None) -> Any:
    if tree is None:
        return value
    if isinstance(value, list):
        return [_pick(item, tree) for item in value]
    if isinstance(value, dict):
        return {k: _pick(v, tree[k]) for k, v in value.items() if k in tree}
    return value


def _drop(value: Any, tree: Tree) -> Any:
    if isinstance(value, list):
        return [_drop(item, tree) for item in value]
    if isinstance(value, dict):
        kept: dict[str, Any] = {}
        for key, item in value.items():
            if key not in tree:
                kept[key] = item
            elif (below := tree[key]) is not None:
                kept[key] = _drop(item, below)
        return kept
    return value
