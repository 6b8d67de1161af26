"""HubSpot webhook batches in, canonical events out.

Vendor JSON stops here: the core sees purposes and channels, never
``hs_email_optout``, and canonical field names, never ``firstname``. Reasons
for refusing a batch name the event index and the field, never a property value.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import ErrorDetails, PydanticCustomError

from connectors.inbound import field_of, required, validated
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


_KNOWN = frozenset({"contact.propertyChange", "contact.creation", "contact.deletion",
                    "contact.privacyDeletion", "contact.merge"}) | _IGNORED
_LATEST_MS = 253402300799999  # 9999-12-31T23:59:59.999Z
# HubSpot documents no maximum for a merge's ids (a merge joins two records; a chain of
# earlier merges adds theirs): far more than 100 is no real merge, and each id costs a look-up.
MAX_MERGED = 100


def _subscribed(kind: str) -> str:
    if kind not in _KNOWN:
        raise PydanticCustomError("unknown_subscription", "not subscribed to")
    return kind


def _in_range(ms: int) -> int:
    if ms > _LATEST_MS:
        raise PydanticCustomError("out_of_range", "out of range")
    return ms


# A JSON integer HubSpot could send: not a boolean, within 0 .. 2**63 - 1.
HubSpotId = Annotated[int, Field(ge=0, le=_MAX_ID)]
_Required = BeforeValidator(required)


class HubSpotEvent(BaseModel):
    """One event of a webhook batch (VENDOR_APIS A1). HubSpot adds fields as it pleases, so
    unknown ones are ignored; null is as absent, except for ``mergedObjectIds``."""

    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    eventId: Annotated[HubSpotId, _Required]
    objectId: Annotated[HubSpotId, _Required]
    occurredAt: Annotated[HubSpotId, _Required, AfterValidator(_in_range)]
    subscriptionType: Annotated[str, _Required, AfterValidator(_subscribed)]
    portalId: HubSpotId | None = None
    subscriptionId: HubSpotId | None = None
    primaryObjectId: HubSpotId | None = None
    newObjectId: HubSpotId | None = None
    appId: HubSpotId | None = None
    attemptNumber: HubSpotId | None = None
    propertyName: str | None = None
    propertyValue: str | None = None
    changeSource: str | None = None
    mergedObjectIds: Annotated[list[HubSpotId], Field(max_length=MAX_MERGED)] = []

    def key_part(self, name: str) -> str:
        """A dedupe key's part as the raw event spelt it: '' when absent, 'None' for null."""
        return str(getattr(self, name)) if name in self.model_fields_set else ""


_REQUIRED = (*_REQUIRED_INTS, "subscriptionType")
_STRINGS = ("subscriptionType", "propertyName", "propertyValue", "changeSource")
_INTS = _REQUIRED_INTS + _OPTIONAL_INTS


def _rank(problem: ErrorDetails) -> tuple[int, int, str]:
    """Which problem to name first: the order the rules were always checked in."""
    name, kind = field_of(problem), problem["type"]
    if kind == "model_type":
        return (0, 0, "not a JSON object")
    if kind == "missing":
        return (1, _REQUIRED.index(name), f"missing {name}")
    if kind == "out_of_range":
        return (5, 0, "occurredAt is out of range")
    if name in _INTS:
        return (2, _INTS.index(name), f"{name} must be an integer from 0 to 2^63-1")
    if kind == "unknown_subscription":
        return (4, 0, "subscriptionType is not one privasync subscribes to")
    if kind == "too_long":
        return (6, 0, f"mergedObjectIds holds more than {MAX_MERGED} ids")
    if name == "mergedObjectIds":
        return (7, 0, "mergedObjectIds must be a list of integers from 0 to 2^63-1")
    return (3, _STRINGS.index(name), f"{name} must be a string")


def _check(index: int, raw: object) -> HubSpotEvent:
    """One event, validated; BadInput names the index, the field and the rule, never
    the value."""
    def reason(problems: Sequence[ErrorDetails]) -> str:
        return f"event {index}: {min(_rank(p) for p in problems)[2]}"
    return validated(HubSpotEvent, raw, reason)


def _meta(event: HubSpotEvent) -> EventMeta:
    """HubSpot's eventId is not unique: dedupe on portal, subscription, event, object, time."""
    occurred = datetime.fromtimestamp(event.occurredAt / 1000, UTC)
    key = ":".join(event.key_part(k) for k in
                   ("portalId", "subscriptionId", "eventId", "objectId", "occurredAt"))
    return EventMeta(source=SYSTEM, source_event_id=key, occurred_at=occurred,
                     kind=event.subscriptionType)


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

    def _valid(self, body: bytes) -> list[HubSpotEvent]:
        batch = strict_json.loads(body, "HubSpot webhook body", _FIELDS)
        if not isinstance(batch, list):
            raise BadInput("a HubSpot webhook body must be a JSON array of events")
        if len(batch) > MAX_EVENTS:
            raise BadInput(f"a HubSpot batch holds at most {MAX_EVENTS} events, got {len(batch)}")
        events = []
        for i, raw in enumerate(batch):
            event = _check(i, raw)
            if event.subscriptionType == "contact.propertyChange" \
                    and self._targets(event.propertyName or "") \
                    and (event.propertyValue or "") not in ("", "true", "false"):
                raise BadInput(f"event {i}: propertyValue of an opt-out must be true or false")
            events.append(event)
        return events

    def _one(self, raw: HubSpotEvent) -> CanonicalEvent | None:
        meta, kind = _meta(raw), raw.subscriptionType
        subject = SubjectHint(ref=contact_ref(raw.objectId))
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
    def _merge(meta: EventMeta, raw: HubSpotEvent) -> SubjectsMerged:
        primary = next(i for i in (raw.primaryObjectId, raw.newObjectId, raw.objectId)
                       if i is not None)
        merged = tuple(contact_ref(i) for i in raw.mergedObjectIds if i != primary)
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
                         raw: HubSpotEvent) -> ConsentChanged | RecordChanged | None:
        """An opt-out switch or a mapped field changed; other properties say nothing.

        For opt-outs ``"true"`` means withdrawn and ``"false"`` is a grant without evidence.
        """
        prop = raw.propertyName or ""
        targets = self._targets(prop)
        value = raw.propertyValue or ""
        if not targets:
            return self._field_change(meta, subject, prop, value)
        if value == "":
            return None
        status = ConsentStatus.WITHDRAWN if value == "true" else ConsentStatus.GRANTED
        changes = tuple(ConsentChange(p, c, status) for p, c in targets)
        evidence = None
        if status is ConsentStatus.WITHDRAWN:
            evidence = Evidence(source=SYSTEM, method=raw.changeSource or "unknown",
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
