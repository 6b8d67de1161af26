"""Intake: one transaction per delivery that dedupes, applies, records and plans jobs.

Everything an accepted delivery causes (event rows, consent state, ledger
entries, outbox jobs) commits together before the sender gets its 2xx; a
failure stores nothing. Job ids are returned for the broker only after the
commit (the reconciler covers a lost enqueue).
"""

from __future__ import annotations

import calendar
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import insert, select, tuple_
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from core import keys, ledger, outbox, records, state
from core.consent import Verdict, resolve
from core.db import events, requests
from core.errors import BadInput, UnknownSubject
from core.identity import IdentityMap
from core.mappings import Mappings
from core.model import (
    CanonicalEvent,
    ConsentChange,
    ConsentChanged,
    ConsentState,
    ConsentStatus,
    ErasureRequested,
    IdentifierChanged,
    RecordChanged,
    SubjectDeleted,
    SubjectSeen,
    SubjectsMerged,
)


def add_months(when: datetime, months: int) -> datetime:
    """Calendar months (Art. 12(3)): 31 January + 1 month is the last day of February."""
    month0 = when.month - 1 + months
    year, month = when.year + month0 // 12, month0 % 12 + 1
    day = min(when.day, calendar.monthrange(year, month)[1])
    return when.replace(year=year, month=month, day=day)


@dataclass(frozen=True)
class Routes:
    """Which destination cares about which purposes' consent, and which fields it holds."""

    purposes: dict[str, frozenset[str]]
    fields: dict[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def from_mappings(cls, mappings: Mappings, systems: Iterable[str]) -> Routes:
        routes: dict[str, frozenset[str]] = {}
        fields: dict[str, frozenset[str]] = {}
        for name in systems:
            system = mappings.system(name)
            routes[name] = frozenset(system.consent.all_email) | frozenset(
                s.purpose for s in system.consent.subscriptions.values())
            fields[name] = frozenset(f.canonical for f in system.fields.values())
        for name, partner in mappings.partners.items():
            routes[f"partner:{name}"] = frozenset(partner.purposes)
            fields[f"partner:{name}"] = frozenset(
                c for c, f in mappings.fields.items() if set(f.purposes) & set(partner.purposes))
        return cls(routes, fields)

    def targets(self, purposes: Iterable[str], source: str | None) -> list[str]:
        wanted = set(purposes)
        return [d for d, ps in self.purposes.items() if d != source and ps & wanted]

    def record_targets(self, names: Iterable[str], source: str) -> list[str]:
        """Destinations other than the source that hold or may receive any of these fields;
        whether each field may really go is decided at delivery (minimise)."""
        wanted = set(names)
        return [d for d, fs in self.fields.items() if d != source and fs & wanted]


@dataclass
class IntakeResult:
    accepted: int = 0
    duplicates: int = 0
    job_ids: list[int] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)


class Intake:
    def __init__(self, engine: Engine, identity: IdentityMap, mappings: Mappings,
                 routes: Routes) -> None:
        self.engine = engine
        self.identity = identity
        self.mappings = mappings
        self.routes = routes

    def accept(self, batch: Sequence[CanonicalEvent], received_at: datetime) -> IntakeResult:
        """Apply a delivery atomically. Raises BadInput (nothing stored) on a bad event.

        A concurrent delivery about the same new person can win a unique key
        first (or the database can pick this transaction as a deadlock victim);
        the whole transaction rolled back, so it is simply run again.
        """
        for attempt in range(3):
            try:
                return self._accept_once(batch, received_at)
            except (IntegrityError, OperationalError):
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _accept_once(self, batch: Sequence[CanonicalEvent],
                     received_at: datetime) -> IntakeResult:
        result = IntakeResult()
        ordered = sorted(batch, key=lambda e: e.meta.occurred_at)
        with self.engine.begin() as conn, keys.cached(conn), ledger.writing(conn):
            seen = self._seen(conn, ordered)
            for ev in ordered:
                key = (ev.meta.source, ev.meta.source_event_id)
                if key in seen:
                    result.duplicates += 1
                    result.outcomes.append("duplicate")
                    continue
                seen.add(key)
                subject_id: str | None
                if isinstance(ev, RecordChanged):
                    outcome, subject_id, record_jobs = self._record_changed(conn, ev, received_at)
                    targets: list[str] = []
                    result.job_ids.extend(record_jobs)
                else:
                    outcome, subject_id, targets = self._apply(conn, ev, received_at)
                conn.execute(insert(events).values(
                    source=ev.meta.source, source_event_id=ev.meta.source_event_id,
                    kind=ev.meta.kind or type(ev).__name__, subject_id=subject_id,
                    occurred_at=ev.meta.occurred_at, received_at=received_at, outcome=outcome))
                if targets:
                    assert subject_id is not None
                    result.job_ids += outbox.enqueue_many(
                        conn, kind=outbox.CONSENT, destinations=targets, subject_id=subject_id,
                        now=received_at, origin_received_at=received_at)
                result.accepted += 1
                result.outcomes.append(outcome)
        return result

    def _seen(self, conn: Connection,
              batch: Sequence[CanonicalEvent]) -> set[tuple[str, str]]:
        """The (source, event id) pairs of this delivery that were accepted before."""
        pairs = {(e.meta.source, e.meta.source_event_id) for e in batch}
        rows = conn.execute(select(events.c.source, events.c.source_event_id).where(
            tuple_(events.c.source, events.c.source_event_id).in_(sorted(pairs)))).all()
        return {(r.source, r.source_event_id) for r in rows}

    def _apply(self, conn: Connection, ev: CanonicalEvent,
               now: datetime) -> tuple[str, str | None, list[str]]:
        if isinstance(ev, ConsentChanged):
            return self._consent(conn, ev, now)
        if isinstance(ev, SubjectSeen):
            return self._seen_subject(conn, ev, now)
        if isinstance(ev, SubjectsMerged):
            return self._merged(conn, ev, now)
        try:
            subject_id, _ = self.identity.resolve(conn, ev.subject, now, create=False)
        except UnknownSubject:
            return "unknown_subject", None, []
        if isinstance(ev, SubjectDeleted):
            if ev.subject.ref is not None:
                self.identity.remove_ref(conn, ev.subject.ref)
            ledger.append(conn, at=now, kind="subject.removed_from_system", subject_id=subject_id,
                          detail={"system": ev.meta.source, "event": ev.meta.source_event_id})
            return "recorded", subject_id, []
        if isinstance(ev, ErasureRequested):
            return self._erasure(conn, ev, subject_id, now)
        assert isinstance(ev, IdentifierChanged), type(ev).__name__
        return self._identifier(conn, ev, subject_id, now)

    def _consent(self, conn: Connection, ev: ConsentChanged,
                 now: datetime) -> tuple[str, str, list[str]]:
        subject_id, _ = self.identity.resolve(conn, ev.subject, now)
        current = state.load(conn, subject_id)
        verdicts: list[Verdict] = []
        changed: set[str] = set()
        recorded: list[tuple[Verdict, ConsentChange]] = []
        for change in ev.changes:
            purpose = self.mappings.purposes.get(change.purpose)
            if purpose is None:
                raise BadInput(f"event {ev.meta.source_event_id}: unknown purpose "
                               f"{change.purpose!r}")
            key = (change.purpose, change.channel)
            before = current.get(key)
            incoming = ConsentState(change.purpose, change.channel, change.status,
                                    ev.meta.occurred_at, ev.meta.source, ev.evidence)
            verdict, stored = resolve(current.get(key), incoming, purpose.consent_required)
            verdicts.append(verdict)
            if stored is not None:
                state.save(conn, subject_id, stored, key in current, now)
                current[key] = stored
            if verdict is Verdict.APPLY:
                changed.add(change.purpose)
            # "Not opted out" on a record we knew nothing of is no grant at all; a flag
            # flipped back on after a withdrawal is, and is flagged for review.
            flipped_back = before is not None and before.status == ConsentStatus.WITHDRAWN
            if verdict is Verdict.APPLY or (verdict is Verdict.NO_EVIDENCE and flipped_back):
                recorded.append((verdict, change))
        self._record(conn, ev, recorded, subject_id, now)
        outcome = _summarise(verdicts)
        return outcome, subject_id, self.routes.targets(changed, ev.meta.source)

    def _record(self, conn: Connection, ev: ConsentChanged,
                recorded: Sequence[tuple[Verdict, ConsentChange]], subject_id: str,
                now: datetime) -> None:
        """One ledger entry per kind of outcome of the event (applied grant or
        withdrawal, or a grant flagged for lack of evidence), listing its changes."""
        groups: dict[str, list[dict[str, str]]] = {}
        for verdict, change in recorded:
            kind = (f"consent.{change.status.value}" if verdict is Verdict.APPLY
                    else "consent.grant_flagged")
            groups.setdefault(kind, []).append({"purpose": change.purpose,
                                                "channel": change.channel.value})
        for kind, changes in groups.items():
            detail: dict[str, object] = {
                "changes": changes, "source": ev.meta.source, "event": ev.meta.source_event_id,
                "occurred_at": ev.meta.occurred_at.isoformat()}
            if ev.evidence is not None:
                detail["evidence"] = {"method": ev.evidence.method,
                                      "wording_version": ev.evidence.wording_version,
                                      "proof_reference": ev.evidence.proof_reference}
            ledger.append(conn, at=now, kind=kind, subject_id=subject_id, detail=detail)

    def _record_changed(self, conn: Connection, ev: RecordChanged,
                        now: datetime) -> tuple[str, str, list[int]]:
        """Remember what changed (as hashes) and queue the encrypted values per destination."""
        subject_id, _ = self.identity.resolve(conn, ev.subject, now)
        fields = dict(ev.fields)
        # An address is identity, not a field to copy around: attach it, never fan it out.
        address = fields.pop(records.EMAIL_FIELD, None)
        if address is not None and address.value:
            self.identity.add_email(conn, subject_id, address.value)
        records.note_customer(conn, subject_id, fields)
        changed = records.changed_fields(conn, self.identity.keyring, subject_id, fields)
        if not changed:
            return "unchanged", subject_id, []
        ledger.append(conn, at=now, kind="record.changed", subject_id=subject_id,
                      detail={"source": ev.meta.source, "event": ev.meta.source_event_id,
                              "fields": sorted(changed)})
        job_ids: list[int] = []
        for destination in self.routes.record_targets(changed, ev.meta.source):
            existing = outbox.pending(conn, kind=outbox.RECORD, destination=destination,
                                      subject_id=subject_id)
            if existing is not None:
                records.merge_into_pending(conn, existing, subject_id, changed)
                continue
            job = outbox.enqueue(conn, kind=outbox.RECORD, destination=destination,
                                 subject_id=subject_id, now=now, origin_received_at=now,
                                 payload=records.seal(conn, subject_id, changed))
            if job is not None:
                job_ids.append(job)
        return "applied", subject_id, job_ids

    def _seen_subject(self, conn: Connection, ev: SubjectSeen,
                      now: datetime) -> tuple[str, str, list[str]]:
        subject_id, created = self.identity.resolve(conn, ev.subject, now)
        if created:
            ledger.append(conn, at=now, kind="subject.created", subject_id=subject_id,
                          detail={"system": ev.meta.source})
            return "created", subject_id, []
        purposes = {p for p, _ in state.load(conn, subject_id)}
        wanted = set(self.routes.purposes.get(ev.meta.source, frozenset()))
        # A new record of a known person in a system gets that person's current state.
        targets = [ev.meta.source] if purposes & wanted else []
        return "known", subject_id, targets

    def _merged(self, conn: Connection, ev: SubjectsMerged,
                now: datetime) -> tuple[str, str | None, list[str]]:
        losers = [s for s in (self.identity.by_ref(conn, r) for r in ev.merged) if s]
        try:
            winner, _ = self.identity.resolve(conn, ev.primary, now, create=False)
        except UnknownSubject:
            if not losers or ev.primary.ref is None:
                return "unknown_subject", None, []
            winner = losers.pop(0)
            self.identity.add_ref(conn, winner, ev.primary.ref, now)
        current = state.load(conn, winner)
        changed: set[str] = set()
        for loser in {s for s in losers if s != winner}:
            for key, theirs in state.load(conn, loser).items():
                ours = current.get(key)
                purpose = self.mappings.purposes.get(theirs.purpose)
                verdict, stored = resolve(ours, theirs,
                                          purpose.consent_required if purpose else True)
                if stored is not None:
                    state.save(conn, winner, stored, ours is not None, now)
                    current[key] = stored
                if verdict is Verdict.APPLY:
                    changed.add(theirs.purpose)
            self.identity.merge(conn, loser, winner)
            ledger.append(conn, at=now, kind="subject.merged", subject_id=winner,
                          detail={"merged": loser, "system": ev.meta.source})
        return ("merged" if changed else "recorded"), winner, self.routes.targets(changed, None)

    def _erasure(self, conn: Connection, ev: ErasureRequested, subject_id: str,
                 now: datetime) -> tuple[str, str, list[str]]:
        request_id = str(uuid.uuid4())
        conn.execute(insert(requests).values(
            id=request_id, kind="erasure", subject_id=subject_id, source=ev.meta.source,
            received_at=now, due_at=add_months(now, 1), status="received"))
        ledger.append(conn, at=now, kind="request.erasure_received", subject_id=subject_id,
                      detail={"request": request_id, "source": ev.meta.source,
                              "event": ev.meta.source_event_id})
        return "erasure_requested", subject_id, []

    def _identifier(self, conn: Connection, ev: IdentifierChanged, subject_id: str,
                    now: datetime) -> tuple[str, str, list[str]]:
        attached = self.identity.add_email(conn, subject_id, ev.new_email)
        if ev.new_ref is not None:
            self.identity.add_ref(conn, subject_id, ev.new_ref, now)
        ledger.append(conn, at=now, kind="subject.identifier_changed", subject_id=subject_id,
                      detail={"system": ev.meta.source, "attached": attached})
        return "recorded" if attached else "identifier_conflict", subject_id, []


def _summarise(verdicts: Sequence[Verdict]) -> str:
    for verdict in (Verdict.APPLY, Verdict.NO_EVIDENCE, Verdict.STALE):
        if verdict in verdicts:
            return verdict.value
    return Verdict.UNCHANGED.value
