"""Proof for the DPO: a request's story, and an evidence pack anyone can check.

A request's ledger entries are kept in clear (they hold no personal data), so they
stay readable after the person's key is destroyed. A free text in one (a reason, a
partner's words) is only its salted hash there; while the person's key lives, the
story shows the text and the pack shows it with its salt (``texts``), so anyone can
check it is the text the chain committed to. The evidence pack lists the entries
with the chain segment that links them: every entry from the request's first to
its last, the others reduced to the hash of their detail, which is all the chain
needs. Anyone can recompute the segment offline with the rule in ``HOW_TO_CHECK``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from connectors.partner import OpenDsrConnector, PartnerConnector
from core import ackproofs, freetext
from core.canonical import NAME, canonical, digest
from core.crypto import Keyring
from core.db import ledger, ledger_pending, reader
from core.errors import BadInput, Unauthenticated
from privasync.app.evidence_check import CHAINED, segment_problem
from privasync.app.subject_requests import get, received, received_summary, summary
from privasync.app.views import Evidence

STORY_KINDS = ("request.", "subject.erased", "suppression.blocked")
HOW_TO_CHECK = (
    "Every JSON hash here is the SHA-256 of the value's RFC 8785 (JCS) bytes. For each entry "
    "in order: hash = sha256 over the UTF-8 of prev_hash, seq, at (ISO 8601), kind, "
    "subject_id (or '-') and detail_sha256 (or '-'), each followed by the byte 0x1F; an "
    "entry's prev_hash is the hash of the entry before it. detail_sha256 is the SHA-256 of "
    "the stored detail bytes: for the request's own entries, of the RFC 8785 form of the "
    "detail shown (or of detail_stored, the exact text of an entry stored before privasync "
    "used RFC 8785). A free text (a reason, a partner's words) is in the detail only as "
    "{\"hmac_sha256\": H}; while the person's key lives the entry's texts shows it with its "
    "salt, and H is HMAC-SHA256 of the text's UTF-8 keyed with the salt's bytes (hex); "
    "once the person is erased only H remains. digests holds the SHA-256 of each part's "
    "RFC 8785 form. The pack is not signed: compare its hashes with the ledger (privasync "
    "audit verify) to tie it to it. "
    "privasync requests evidence --verify FILE does all of this offline.")


def _about(detail: bytes | None, request_id: str) -> dict[str, Any] | None:
    """The entry's detail if it is a clear JSON detail about this request."""
    if detail is None:
        return None
    try:
        found = json.loads(detail)
    except (ValueError, UnicodeDecodeError):
        return None  # sealed under a subject's key: not a request entry
    return found if isinstance(found, dict) and found.get("request") == request_id else None


def _stored(stored: bytes, detail: dict[str, Any]) -> dict[str, str]:
    """The stored text when it is not the RFC 8785 form of ``detail`` (an entry written
    before privasync used RFC 8785), so its ``detail_sha256`` can still be recomputed."""
    return {} if stored == canonical(detail) else {"detail_stored": stored.decode()}


def _with_texts(conn: Connection, keyring: Keyring,
                entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each entry with the free texts its detail refers to that can still be read (the
    person's key lives): ``texts`` gives each one's text and salt, by field."""
    found = freetext.opened(conn, keyring, [h for e in entries
                                            for h in freetext.marks(e["detail"]).values()])
    for e in entries:
        texts = {name: {"text": found[h].text, "salt": found[h].salt}
                 for name, h in freetext.marks(e["detail"]).items() if h in found}
        if texts:
            e["texts"] = texts
    return entries


def _entries(conn: Connection, keyring: Keyring, subject_id: str,
             request_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(select(ledger).where(
        ledger.c.subject_id == subject_id,
        ledger.c.kind.like("request.%") | ledger.c.kind.in_(["subject.erased",
                                                              "suppression.blocked"]))
        .order_by(ledger.c.seq)).all()
    out = []
    for r in rows:
        detail = _about(r.detail, request_id)
        if detail is not None:
            out.append({"seq": r.seq, "at": r.at.isoformat(), "kind": r.kind,
                        "subject_id": r.subject_id, "detail": detail,
                        "detail_sha256": hashlib.sha256(r.detail).hexdigest(),
                        "prev_hash": r.prev_hash, "hash": r.hash, **_stored(r.detail, detail)})
    for r in conn.execute(select(ledger_pending).where(ledger_pending.c.subject_id == subject_id)
                          .order_by(ledger_pending.c.id)):
        detail = _about(r.detail, request_id)
        if detail is not None:
            out.append({"seq": None, "at": r.at.isoformat(), "kind": r.kind,
                        "subject_id": r.subject_id, "detail": detail,
                        "pending": "not chained yet: the applier chains it within seconds"})
    return _with_texts(conn, keyring, out)


def story(desk: Evidence, request_id: str) -> dict[str, Any]:
    """The whole story of a request with times: received, verified, paused, extended,
    each destination's receipt, acknowledgements, the person told, completed; or, for a
    request stored but not applied yet, that it was received and when."""
    pending = received(desk, request_id)
    if pending is not None:
        return received_summary(pending)
    request = get(desk, request_id)
    with reader(desk.engine).connect() as conn:
        entries = _entries(conn, desk.keyring, request.subject_id, request_id)
    now = desk.clock()
    return {**summary(request, now),
            "history": [{"at": e["at"], "event": e["kind"], **{
                k: e.get("texts", {}).get(k, {}).get("text", v)
                for k, v in e["detail"].items() if k != "request"}} for e in entries]}


def evidence(desk: Evidence, request_id: str) -> dict[str, Any]:
    """The request's ledger entries with hashes, and the chain segment that links them."""
    request = get(desk, request_id)
    with reader(desk.engine).connect() as conn:
        entries = _entries(conn, desk.keyring, request.subject_id, request_id)
        chained = [e for e in entries if e["seq"] is not None]
        segment: list[dict[str, Any]] = []
        if chained:
            ours = {e["seq"] for e in chained}
            for r in conn.execute(select(ledger).where(
                    ledger.c.seq >= chained[0]["seq"], ledger.c.seq <= chained[-1]["seq"])
                    .order_by(ledger.c.seq)):
                if r.seq in ours:
                    continue
                segment.append({"seq": r.seq, "at": r.at.isoformat(), "kind": r.kind,
                                "subject_id": r.subject_id, "prev_hash": r.prev_hash,
                                "hash": r.hash, "detail_sha256": hashlib.sha256(
                                    r.detail).hexdigest() if r.detail is not None else None})
        acks = [ack_check(desk, p)
                for p in ackproofs.of_request(conn, desk.keyring, request_id)]
    pack = {"request": summary(request, desk.clock()), "how_to_check": HOW_TO_CHECK,
            "entries": entries, "acknowledgements": acks,
            "segment": sorted(segment + [{k: v for k, v in e.items() if k in CHAINED}
                                         for e in chained], key=lambda e: e["seq"]),
            "generated_at": desk.clock().isoformat()}
    return {"canonicalization": NAME, **pack,
            "digests": {part: digest(value) for part, value in pack.items()}}


def ack_check(desk: Evidence, proof: ackproofs.AckProof) -> dict[str, Any]:
    """A kept acknowledgement checked again: does the body it was signed as still hash to
    the ledger's ``proof_sha256``, and does the partner's signature over it still hold
    (at the time it was received)? The body itself is not shown (it may hold the partner's
    words about the person); the signature headers hold nothing personal."""
    out: dict[str, Any] = {"destination": proof.destination, "event": proof.event_id,
                           "proof_sha256": proof.proof_sha256,
                           "received_at": proof.received_at.isoformat(),
                           "signed_headers": proof.headers,
                           "body_sha256_matches": proof.body_matches}
    if proof.body is None or proof.headers is None:
        return out | {"signature": "not checked: the person's key is destroyed, and with "
                                   "it the body; the ledger's hash remains"}
    partner = desk.connector(proof.destination)
    try:
        if isinstance(partner, PartnerConnector):
            partner.verify_ack(proof.headers, proof.body, proof.received_at)
        elif isinstance(partner, OpenDsrConnector):
            partner.verify_callback(proof.headers, proof.body, proof.received_at)
        else:
            return out | {"signature": "not checked: the partner is not configured here"}
    except (Unauthenticated, BadInput) as exc:
        return out | {"signature": f"invalid: {exc}"}
    return out | {"signature": "valid"}


def check_segment(segment: Iterable[dict[str, Any]]) -> bool:
    """Recompute a segment as ``HOW_TO_CHECK`` says (what an outside reader would do)."""
    return segment_problem(segment) is None
