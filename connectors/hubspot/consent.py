"""Making HubSpot hold subjects' consent: one v4 ``statuses/batch/write`` per call.

v4 is not in hubspot-api-client 12 (its communication_preferences package is v3 only),
so this is raw HTTP. One batch of up to 100 status rows keeps a mass withdrawal inside
HubSpot's 10-second rate window, where v3 would need one call per address and
subscription.

v4 spells an opt-out ``UNSUBSCRIBED`` (``PublicStatusRequest.statusState``: NOT_SPECIFIED,
SUBSCRIBED, UNSUBSCRIBED); ``NOT_SUBSCRIBED`` is v3's word, and v4 refuses the whole call
for it. Source: HubSpot/HubSpot-public-api-spec-collection, ``PublicApiSpecs/Communication
Preferences/Subscriptions/Rollouts/176901/v4/subscriptions.json``. The answer is a 200
``BatchResponsePublicStatus``: each result's ``setStatusSuccessReason`` says whether the
status changed; each refused row is a ``StandardError`` in ``errors`` (category, context,
``errors`` details with codes, links).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.hubspot.batch import post_batch
from connectors.transport import TimeoutSession
from core.errors import PermanentError
from core.mappings import SystemMapping
from core.model import ConsentState, ConsentStatus, DestinationSubject, Outcome

WRITE_LIMIT = 100  # documentation (CRM batch limit); the v4 spec states none
WRITE_PATH = "/communication-preferences/v4/statuses/batch/write"
LEGAL_BASIS = "CONSENT_WITH_NOTICE"
SUBSCRIBED, UNSUBSCRIBED = "SUBSCRIBED", "UNSUBSCRIBED"  # v4's statusState
NO_CHANGE = "NO_STATUS_CHANGE"  # a setStatusSuccessReason
_WHAT = "hubspot statuses batch write"


@dataclass
class _Plan:
    """The status rows one subject needs, or the outcome when it needs none."""

    subject: DestinationSubject
    rows: list[dict[str, Any]] = field(default_factory=list)
    outcome: Outcome | None = None


def explanation(state: ConsentState) -> str:
    """legalBasisExplanation from the evidence: how and where, never who."""
    evidence = state.evidence
    if evidence is None:
        return f"Consent recorded by privasync from {state.source}"
    parts = [f"Consent given via {evidence.method} (source {evidence.source})"]
    if evidence.wording_version:
        parts.append(f"wording {evidence.wording_version}")
    if evidence.proof_reference:
        parts.append(f"proof {evidence.proof_reference}")
    return "; ".join(parts)[:500]


class ConsentWriter:
    """Plans and sends the v4 status rows for a batch of subjects."""

    def __init__(self, *, base_url: str, session: TimeoutSession, mapping: SystemMapping) -> None:
        self._url = base_url.rstrip("/") + WRITE_PATH
        self._session = session
        self._all_email = mapping.consent.all_email
        self._subscriptions = mapping.consent.subscriptions

    @property
    def rows_per_subject(self) -> int:
        return max(1, len(self._subscriptions))

    def apply(self, subjects: Sequence[DestinationSubject]) -> list[Outcome]:
        """One HTTP call per 100 rows (one for ≤ batch_size subjects); per-subject
        refusals come back as Outcome errors, whole-call failures raise DeliveryError."""
        plans = [self._plan(s) for s in subjects]
        answers = _Answers()
        for chunk in self._chunks(plans):
            answers.read(self._send([r for p in chunk for r in p.rows]), chunk)
        return [plan.outcome or answers.outcome(plan) for plan in plans]

    @staticmethod
    def _chunks(plans: Iterable[_Plan]) -> Iterator[list[_Plan]]:
        """Subjects with rows, grouped so that no request exceeds the v4 batch limit."""
        chunk: list[_Plan] = []
        for plan in (p for p in plans if p.rows):
            if chunk and sum(len(p.rows) for p in chunk) + len(plan.rows) > WRITE_LIMIT:
                yield chunk
                chunk = []
            chunk.append(plan)
        if chunk:
            yield chunk

    def _all_withdrawn(self, subject: DestinationSubject) -> bool:
        return bool(self._all_email) and all(
            subject.status(p) is ConsentStatus.WITHDRAWN for p in self._all_email)

    def _plan(self, subject: DestinationSubject) -> _Plan:
        if not subject.email:
            error = PermanentError(f"subject {subject.subject_id} has no e-mail address for "
                                   "HubSpot", error_class="no_identifier")
            return _Plan(subject, outcome=Outcome(subject.subject_id, error=error))
        everything_off = self._all_withdrawn(subject)
        plan = _Plan(subject)
        for sub_id, sub in self._subscriptions.items():
            state = next((c for c in subject.consents
                          if c.purpose == sub.purpose and c.channel == sub.channel), None)
            if everything_off or (state is not None and state.status is ConsentStatus.WITHDRAWN):
                plan.rows.append(self._row(subject.email, sub_id, UNSUBSCRIBED))
            elif state is not None and state.evidence is not None:
                plan.rows.append(self._row(subject.email, sub_id, SUBSCRIBED,
                                           explanation(state)))
        if not plan.rows:
            plan.outcome = Outcome(subject.subject_id, note="nothing to write")
        return plan

    @staticmethod
    def _row(email: str, sub_id: str, state: str, why: str | None = None) -> dict[str, Any]:
        row: dict[str, Any] = {"subscriberIdString": email, "channel": "EMAIL",
                               "statusState": state, "subscriptionId": int(sub_id)}
        if why is not None:
            row |= {"legalBasis": LEGAL_BASIS, "legalBasisExplanation": why}
        return row

    def _send(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return post_batch(self._session, self._url, {"inputs": rows}, _WHAT)


@dataclass
class _Answers:
    """What HubSpot answered for the rows sent, by subject: refusals and unchanged rows."""

    refused: dict[str, list[str]] = field(default_factory=dict)
    reasons: dict[str, set[str]] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)

    def read(self, body: dict[str, Any], plans: Iterable[_Plan]) -> None:
        """Map results and refusals back to subjects by subscriberIdString. A refusal
        naming no address cannot be placed, so it fails every subject sent."""
        by_email: dict[str, list[str]] = {}
        for plan in plans:
            if plan.rows and plan.subject.email:
                by_email.setdefault(plan.subject.email.lower(), []).append(plan.subject.subject_id)
        for result in body.get("results") or []:
            if isinstance(result, dict) and result.get("setStatusSuccessReason") == NO_CHANGE:
                for sid in by_email.get(str(result.get("subscriberIdString", "")).lower(), []):
                    self.unchanged[sid] = self.unchanged.get(sid, 0) + 1
        for error in body.get("errors") or []:
            error = error if isinstance(error, dict) else {}
            raw_context = error.get("context")
            context: dict[str, Any] = raw_context if isinstance(raw_context, dict) else {}
            emails = [str(e).lower() for e in context.get("subscriberIdString") or []]
            subs = [str(s) for s in context.get("subscriptionId") or []] or ["?"]
            owners = [sid for e in emails for sid in by_email.get(e, [])] or \
                [sid for sids in by_email.values() for sid in sids]
            for subject_id in owners:
                self.refused.setdefault(subject_id, []).extend(subs)
                self.reasons.setdefault(subject_id, set()).update(_reasons(error))

    def outcome(self, plan: _Plan) -> Outcome:
        sid = plan.subject.subject_id
        detail = {str(r["subscriptionId"]): str(r["statusState"]) for r in plan.rows}
        refused = self.refused.get(sid)
        if refused:
            why = ", ".join(sorted(self.reasons.get(sid, set()))) or "no reason given"
            error = PermanentError(f"HubSpot refused subscription(s) {', '.join(sorted(refused))}"
                                   f" for subject {sid} ({why})", error_class="hubspot_validation")
            return Outcome(sid, error=error, detail=detail)
        unchanged = self.unchanged.get(sid, 0)
        note = f"wrote {len(plan.rows)} subscription status(es)" + (
            f", {unchanged} already so" if unchanged else "")
        return Outcome(sid, note=note, detail=detail)


def _reasons(error: dict[str, Any]) -> set[str]:
    """A StandardError's category and its details' codes and fields: HubSpot's words and
    field names, never values."""
    details = [d for d in error.get("errors") or [] if isinstance(d, dict)]
    words = {str(error.get("category") or "")}
    words |= {str(d.get("code") or d.get("subCategory") or "") for d in details}
    words |= {f"in {d['in']}" for d in details if d.get("in")}
    return words - {""}
