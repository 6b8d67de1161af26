"""The data map (Art. 30, R23): which field may flow to which destination, and on what
condition; and what a change to the mappings would start or stop sending. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from core.mappings import Art9Ground, LegalBasis, Mappings, Purpose
from core.minimise import SubjectContext, explain


def destinations(mappings: Mappings) -> list[str]:
    return sorted(mappings.systems) + [f"partner:{p}" for p in sorted(mappings.partners)]


def _condition(purpose: Purpose, special: bool) -> str:
    base = {
        LegalBasis.CONSENT: "soft opt-in" if purpose.soft_opt_in else "consent",
        LegalBasis.CONTRACT: "customer",
        LegalBasis.LEGITIMATE_INTEREST: "no objection",
    }.get(purpose.legal_basis, "always")
    if special:
        if purpose.art9_ground is None:
            return "never (special category, no Art. 9 ground)"
        if purpose.art9_ground is Art9Ground.EXPLICIT_CONSENT:
            return "explicit consent" if base == "always" else f"{base} + explicit consent"
    return base


@dataclass(frozen=True)
class Flow:
    """Whether ``field`` may flow to ``destination``: per shared purpose, on what condition."""

    field: str
    category: str
    special: bool
    destination: str
    conditions: dict[str, str]

    @property
    def summary(self) -> str:
        if not self.conditions:
            return "-"
        return " | ".join(f"{p}: {c}" for p, c in sorted(self.conditions.items()))


def flows(mappings: Mappings) -> list[Flow]:
    out: list[Flow] = []
    for name, field in sorted(mappings.fields.items()):
        for destination in destinations(mappings):
            shared = set(field.purposes) & mappings.destination_purposes(destination)
            out.append(Flow(name, field.category, field.special, destination, {
                p: _condition(mappings.purposes[p], field.special) for p in sorted(shared)
                if p in mappings.purposes}))
    return out


def as_rows(mappings: Mappings) -> list[dict[str, object]]:
    """The data map as plain rows (``mappings show --format json``, ``GET /mappings``)."""
    return [{"field": f.field, "category": f.category, "special": f.special,
             "destination": f.destination, "purposes": f.conditions} for f in flows(mappings)]


def flows_for_subject(mappings: Mappings, field: str, destination: str,
                      subject: SubjectContext, now: datetime) -> bool:
    """Whether the field would flow for this subject now (retention aside)."""
    if field not in mappings.fields:
        return False
    reasons = explain(field, None, subject, mappings.destination_purposes(destination),
                      mappings, now)
    return any(r is None for r in reasons.values())


@dataclass(frozen=True)
class FlowChange:
    field: str
    destination: str
    before: str
    after: str
    starts: int = 0
    stops: int = 0


def diff(old: Mappings, new: Mappings, subjects: Iterable[SubjectContext],
         now: datetime) -> list[FlowChange]:
    """Pairs whose condition changes, with how many stored people would start or stop."""
    before = {(f.field, f.destination): f for f in flows(old)}
    after = {(f.field, f.destination): f for f in flows(new)}
    people = list(subjects)
    changes: list[FlowChange] = []
    for key in sorted(set(before) | set(after)):
        was = before[key].summary if key in before else "-"
        will = after[key].summary if key in after else "-"
        if was == will:
            continue
        field, destination = key
        starts = stops = 0
        for subject in people:
            a = key in before and flows_for_subject(old, field, destination, subject, now)
            b = key in after and flows_for_subject(new, field, destination, subject, now)
            starts += b and not a
            stops += a and not b
        changes.append(FlowChange(field, destination, was, will, starts, stops))
    return changes
