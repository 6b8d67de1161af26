"""Data minimisation on the way out (Art. 5(1)(b)-(c), 6, 9, 25): pure, no I/O, no clock.

A field goes to a destination only if, for at least one purpose that both the
field and the destination serve, the subject has a legal basis (consent
granted where consent is the basis; no objection to a legitimate interest; a
contract for contract purposes), a special category also has its Art. 9(2)
ground (explicit, evidenced consent where that is the ground), and the value
is still within its retention period. Everything else is dropped with the
reason, never the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from core.mappings import Art9Ground, FieldMapping, LegalBasis, Mappings, Purpose
from core.model import Channel, ConsentState, ConsentStatus, FieldValue


class Reason(StrEnum):
    NOT_MAPPED = "not_mapped"
    NO_SHARED_PURPOSE = "no_shared_purpose"
    NO_LEGAL_BASIS = "no_legal_basis"
    CONSENT_MISSING = "consent_missing"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    NO_EXPLICIT_CONSENT = "special_category_without_explicit_consent"
    RETENTION_PASSED = "retention_passed"


@dataclass(frozen=True)
class SubjectContext:
    """What the rules need to know of a subject: its decisions and whether it is a customer."""

    consents: Mapping[tuple[str, Channel], ConsentState] = field(default_factory=dict)
    is_customer: bool = False

    def statuses(self, purpose: str) -> list[ConsentState]:
        return [c for (p, _), c in self.consents.items() if p == purpose]


@dataclass(frozen=True)
class Decision:
    kept: Mapping[str, FieldValue]
    dropped: Mapping[str, Reason]


def legal_basis_gap(key: str, purpose: Purpose, subject: SubjectContext) -> Reason | None:
    """Why the subject has no legal basis for ``purpose`` (None: it has one)."""
    states = subject.statuses(key)
    granted = any(s.status is ConsentStatus.GRANTED for s in states)
    objected = bool(states) and not granted
    if purpose.legal_basis is LegalBasis.CONSENT:
        if granted or (purpose.soft_opt_in and subject.is_customer and not states):
            return None  # R3: customers on soft opt-in until they object
        return Reason.CONSENT_WITHDRAWN if objected else Reason.CONSENT_MISSING
    if purpose.legal_basis is LegalBasis.LEGITIMATE_INTEREST:
        return Reason.CONSENT_WITHDRAWN if objected else None  # Art. 21 objection
    if purpose.legal_basis is LegalBasis.CONTRACT:
        return None if subject.is_customer else Reason.NO_LEGAL_BASIS
    return None  # legal obligation, vital interest, public task


def _explicit_consent(key: str, subject: SubjectContext) -> bool:
    return any(s.status is ConsentStatus.GRANTED and s.evidence is not None
               for s in subject.statuses(key))


def purpose_gap(key: str, purpose: Purpose, mapping: FieldMapping, value: FieldValue | None,
                subject: SubjectContext, now: datetime) -> Reason | None:
    """Why this field may not be used for this purpose (None: it may)."""
    gap = legal_basis_gap(key, purpose, subject)
    if gap is not None:
        return gap
    if mapping.special:
        ground = purpose.art9_ground
        if ground is None or (ground is Art9Ground.EXPLICIT_CONSENT
                              and not _explicit_consent(key, subject)):
            return Reason.NO_EXPLICIT_CONSENT
    days = mapping.retention_days or purpose.retention_days
    if value is not None and days is not None and now - value.collected_at > timedelta(days):
        return Reason.RETENTION_PASSED
    return None


def explain(name: str, value: FieldValue | None, subject: SubjectContext,
            destination_purposes: frozenset[str], mappings: Mappings,
            now: datetime) -> dict[str, Reason | None]:
    """Per shared purpose, why the field may or may not flow; empty if none is shared."""
    mapping = mappings.fields[name]
    shared = sorted(set(mapping.purposes) & destination_purposes)
    return {p: purpose_gap(p, mappings.purposes[p], mapping, value, subject, now)
            for p in shared}


def minimise(fields: Mapping[str, FieldValue], subject: SubjectContext,
             destination_purposes: frozenset[str], mappings: Mappings,
             now: datetime) -> Decision:
    """Split ``fields`` into what may go to the destination and, for the rest, why not."""
    kept: dict[str, FieldValue] = {}
    dropped: dict[str, Reason] = {}
    for name, value in fields.items():
        if name not in mappings.fields:
            dropped[name] = Reason.NOT_MAPPED
            continue
        reasons = explain(name, value, subject, destination_purposes, mappings, now)
        if not reasons:
            dropped[name] = Reason.NO_SHARED_PURPOSE
        elif any(r is None for r in reasons.values()):
            kept[name] = value
        else:
            dropped[name] = next(r for r in reasons.values() if r is not None)
    return Decision(kept, dropped)
