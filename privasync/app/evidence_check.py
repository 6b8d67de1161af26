"""``privasync requests evidence --verify FILE``: check an evidence pack offline.

Needs no database and no key: every hash in the pack is recomputed from what the pack
shows, with the rules in its ``how_to_check``. What this proves is that the pack is
whole and consistent: every detail hashes to its ``detail_sha256``, every free text
shown (``texts``, in a pack made while the person's key lived) is the one its detail's
salted hash commits to, every entry's hash
is the hash of its fields, the segment's entries link one to the next, and each part
matches its digest. The pack carries no signature, so it does not prove who made it:
comparing its hashes with the ledger (``privasync audit verify``) does that.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.canonical import NAME, canonical, digest
from core.errors import BadInput
from core.freetext import MARK, commitment

PARTS = ("request", "how_to_check", "entries", "segment", "generated_at")
CHAINED = ("seq", "at", "kind", "subject_id", "detail_sha256", "prev_hash", "hash")


class NotAPack(BadInput):
    """The file cannot be read, is not JSON, or is not shaped as an evidence pack."""


class _Broken(Exception):
    """The first thing in one part of the pack that does not hold."""


@dataclass(frozen=True)
class Finding:
    """One line of the verdict: what was checked, whether it holds, and why not."""

    what: str
    holds: bool
    detail: str


def load(path: Path) -> dict[str, Any]:
    """The pack in ``path``. Raises NotAPack (one line, no content of the file)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise NotAPack(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        pack = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        where = f" (line {exc.lineno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise NotAPack(f"{path} is not JSON{where}") from None
    if not isinstance(pack, dict) or not all(
            isinstance(pack.get(k), list) and all(isinstance(e, dict) for e in pack[k])
            for k in ("entries", "segment")):
        raise NotAPack(f"{path} is not an evidence pack (no 'entries' and 'segment' lists; "
                       "make one with privasync requests evidence ID --out FILE)")
    return pack


def _name(e: dict[str, Any]) -> str:
    return f"entry {e.get('seq')} ({e.get('kind')})"


def entry_hash(e: dict[str, Any]) -> str:
    """An entry's hash as ``how_to_check`` says: SHA-256 over its fields, each followed
    by 0x1F. Raises _Broken when a field is missing or of the wrong type."""
    parts = (e.get("prev_hash"), e.get("seq"), e.get("at"), e.get("kind"),
             e.get("subject_id") or "-", e.get("detail_sha256") or "-")
    if not all(isinstance(p, str) for p in parts[:1] + parts[2:]) or \
            not isinstance(parts[1], int) or isinstance(parts[1], bool):
        raise _Broken(f"{_name(e)}: a field is missing or not of its type")
    h = hashlib.sha256()
    for part in parts:
        h.update(str(part).encode())
        h.update(b"\x1f")
    return h.hexdigest()


def segment_problem(segment: Iterable[dict[str, Any]]) -> str | None:
    """The first entry of ``segment`` whose hash or link does not hold, and why."""
    try:
        _check_segment(list(segment))
    except _Broken as exc:
        return str(exc)
    return None


def _check_segment(segment: list[dict[str, Any]]) -> str:
    previous: dict[str, Any] | None = None
    for e in segment:
        if previous is not None and e.get("seq") != _next(previous):
            raise _Broken(f"{_name(e)}: follows entry {previous.get('seq')}, not the next one")
        if previous is not None and e.get("prev_hash") != previous.get("hash"):
            raise _Broken(f"{_name(e)}: its prev_hash is not the hash of the entry before")
        if entry_hash(e) != e.get("hash"):
            raise _Broken(f"{_name(e)}: its hash is not the hash of its fields")
        previous = e
    return f"{len(segment)} entries, each hash recomputed, each linked to the one before"


def _next(e: dict[str, Any]) -> int | None:
    seq = e.get("seq")
    return seq + 1 if isinstance(seq, int) else None


def _check_details(entries: list[dict[str, Any]]) -> str:
    checked = 0
    for e in entries:
        if e.get("seq") is None:
            continue  # not chained yet when the pack was made: no hash to check
        stored = e.get("detail_stored")
        if stored is not None:  # written before RFC 8785: the exact stored text
            if not isinstance(stored, str) or _parsed(stored) != e.get("detail"):
                raise _Broken(f"{_name(e)}: detail_stored is not the detail shown")
            found = hashlib.sha256(stored.encode()).hexdigest()
        else:
            try:
                found = hashlib.sha256(canonical(e.get("detail"))).hexdigest()
            except ValueError:
                raise _Broken(f"{_name(e)}: its detail has no {NAME} form") from None
        if found != e.get("detail_sha256"):
            raise _Broken(f"{_name(e)}: its detail does not hash to its detail_sha256")
        checked += 1
    return f"{checked} chained entries' details hash to their detail_sha256 ({NAME})"


def _check_texts(entries: list[dict[str, Any]]) -> str:
    checked = 0
    for e in entries:
        texts, detail = e.get("texts", {}), e.get("detail")
        if not isinstance(texts, dict) or not isinstance(detail, dict):
            raise _Broken(f"{_name(e)}: its texts or its detail is not an object")
        for name, shown in texts.items():
            mark = detail.get(name)
            if not isinstance(mark, dict) or not isinstance(mark.get(MARK), str):
                raise _Broken(f"{_name(e)}: its detail has no salted hash for text '{name}'")
            if not isinstance(shown, dict) or commitment(
                    _salt(shown.get("salt")), _text(shown.get("text"))) != mark[MARK]:
                raise _Broken(f"{_name(e)}: text '{name}' does not hash to its detail's "
                              f"{MARK}")
            checked += 1
    return f"{checked} free texts shown hash to their entry's {MARK} (with their salt)"


def _salt(value: object) -> bytes:
    try:
        return bytes.fromhex(value) if isinstance(value, str) and value else b""
    except ValueError:
        return b""  # no salt: its text matches nothing


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _parsed(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return _parsed  # equal to no detail


def _check_in_segment(entries: list[dict[str, Any]], segment: list[dict[str, Any]]) -> str:
    by_seq = {e.get("seq"): e for e in segment}
    chained = [e for e in entries if e.get("seq") is not None]
    for e in chained:
        found = by_seq.get(e.get("seq"))
        if found is None:
            raise _Broken(f"{_name(e)}: not in the segment")
        differs = [k for k in CHAINED if found.get(k) != e.get(k)]
        if differs:
            raise _Broken(f"{_name(e)}: its {differs[0]} differs from the segment's")
    return f"{len(chained)} request entries are in the segment as shown"


def _check_digests(pack: dict[str, Any]) -> str:
    digests = pack.get("digests")
    if not isinstance(digests, dict):
        raise _Broken("the pack has no digests of its parts")
    # Every part the pack must have, and any other it gives a digest for (the partner
    # acknowledgements checked again when the pack was made).
    parts = [*PARTS, *sorted(p for p in digests if p not in PARTS)]
    for part in parts:
        if part not in pack:
            raise _Broken(f"part '{part}' has a digest but is not in the pack")
        try:
            found = digest(pack.get(part))
        except ValueError:
            raise _Broken(f"part '{part}' has no {NAME} form") from None
        if digests.get(part) != found:
            raise _Broken(f"part '{part}' does not match its digest")
    return f"{', '.join(parts)} match their SHA-256 digests ({NAME})"


def _check_canonicalization(pack: dict[str, Any]) -> str:
    if pack.get("canonicalization") != NAME:
        raise _Broken(f"canonicalization is {pack.get('canonicalization')!r}; this checker "
                      f"knows {NAME}")
    return NAME


def verify(pack: dict[str, Any]) -> list[Finding]:
    """Every check on a loaded pack, in order; the first failing one names what broke."""
    entries, segment = pack["entries"], pack["segment"]
    checks: list[tuple[str, Callable[[], str]]] = [
        ("canonicalization", lambda: _check_canonicalization(pack)),
        ("details", lambda: _check_details(entries)),
        ("texts", lambda: _check_texts(entries)),
        ("entries", lambda: _check_in_segment(entries, segment)),
        ("chain", lambda: _check_segment(segment)),
        ("digests", lambda: _check_digests(pack))]
    findings = []
    for what, check in checks:
        try:
            findings.append(Finding(what, True, check()))
        except _Broken as exc:
            findings.append(Finding(what, False, str(exc)))
    return findings


SIGNATURE = ("none in the pack: it shows that the pack is whole and consistent, not who "
             "made it; compare its hashes with the ledger (privasync audit verify)")
