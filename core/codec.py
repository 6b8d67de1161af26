"""Canonical events as JSON, for inbox rows whose source is not a vendor's raw body.

Webhook deliveries are stored raw and parsed again by their connector when
applied; the Salesforce poller and the admin surface hand over canonical
events, which are stored in this form. Every timestamp keeps its zone.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from core.errors import BadInput
from core.model import (
    CanonicalEvent,
    Channel,
    ConsentChange,
    ConsentChanged,
    ConsentStatus,
    ErasureRequested,
    EventMeta,
    Evidence,
    FieldValue,
    IdentifierChanged,
    RecordChanged,
    RequestAcknowledged,
    RequestAction,
    RequestKind,
    RequestReceived,
    RequestStep,
    SubjectDeleted,
    SubjectHint,
    SubjectSeen,
    SubjectsMerged,
    SystemRef,
    require_aware,
)

Json = dict[str, Any]


def _ref(ref: SystemRef | None) -> list[str] | None:
    return [ref.system, ref.ref] if ref is not None else None


def _hint(hint: SubjectHint) -> Json:
    return {"ref": _ref(hint.ref), "email": hint.email}


def _meta(meta: EventMeta) -> Json:
    return {"source": meta.source, "id": meta.source_event_id,
            "at": meta.occurred_at.isoformat(), "kind": meta.kind}


def encode_event(ev: CanonicalEvent) -> Json:
    out: Json = {"type": type(ev).__name__, "meta": _meta(ev.meta)}
    if isinstance(ev, SubjectsMerged):
        out |= {"primary": _hint(ev.primary), "merged": [_ref(r) for r in ev.merged]}
        return out
    if isinstance(ev, RequestAction):
        return out | {"request_id": ev.request_id, "step": ev.step.value, "reason": ev.reason,
                      "months": ev.months, "destination": ev.destination, "actor": ev.actor,
                      "receipt": [list(p) for p in ev.receipt],
                      "records": [list(p) for p in ev.records]}
    if isinstance(ev, RequestAcknowledged):
        return out | {"destination": ev.destination, "request_id": ev.request_id,
                      "completed": ev.completed, "detail": ev.detail, "proof": ev.proof,
                      "signed_body": base64.b64encode(ev.signed_body).decode("ascii"),
                      "signed_headers": [list(p) for p in ev.signed_headers]}
    out["subject"] = _hint(ev.subject)
    if isinstance(ev, RequestReceived):
        out |= {"kind": ev.kind.value, "request_id": ev.request_id,
                "identity_verified": ev.identity_verified, "actor": ev.actor,
                "fields": [[n, v.value, v.collected_at.isoformat()] for n, v in ev.fields]}
    if isinstance(ev, ConsentChanged):
        out["changes"] = [[c.purpose, c.channel.value, c.status.value] for c in ev.changes]
        out["evidence"] = None if ev.evidence is None else {
            "source": ev.evidence.source, "method": ev.evidence.method,
            "wording_version": ev.evidence.wording_version,
            "proof_reference": ev.evidence.proof_reference}
    elif isinstance(ev, RecordChanged):
        out["fields"] = [[name, v.value, v.collected_at.isoformat()] for name, v in ev.fields]
    elif isinstance(ev, IdentifierChanged):
        out |= {"new_email": ev.new_email, "new_ref": _ref(ev.new_ref)}
    return out


def encode(events: Sequence[CanonicalEvent]) -> bytes:
    return json.dumps([encode_event(e) for e in events], separators=(",", ":")).encode()


def _when(text: str) -> datetime:
    return require_aware(datetime.fromisoformat(text), "timestamp")


def _to_ref(raw: list[str] | None) -> SystemRef | None:
    return SystemRef(raw[0], raw[1]) if raw is not None else None


def _to_hint(raw: Json) -> SubjectHint:
    return SubjectHint(ref=_to_ref(raw["ref"]), email=raw["email"])


def _consent(meta: EventMeta, raw: Json) -> ConsentChanged:
    evidence = Evidence(**raw["evidence"]) if raw["evidence"] is not None else None
    changes = tuple(ConsentChange(p, Channel(c), ConsentStatus(s)) for p, c, s in raw["changes"])
    return ConsentChanged(meta, _to_hint(raw["subject"]), changes, evidence)


def _record(meta: EventMeta, raw: Json) -> RecordChanged:
    fields = tuple((n, FieldValue(v, _when(t))) for n, v, t in raw["fields"])
    return RecordChanged(meta, _to_hint(raw["subject"]), fields)


def _identifier(meta: EventMeta, raw: Json) -> IdentifierChanged:
    return IdentifierChanged(meta, _to_hint(raw["subject"]), raw["new_email"],
                             _to_ref(raw["new_ref"]))


def _merged(meta: EventMeta, raw: Json) -> SubjectsMerged:
    merged = tuple(r for r in (_to_ref(m) for m in raw["merged"]) if r is not None)
    return SubjectsMerged(meta, _to_hint(raw["primary"]), merged)


def _request(meta: EventMeta, raw: Json) -> RequestReceived:
    fields = tuple((n, FieldValue(v, _when(t))) for n, v, t in raw["fields"])
    return RequestReceived(meta, _to_hint(raw["subject"]), RequestKind(raw["kind"]),
                           raw["request_id"], bool(raw["identity_verified"]), fields,
                           raw["actor"])


def _action(meta: EventMeta, raw: Json) -> RequestAction:
    return RequestAction(meta, raw["request_id"], RequestStep(raw["step"]), raw["reason"],
                         int(raw["months"]), raw["destination"], raw["actor"],
                         tuple((str(k), str(v)) for k, v in raw["receipt"]),
                         # Steps stored before reviews existed have no records.
                         tuple((str(r), str(d)) for r, d in raw.get("records", [])))


def _ack(meta: EventMeta, raw: Json) -> RequestAcknowledged:
    # Events encoded before the signed delivery was kept have neither field.
    return RequestAcknowledged(meta, raw["destination"], raw["request_id"],
                               bool(raw["completed"]), raw["detail"], raw["proof"],
                               base64.b64decode(raw.get("signed_body", "")),
                               tuple((str(k), str(v)) for k, v in raw.get("signed_headers", [])))


_DECODE: dict[str, Callable[[EventMeta, Json], CanonicalEvent]] = {
    "RequestReceived": _request,
    "RequestAction": _action,
    "RequestAcknowledged": _ack,
    "ConsentChanged": _consent,
    "RecordChanged": _record,
    "IdentifierChanged": _identifier,
    "SubjectsMerged": _merged,
    "SubjectSeen": lambda m, r: SubjectSeen(m, _to_hint(r["subject"])),
    "SubjectDeleted": lambda m, r: SubjectDeleted(m, _to_hint(r["subject"])),
    "ErasureRequested": lambda m, r: ErasureRequested(m, _to_hint(r["subject"])),
}


def decode(body: bytes, received_at: datetime | None = None) -> list[CanonicalEvent]:
    """The events of an ``encode``d body; BadInput if it is not one."""
    try:
        events = []
        for raw in json.loads(body):
            m = raw["meta"]
            meta = EventMeta(m["source"], m["id"], _when(m["at"]), m["kind"])
            events.append(_DECODE[raw["type"]](meta, raw))
        return events
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInput(f"stored events are not canonical JSON ({type(exc).__name__})") from None
