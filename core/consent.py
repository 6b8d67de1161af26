"""How a consent decision is resolved: pure, no I/O, no clock (DESIGN.md principle 3).

- Decisions order by the source's occurrence time; an older event never wins.
- On a tie, the more protective status (withdrawn) wins.
- A grant for a consent-based purpose needs evidence; without it, it is
  recorded and flagged, never applied.
- The same status again changes nothing that anyone else sees (no jobs), so
  echoes of our own writes stop here; it only moves the decision's time
  forward, which keeps the result independent of delivery order.
"""

from __future__ import annotations

from enum import StrEnum

from core.model import ConsentState, ConsentStatus


class Verdict(StrEnum):
    APPLY = "applied"
    UNCHANGED = "unchanged"
    STALE = "stale"
    NO_EVIDENCE = "grant_without_evidence"


def resolve(current: ConsentState | None, incoming: ConsentState,
            consent_required: bool) -> tuple[Verdict, ConsentState | None]:
    """Decide what ``incoming`` does to ``current``; returns the verdict and the state
    to store (None when nothing is stored)."""
    if incoming.status == ConsentStatus.GRANTED and consent_required \
            and incoming.evidence is None:
        return Verdict.NO_EVIDENCE, None
    if current is None:
        return Verdict.APPLY, incoming
    if incoming.status == current.status:
        if incoming.occurred_at > current.occurred_at:
            return Verdict.UNCHANGED, incoming
        return Verdict.UNCHANGED, None
    newer = incoming.occurred_at > current.occurred_at
    wins_tie = incoming.occurred_at == current.occurred_at \
        and incoming.status == ConsentStatus.WITHDRAWN
    if newer or wins_tie:
        return Verdict.APPLY, incoming
    return Verdict.STALE, None
