"""A partner's signed delivery as the inbox keeps it: the exact body and its signature
headers, so that the applier can keep them with the acknowledgement (core/ackproofs.py)
and the proof hash and signature can be checked again later.

The envelope is one JSON object under a single key no partner message has (a partner
body with it is refused at the door as a field outside its schema). Inbox rows stored
before the envelope existed are the bare body, and are read as such.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from connectors.partner.opendsr_signing import (
    DOMAIN_HEADER,
    LEGACY_DOMAIN_HEADER,
    LEGACY_SIGNATURE_HEADER,
)
from connectors.partner.opendsr_signing import SIGNATURE_HEADER as OPENDSR_SIGNATURE_HEADER
from connectors.signing import EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER
from core.model import CanonicalEvent, RequestAcknowledged
from core.ports import EventParser

ENVELOPE = "privasync_signed_delivery"
_PREFIX = b'{"' + ENVELOPE.encode() + b'":'
# The headers that sign a delivery, per scheme (nothing else is kept).
OWN_HEADERS = (TIMESTAMP_HEADER, SIGNATURE_HEADER, EVENT_ID_HEADER)
OPENDSR_HEADERS = (OPENDSR_SIGNATURE_HEADER, DOMAIN_HEADER, LEGACY_SIGNATURE_HEADER,
                   LEGACY_DOMAIN_HEADER)

Parser = Callable[[bytes, datetime], Sequence[CanonicalEvent]]


def wrap(body: bytes, headers: Mapping[str, str], names: Collection[str]) -> bytes:
    """The verified body with the signature headers among ``names`` (matched
    case-insensitively, kept under the names as ``names`` spell them), for the inbox."""
    wanted = {n.lower(): n for n in names}
    kept = {wanted[k.lower()]: v for k, v in headers.items() if k.lower() in wanted}
    return json.dumps({ENVELOPE: {"body": base64.b64encode(body).decode("ascii"),
                                  "headers": kept}}, sort_keys=True).encode()


def unwrap(stored: bytes) -> tuple[bytes, tuple[tuple[str, str], ...]]:
    """(body, signature headers) of an inbox row; a row without the envelope is the body."""
    if not stored.startswith(_PREFIX):
        return stored, ()
    inner = json.loads(stored)[ENVELOPE]
    return base64.b64decode(inner["body"]), tuple(sorted(
        (str(k), str(v)) for k, v in inner["headers"].items()))


def parsing(parse: Parser) -> EventParser:
    """``parse`` for inbox rows that may be wrapped: acknowledgements carry the signed
    delivery they came in."""

    def parse_signed(body: bytes, received_at: datetime) -> list[CanonicalEvent]:
        signed_body, headers = unwrap(body)
        return [replace(e, signed_body=signed_body, signed_headers=headers)
                if isinstance(e, RequestAcknowledged) and headers else e
                for e in parse(signed_body, received_at)]

    return parse_signed
