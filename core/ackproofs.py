"""Partner acknowledgements kept as they were signed, so their proof can be checked later.

The ledger keeps an acknowledgement's ``proof_sha256`` (the SHA-256 of the signed
body) in its chained, clear entry; this keeps what that hash and the signature
were computed over: the exact body and the headers that signed it. The body may
carry the partner's own words about the person, so it is sealed under the
person's key (like consent evidence) and goes with the key: once the person is
erased, only the chained hash remains. An acknowledgement arriving after the key
is gone keeps nothing here.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection

from core import keys
from core.crypto import Keyring
from core.db import ack_proofs, insert_for, requests
from core.model import RequestAcknowledged


@dataclass(frozen=True)
class AckProof:
    """One stored acknowledgement; ``body`` and ``headers`` are None once unreadable."""

    request_id: str
    destination: str
    event_id: str
    proof_sha256: str
    received_at: datetime
    body: bytes | None
    headers: Mapping[str, str] | None

    @property
    def body_matches(self) -> bool | None:
        """Whether the kept body still hashes to the proof (None: nothing readable kept)."""
        if self.body is None:
            return None
        return hashlib.sha256(self.body).hexdigest() == self.proof_sha256


def row(ev: RequestAcknowledged, request_id: str, key: bytes | None) -> dict[str, object] | None:
    """The stored form of ``ev``'s signed delivery, or None when there is nothing to keep
    (no signed body came with it) or no key to seal it under (the person is erased).
    ``received_at`` is when it came in (the event's time), against which its signature's
    timestamp was checked."""
    if not ev.signed_body or key is None:
        return None
    sealed = Keyring.encrypt(key, json.dumps({
        "body": base64.b64encode(ev.signed_body).decode("ascii"),
        "headers": dict(ev.signed_headers)}, sort_keys=True).encode())
    return {"request_id": request_id, "destination": ev.destination,
            "event_id": ev.meta.source_event_id, "proof_sha256": ev.proof,
            "received_at": ev.meta.occurred_at, "signed": sealed}


def write(conn: Connection, rows: Sequence[dict[str, object]]) -> None:
    """Store these in the caller's transaction; one already kept (a redelivery) stays."""
    for r in rows:
        conn.execute(insert_for(conn, ack_proofs).values(**r).on_conflict_do_nothing())


def shred(conn: Connection, subject_ids: Sequence[str]) -> None:
    """The erased people's kept acknowledgements go with their key."""
    conn.execute(delete(ack_proofs).where(ack_proofs.c.request_id.in_(
        select(requests.c.id).where(requests.c.subject_id.in_(list(subject_ids))))))


def of_request(conn: Connection, keyring: Keyring, request_id: str) -> list[AckProof]:
    """The request's kept acknowledgements, opened with its subject's key while it lives."""
    rows = conn.execute(select(ack_proofs, requests.c.subject_id)
                        .join(requests, requests.c.id == ack_proofs.c.request_id)
                        .where(ack_proofs.c.request_id == request_id)
                        .order_by(ack_proofs.c.received_at, ack_proofs.c.event_id)).all()
    found = keys.keys_of(conn, keyring, sorted({r.subject_id for r in rows}))
    return [_opened(r, found.get(r.subject_id)) for r in rows]


def _opened(r: Any, key: bytes | None) -> AckProof:
    plain = Keyring.decrypt(key, r.signed) if key is not None else None
    body: bytes | None = None
    headers: dict[str, str] | None = None
    if plain is not None:
        document = json.loads(plain)
        body, headers = base64.b64decode(document["body"]), dict(document["headers"])
    return AckProof(r.request_id, r.destination, r.event_id, r.proof_sha256, r.received_at,
                    body, headers)
