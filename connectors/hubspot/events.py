"""HubSpot webhook batches in, canonical events out.

Vendor JSON stops here: the core sees purposes and channels, never
``hs_email_optout``, and canonical field names, never ``firstname``. Reasons
for refusing a batch name the event index and the field, never a property value.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from core import strict_json
from core.errors import BadInput
from core.mappings import SystemMapping
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
    RecordChanged,
    SubjectDeleted,
    SubjectHint,
    SubjectSeen,
    SubjectsMerged,
    SystemRef,
)

SYSTEM = "hubspot"
MAX_EVENTS = 100
GLOBAL_OPTOUT = "hs_email_optout"
_SUBSCRIPTION_OPTOUT = "hs_email_optout_"
_IGNORED = frozenset({"contact.restore", "contact.associationChange"})
_REQUIRED_INTS = ("eventId", "objectId", "occurredAt")
_OPTIONAL_INTS = ("portalId", "subscriptionId", "primaryObjectId", "newObjectId", "appId",
                  "attemptNumber")
# HubSpot's ids are 64-bit; a bound keeps every dedupe key and reference within its column
# (five ids joined stay under events.source_event_id's 255 characters).
_MAX_ID = 2**63 - 1
_FIELDS = frozenset({*_REQUIRED_INTS, *_OPTIONAL_INTS, "subscriptionType", "propertyName",
                     "propertyValue", "changeSource", "sourceId", "changeFlag",
                     "mergedObjectIds", "numberOfPropertiesMoved", "messageId", "messageType"})


def contact_ref(object_id: int) -> SystemRef:
    return SystemRef(SYSTEM, f"contact:{object_id}")


def _is_int(value: object) -> bool:
    """A JSON integer HubSpot could send: not a boolean, within 0 .. 2**63 - 1."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_ID


_KNOWN = frozenset({"contact.propertyChange", "contact.creation", "contact.deletion",
                    "contact.privacyDeletion", "contact.merge"}) | _IGNORED
_LATEST_MS = 253402300799999  # 9999-12-31T23:59:59.999Z
# HubSpot documents no maximum for a merge's ids (a merge joins two records; a chain of
# earlier merges adds theirs): far more than 100 is no real merge, and each id costs a look-up.
MAX_MERGED = 100


def _check(index: int, raw: object) -> dict[str, Any]:
    """Check one event's shape; BadInput names the index, the field and the rule, never
    the value."""
    if not isinstance(raw, dict):
        raise BadInput(f"event {index}: not a JSON object")
    for name in (*_REQUIRED_INTS, "subscriptionType"):
        if raw.get(name) is None:
            raise BadInput(f"event {index}: missing {name}")
    for name in _REQUIRED_INTS + _OPTIONAL_INTS:
        if name in raw and raw[name] is not None and not _is_int(raw[name]):
            raise BadInput(f"event {index}: {name} must be an integer from 0 to 2^63-1")
    for name in ("subscriptionType", "propertyName", "propertyValue", "changeSource"):
        if name in raw and raw[name] is not None and not isinstance(raw[name], str):
            raise BadInput(f"event {index}: {name} must be a string")
    if raw["subscriptionType"] not in _KNOWN:
        raise BadInput(f"event {index}: subscriptionType is not one privasync subscribes to")
    if not 0 <= raw["occurredAt"] <= _LATEST_MS:
        raise BadInput(f"event {index}: occurredAt is out of range")
    merged = raw.get("mergedObjectIds", [])
    if isinstance(merged, list) and len(merged) > MAX_MERGED:
        raise BadInput(f"event {index}: mergedObjectIds holds more than {MAX_MERGED} ids")
    if not isinstance(merged, list) or not all(_is_int(i) for i in merged):
        raise BadInput(f"event {index}: mergedObjectIds must be a list of integers from 0 to "
                       "2^63-1")
    return raw


def _meta(raw: Mapping[str, Any]) -> EventMeta:
    """HubSpot's eventId is not unique: dedupe on portal, subscription, event, object, time."""
    occurred = datetime.fromtimestamp(raw["occurredAt"] / 1000, UTC)
    key = ":".join(str(raw.get(k, "")) for k in
                   ("portalId", "subscriptionId", "eventId", "objectId", "occurredAt"))
    return EventMeta(source=SYSTEM, source_event_id=key, occurred_at=occurred,
                     kind=raw["subscriptionType"])


class EventTranslator:
    """Turns one system mapping's HubSpot switches into canonical consent changes."""

    def __init__(self, mapping: SystemMapping) -> None:
        self._all_email = mapping.consent.all_email
        self._subscriptions = mapping.consent.subscriptions
        self._fields = {vendor: f.canonical for vendor, f in mapping.fields.items()}

    def validate(self, body: bytes) -> int:
        """Check a raw webhook body as ``parse`` would, building nothing (the door's check:
        every rule ``parse`` enforces lives in ``_valid``); returns its number of events."""
        return len(self._valid(body))

    def parse(self, body: bytes) -> list[CanonicalEvent]:
        """Translate a raw webhook body; raise BadInput if any event is malformed."""
        events = [self._one(raw) for raw in self._valid(body)]
        found = [e for e in events if e is not None]
        return sorted(found, key=lambda e: e.meta.occurred_at)

    def _valid(self, body: bytes) -> list[dict[str, Any]]:
        batch = strict_json.loads(body, "HubSpot webhook body", _FIELDS)
        if not isinstance(batch, list):
            raise BadInput("a HubSpot webhook body must be a JSON array of events")
        if len(batch) > MAX_EVENTS:
            raise BadInput(f"a HubSpot batch holds at most {MAX_EVENTS} events, got {len(batch)}")
        for i, raw in enumerate(batch):
            event = _check(i, raw)
            if event["subscriptionType"] == "contact.propertyChange" \
                    and self._targets(str(event.get("propertyName") or "")) \
                    and (event.get("propertyValue") or "") not in ("", "true", "false"):
                raise BadInput(f"event {i}: propertyValue of an opt-out must be true or false")
        return batch

    def _one(self, raw: Mapping[str, Any]) -> CanonicalEvent | None:
        meta, kind = _meta(raw), raw["subscriptionType"]
        subject = SubjectHint(ref=contact_ref(raw["objectId"]))
        if kind == "contact.propertyChange":
            return self._property_change(meta, subject, raw)
        if kind == "contact.creation":
            return SubjectSeen(meta=meta, subject=subject)
        if kind == "contact.deletion":
            return SubjectDeleted(meta=meta, subject=subject)
        if kind == "contact.privacyDeletion":
            return ErasureRequested(meta=meta, subject=subject)
        if kind == "contact.merge":
            return self._merge(meta, raw)
        return None  # one of _IGNORED: _check refused anything else

    @staticmethod
    def _merge(meta: EventMeta, raw: Mapping[str, Any]) -> SubjectsMerged:
        primary = next(raw[k] for k in ("primaryObjectId", "newObjectId", "objectId")
                       if raw.get(k) is not None)
        merged = tuple(contact_ref(i) for i in raw.get("mergedObjectIds", []) if i != primary)
        return SubjectsMerged(meta=meta, primary=SubjectHint(ref=contact_ref(primary)),
                              merged=merged)

    def _targets(self, prop: str) -> tuple[tuple[str, Channel], ...]:
        """The (purpose, channel) pairs a HubSpot opt-out property speaks for."""
        if prop == GLOBAL_OPTOUT:
            return tuple((p, Channel.EMAIL) for p in self._all_email)
        sub = self._subscriptions.get(prop.removeprefix(_SUBSCRIPTION_OPTOUT))
        if prop.startswith(_SUBSCRIPTION_OPTOUT) and sub is not None:
            return ((sub.purpose, sub.channel),)
        return ()

    def _property_change(self, meta: EventMeta, subject: SubjectHint,
                         raw: Mapping[str, Any]) -> ConsentChanged | RecordChanged | None:
        """An opt-out switch or a mapped field changed; other properties say nothing.

        For opt-outs ``"true"`` means withdrawn and ``"false"`` is a grant without evidence.
        """
        prop = str(raw.get("propertyName") or "")
        targets = self._targets(prop)
        value = raw.get("propertyValue") or ""
        if not targets:
            return self._field_change(meta, subject, prop, value)
        if value == "":
            return None
        status = ConsentStatus.WITHDRAWN if value == "true" else ConsentStatus.GRANTED
        changes = tuple(ConsentChange(p, c, status) for p, c in targets)
        evidence = None
        if status is ConsentStatus.WITHDRAWN:
            evidence = Evidence(source=SYSTEM, method=str(raw.get("changeSource") or "unknown"),
                                proof_reference=f"hubspot-event:{meta.source_event_id}")
        return ConsentChanged(meta=meta, subject=subject, changes=changes, evidence=evidence)

    def _field_change(self, meta: EventMeta, subject: SubjectHint, prop: str,
                      value: str) -> RecordChanged | None:
        """A mapped property's new value, collected when it changed; empty means cleared."""
        canonical = self._fields.get(prop)
        if canonical is None:
            return None
        field = FieldValue(value or None, collected_at=meta.occurred_at)
        return RecordChanged(meta=meta, subject=subject, fields=((canonical, field),))
