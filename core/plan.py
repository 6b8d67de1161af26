"""Applying a batch of events as sets: read once, decide in memory, write once.

``core.plan_load.load`` reads the slice of state a batch touches in a handful of queries;
``Plan.apply`` decides each event against it in memory with the same rules as
ever (core.consent for consent, keyed hashes for fields, the identity rules for
subjects); ``Plan.write`` stores the result in a handful of statements. The
applier is the only writer of this state, so what it read stays true until its
transaction commits. An event that changes nothing (a duplicate, a stale
decision, our own write echoing back) plans no job and no ledger entry.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime

from sqlalchemy import bindparam, update
from sqlalchemy.engine import Connection

from core import dsr, dsr_store, identity, keys, ledger, outbox
from core.consent import Verdict, resolve
from core.crypto import Keyring, normalise_email
from core.db import (
    consents,
    events,
    field_state,
    identifiers,
    subject_keys,
    subjects,
    system_refs,
    write_many,
)
from core.errors import BadInput, Suppressed, UnknownSubject
from core.mappings import Mappings
from core.model import (
    CanonicalEvent,
    Channel,
    ConsentChanged,
    ConsentState,
    ConsentStatus,
    ErasureRequested,
    FieldValue,
    IdentifierChanged,
    RecordChanged,
    RequestAcknowledged,
    RequestAction,
    RequestReceived,
    SubjectDeleted,
    SubjectHint,
    SubjectSeen,
    SubjectsMerged,
    SystemRef,
)
from core.plan_load import Loaded
from core.records import (
    EMAIL_FIELD,
    FieldState,
    addresses,
    changed_fields,
    is_customer,
    newest,
    seal,
)
from core.routes import Routes

NO_OPS = frozenset({"duplicate", "unchanged", "stale"})


@dataclass
class Plan:
    """Every decision for a batch, held in memory until ``write``."""

    loaded: Loaded
    keyring: Keyring
    mappings: Mappings
    routes: Routes
    now: datetime
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    event_rows: list[dict[str, object]] = field(default_factory=list)
    new_subjects: list[dict[str, object]] = field(default_factory=list)
    new_keys: list[dict[str, object]] = field(default_factory=list)
    new_identifiers: list[dict[str, object]] = field(default_factory=list)
    new_refs: dict[SystemRef, str] = field(default_factory=dict)
    moved_refs: dict[SystemRef, str] = field(default_factory=dict)
    removed_refs: set[SystemRef] = field(default_factory=set)
    customers: dict[str, bool] = field(default_factory=dict)
    consent_rows: dict[tuple[str, str, Channel], dict[str, object]] = field(
        default_factory=dict)
    field_rows: dict[tuple[str, str], FieldState] = field(default_factory=dict)
    requests: dsr.Decisions = field(default_factory=dsr.Decisions)  # typed, core.dsr's
    jobs: dict[tuple[str, str, str], datetime] = field(default_factory=dict)
    record_jobs: dict[tuple[str, str], tuple[datetime, dict[str, FieldValue]]] = field(
        default_factory=dict)
    entries: list[ledger.Entry] = field(default_factory=list)
    merges: list[tuple[SubjectsMerged, datetime]] = field(default_factory=list)

    # -- deciding ----------------------------------------------------------------------
    def apply(self, ev: CanonicalEvent, received_at: datetime) -> str:
        """Decide one event; returns its outcome. Never raises for a bad event: it is
        recorded with its reason (``invalid``, ``unknown_subject``)."""
        key = (ev.meta.source, ev.meta.source_event_id)
        if key in self.loaded.seen:
            return self._done(ev, "duplicate", None, received_at)
        self.loaded.seen.add(key)
        if isinstance(ev, SubjectsMerged):
            self.merges.append((ev, received_at))
            return self._done(ev, "merge_pending", None, received_at, record=False)
        try:
            outcome, subject_id = self._decide(ev, received_at)
        except Suppressed as exc:
            self.request_entry("suppression.blocked", exc.subject_id, {
                "request": exc.request_id, "source": ev.meta.source,
                "event_kind": ev.meta.kind or type(ev).__name__})
            outcome, subject_id = "suppressed", None
        except UnknownSubject:
            outcome, subject_id = "unknown_subject", None
        except BadInput:
            outcome, subject_id = "invalid", None
        return self._done(ev, outcome, subject_id, received_at)

    def decide(self, ev: CanonicalEvent, received_at: datetime) -> tuple[str, str | None]:
        """Apply an event privasync makes itself (an objection's withdrawals, a
        rectification's values): like ``apply``, without dedupe or an event row."""
        return self._decide(ev, received_at)

    def _done(self, ev: CanonicalEvent, outcome: str, subject_id: str | None,
              received_at: datetime, *, record: bool = True) -> str:
        self.outcomes[(ev.meta.source, outcome)] += int(record)
        if record and outcome not in NO_OPS:
            self.event_rows.append({
                "source": ev.meta.source, "source_event_id": ev.meta.source_event_id,
                "kind": ev.meta.kind or type(ev).__name__, "subject_id": subject_id,
                "occurred_at": ev.meta.occurred_at, "received_at": received_at,
                "outcome": outcome})
        return outcome

    def _decide(self, ev: CanonicalEvent, received_at: datetime) -> tuple[str, str | None]:
        if isinstance(ev, ConsentChanged):
            return self._consent(ev, received_at)
        if isinstance(ev, SubjectSeen):
            return self._seen(ev, received_at)
        if isinstance(ev, RecordChanged):
            self.refuse_suppressed(addresses(ev.fields))
            subject_id, _ = self.resolve(ev.subject)
            return self.record_for(subject_id, ev, received_at), subject_id
        if isinstance(ev, RequestReceived | ErasureRequested):
            return dsr.received(self, ev, received_at)
        if isinstance(ev, RequestAction):
            return dsr.step(self, ev)
        if isinstance(ev, RequestAcknowledged):
            return dsr.acknowledged(self, ev)
        assert not isinstance(ev, SubjectsMerged), "merges are applied one by one"
        if isinstance(ev, IdentifierChanged):
            self.refuse_suppressed([ev.new_email])
        subject_id, _ = self.resolve(ev.subject, create=False)
        if isinstance(ev, SubjectDeleted):
            if ev.subject.ref is not None:
                self._remove_ref(ev.subject.ref)
            self._entry("subject.removed_from_system", subject_id,
                        {"system": ev.meta.source, "event": ev.meta.source_event_id})
            return "recorded", subject_id
        assert isinstance(ev, IdentifierChanged), type(ev).__name__
        if ev.new_ref is not None and (stop := self.blocked(SubjectHint(ref=ev.new_ref))):
            raise stop
        attached = self.add_email(subject_id, ev.new_email)
        if ev.new_ref is not None:
            self.add_ref(subject_id, ev.new_ref)
        self._entry("subject.identifier_changed", subject_id,
                    {"system": ev.meta.source, "attached": attached})
        return ("recorded" if attached else "identifier_conflict"), subject_id

    def _consent(self, ev: ConsentChanged, received_at: datetime) -> tuple[str, str]:
        stop = self.blocked(ev.subject)
        if stop is None:
            subject_id, _ = self.resolve(ev.subject)
            return self.consent_for(subject_id, ev, received_at), subject_id
        # An erased person's withdrawal still goes everywhere (it brings no data of theirs
        # back: the address and the withdrawal); a grant of theirs is not taken in.
        withdrawn = tuple(c for c in ev.changes if c.status == ConsentStatus.WITHDRAWN)
        if not withdrawn:
            raise stop
        if len(withdrawn) < len(ev.changes):
            self.request_entry("suppression.blocked", stop.subject_id, {
                "request": stop.request_id, "source": ev.meta.source,
                "event_kind": "consent.granted"})
        subject_id, _ = self.returning(ev.subject, stop, "withdrawal")
        return self.consent_for(subject_id, replace(ev, changes=withdrawn),
                                received_at), subject_id

    def consent_for(self, subject_id: str, ev: ConsentChanged, received_at: datetime) -> str:
        """Apply a consent event to a subject already resolved; returns the outcome."""
        purposes = [self.mappings.purposes.get(c.purpose) for c in ev.changes]
        if None in purposes:
            raise BadInput("an event names a purpose the mappings do not define")
        current = self.loaded.consents[subject_id]
        verdicts: list[Verdict] = []
        changed: set[str] = set()
        groups: dict[str, list[dict[str, str]]] = {}
        for change, purpose in zip(ev.changes, purposes, strict=True):
            assert purpose is not None
            key = (change.purpose, change.channel)
            before = current.get(key)
            incoming = ConsentState(change.purpose, change.channel, change.status,
                                    ev.meta.occurred_at, ev.meta.source, ev.evidence)
            verdict, stored = resolve(before, incoming, purpose.consent_required)
            verdicts.append(verdict)
            if stored is not None:
                current[key] = stored
                # Sealed now, not in the write transaction, which stays short.
                self.consent_rows[(subject_id, change.purpose, change.channel)] = \
                    self._consent_row(subject_id, stored)
            if verdict is Verdict.APPLY:
                changed.add(change.purpose)
            # "Not opted out" on a record we knew nothing of is no grant at all; a flag
            # flipped back on after a withdrawal is, and is flagged for review.
            flipped_back = before is not None and before.status == ConsentStatus.WITHDRAWN
            if verdict is Verdict.APPLY or (verdict is Verdict.NO_EVIDENCE and flipped_back):
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
            self._entry(kind, subject_id, detail)
        for destination in self.routes.targets(changed, ev.meta.source):
            self.job(outbox.CONSENT, destination, subject_id, received_at)
        return _summarise(verdicts)

    def _seen(self, ev: SubjectSeen, received_at: datetime) -> tuple[str, str]:
        subject_id, created = self.resolve(ev.subject)
        if created:
            self._entry("subject.created", subject_id, {"system": ev.meta.source})
            return "created", subject_id
        purposes = {p for p, _ in self.loaded.consents[subject_id]}
        # A new record of a known person in a system gets that person's current state.
        if purposes & self.routes.purposes.get(ev.meta.source, frozenset()):
            self.job(outbox.CONSENT, ev.meta.source, subject_id, received_at)
        return "known", subject_id

    def record_for(self, subject_id: str, ev: RecordChanged, received_at: datetime) -> str:
        """Remember what changed (as hashes) and queue the encrypted values per destination,
        for a subject already resolved; returns the outcome."""
        fields = dict(ev.fields)
        # An address is identity, not a field to copy around: attach it, never fan it out.
        address = fields.pop(EMAIL_FIELD, None)
        if address is not None and address.value:
            self.add_email(subject_id, address.value)
        known = self.loaded.fields.setdefault(subject_id, {})
        changed = changed_fields(self.keyring, known, fields)
        if not changed:
            return "unchanged"
        # Only a customer-since that is newer than the one known decides: a record polled
        # before a newer change elsewhere must not undo it.
        customer = is_customer(changed)
        if customer is not None:
            self.customers[subject_id] = customer
        for name in changed:
            self.field_rows[(subject_id, name)] = known[name]
        self._entry("record.changed", subject_id,
                    {"source": ev.meta.source, "event": ev.meta.source_event_id,
                     "fields": sorted(changed)})
        for destination in self.routes.record_targets(changed, ev.meta.source):
            origin, payload = self.record_jobs.get((destination, subject_id),
                                                   (received_at, {}))
            self.record_jobs[(destination, subject_id)] = (min(origin, received_at),
                                                           newest([payload, changed]))
        return "applied"

    # -- identity, in memory ------------------------------------------------------------
    def blocked(self, hint: SubjectHint) -> Suppressed | None:
        """Why ``hint`` names an erased person (their address or one of their vendor records
        is on the suppression list), or None."""
        got = self.loaded
        for digest in identity.hint_digests(self.keyring, hint):
            if digest in got.suppressed:
                request_id, erased = got.suppressed[digest]
                return Suppressed("the person was erased", request_id=request_id,
                                  subject_id=erased)
        subject_id = got.refs.get(hint.ref) if hint.ref is not None else None
        if subject_id is not None and subject_id in got.erased:
            return Suppressed("the person was erased", subject_id=subject_id)
        return None

    def refuse_suppressed(self, emails: Iterable[str | None]) -> None:
        """Raise Suppressed if an address an event would attach is an erased person's."""
        for email in emails:
            stop = self.blocked(SubjectHint(email=email)) if email else None
            if stop is not None:
                raise stop

    def resolve(self, hint: SubjectHint, *, create: bool = True) -> tuple[str, bool]:
        """The subject for a hint (core.identity.resolve, over this batch's memory). Raises
        UnknownSubject when only an unknown reference is given, Suppressed when the hint
        names an erased person (nothing of theirs is taken in again)."""
        return identity.resolve(self, hint, create=create)

    def by_ref(self, ref: SystemRef) -> str | None:
        return self.loaded.refs.get(ref)

    def by_email(self, email: str) -> str | None:
        return self._owner(self.keyring.email_digests(email))

    def returning(self, hint: SubjectHint, stop: Suppressed, why: str) -> tuple[str, bool]:
        """A person erased before, back with a request or a withdrawal: the subject that
        holds the address for that already (not shredded yet), or a new one with its own
        key, holding the address and nothing else of the hint (no vendor record, no field).
        It is shredded again when nothing is left to do for it; the suppression list stays.
        Raises ``stop`` when the hint has no address to hold."""
        if not hint.email:
            raise stop
        owner = self._owner(self.keyring.email_digests(hint.email))
        if owner is not None:
            return owner, False
        subject_id = self.create(returned_after=stop.request_id or "-")
        self.add_email(subject_id, hint.email, returning=True)
        self.request_entry("subject.returned", subject_id, {
            "erased_by": stop.request_id, "why": why,
            "held": "the address, for this only; shredded again when done"})
        return subject_id, True

    def unidentified(self, ref: SystemRef) -> str:
        """A subject for a request about a record nobody knows: its own key, the record's
        reference, nothing else."""
        subject_id = self.create()
        self.add_ref(subject_id, ref)
        return subject_id

    def create(self, *, returned_after: str | None = None) -> str:
        subject_id = str(uuid.uuid4())
        key = self.keyring.new_subject_key()
        self.new_subjects.append({"id": subject_id, "created_at": self.now,
                                  "returned_after": returned_after})
        self.new_keys.append({"subject_id": subject_id, "key": key})
        self.loaded.keys[subject_id] = key
        self.loaded.consents[subject_id] = {}
        self.loaded.fields[subject_id] = {}
        return subject_id

    def _owner(self, digests: Sequence[str]) -> str | None:
        for digest in digests:
            if digest in self.loaded.emails:
                return self.loaded.emails[digest]
        return None

    def add_email(self, subject_id: str, email: str, *, returning: bool = False) -> bool:
        """Attach an address unless it is someone's already; True if it is now this one's.
        Raises Suppressed for an erased person's address (unless ``returning``: it is
        taken on again for their request or withdrawal)."""
        digests = self.keyring.email_digests(email)
        owner = self._owner(digests)
        if owner is not None:
            return owner == subject_id
        stop = None if returning else self.blocked(SubjectHint(email=email))
        if stop is not None:
            raise stop
        key = self.loaded.keys.get(subject_id)
        if key is None:
            return False
        self.new_identifiers.append({
            "subject_id": subject_id, "kind": "email", "digest": digests[0],
            "ciphertext": Keyring.encrypt(key, normalise_email(email).encode()),
            "key_version": self.keyring.digest_version})
        self.loaded.emails[digests[0]] = subject_id
        return True

    def add_ref(self, subject_id: str, ref: SystemRef) -> None:
        current = self.loaded.refs.get(ref)
        if current == subject_id:
            return
        self.loaded.refs[ref] = subject_id
        self.removed_refs.discard(ref)
        if ref in self.loaded.stored_refs:
            self.moved_refs[ref] = subject_id
        else:
            self.new_refs[ref] = subject_id

    def _remove_ref(self, ref: SystemRef) -> None:
        self.loaded.refs.pop(ref, None)
        self.new_refs.pop(ref, None)
        self.moved_refs.pop(ref, None)
        if ref in self.loaded.stored_refs:
            self.removed_refs.add(ref)

    def _entry(self, kind: str, subject_id: str, detail: dict[str, object]) -> None:
        self.entries.append(ledger.entry(self.now, kind, subject_id,
                                         self.loaded.keys.get(subject_id), detail))

    def job(self, kind: str, destination: str, subject_id: str, received_at: datetime) -> None:
        key = (kind, destination, subject_id)
        self.jobs[key] = min(self.jobs.get(key, received_at), received_at)

    def drop_jobs(self, subject_id: str, kinds: tuple[str, ...]) -> None:
        """Forget the jobs of ``kinds`` for the subject planned by this batch so far (a
        rejection cancels them, as it cancels those queued by earlier batches)."""
        for key in [k for k in self.jobs if k[2] == subject_id and k[0] in kinds]:
            del self.jobs[key]

    def request_entry(self, kind: str, subject_id: str | None,
                      detail: dict[str, object]) -> None:
        """A ledger entry about a request: in clear (it holds no personal data), so that it
        stays readable, and provable, after the person's key is destroyed."""
        self.entries.append(ledger.entry(self.now, kind, subject_id, None, detail))

    @property
    def destinations(self) -> set[str]:
        """Destinations that got new jobs."""
        return {d for _, d, _ in self.jobs} | {d for d, _ in self.record_jobs}

    # -- writing -----------------------------------------------------------------------
    def write(self, conn: Connection) -> None:
        """Store every decision in the caller's transaction (a handful of statements)."""
        now = self.now
        dsr.finish_ready(self)
        if self.new_subjects:
            write_many(conn, subjects, self.new_subjects)
            write_many(conn, subject_keys, [
                keys.wrapped(self.keyring, str(k["subject_id"]), k["key"])  # type: ignore[arg-type]
                for k in self.new_keys])
        if self.new_identifiers:
            write_many(conn, identifiers, self.new_identifiers)
        self._write_refs(conn)
        if self.customers:
            conn.execute(update(subjects).where(subjects.c.id == bindparam("sid"))
                         .values(is_customer=bindparam("customer")),
                         [{"sid": s, "customer": c} for s, c in self.customers.items()])
        write_many(conn, consents, list(self.consent_rows.values()),
                   conflict=("subject_id", "purpose", "channel"),
                   update=("status", "occurred_at", "source", "evidence", "updated_at"))
        write_many(conn, field_state, [
            {"subject_id": s, "field": f, "digest": v.digest, "occurred_at": v.occurred_at,
             "key_version": v.version}
            for (s, f), v in self.field_rows.items()],
            conflict=("subject_id", "field"), update=("digest", "occurred_at", "key_version"))
        dsr_store.write(self, conn)
        outbox.add(conn, now, [(kind, d, s, origin, None)
                               for (kind, d, s), origin in self.jobs.items()]
                   + [(outbox.RECORD, d, s, origin, self._seal(s, payload))
                      for (d, s), (origin, payload) in self.record_jobs.items()])
        write_many(conn, events, self.event_rows, ignore=True)
        dsr_store.shred(self, conn)

    def _seal(self, subject_id: str, payload: dict[str, FieldValue]) -> bytes | None:
        key = self.loaded.keys.get(subject_id)
        return seal(key, payload) if key is not None else None

    def _consent_row(self, subject_id: str, state: ConsentState) -> dict[str, object]:
        subject_key = self.loaded.keys.get(subject_id)
        evidence = None
        if state.evidence is not None and subject_key is not None:
            evidence = Keyring.encrypt(subject_key, json.dumps(asdict(state.evidence)).encode())
        return {"subject_id": subject_id, "purpose": state.purpose,
                "channel": state.channel.value,
                "status": state.status.value, "occurred_at": state.occurred_at,
                "source": state.source, "evidence": evidence, "updated_at": self.now}

    def _write_refs(self, conn: Connection) -> None:
        # A worker may have learned the same reference meanwhile: keep either.
        write_many(conn, system_refs, [{"system": r.system, "ref": r.ref, "subject_id": s,
                                        "created_at": self.now}
                                       for r, s in self.new_refs.items()], ignore=True)
        if self.moved_refs:
            conn.execute(update(system_refs).where(
                system_refs.c.system == bindparam("s"), system_refs.c.ref == bindparam("r"))
                .values(subject_id=bindparam("sid")),
                [{"s": r.system, "r": r.ref, "sid": s} for r, s in self.moved_refs.items()])
        for ref in self.removed_refs:
            conn.execute(system_refs.delete().where(system_refs.c.system == ref.system,
                                                    system_refs.c.ref == ref.ref))


def _summarise(verdicts: Sequence[Verdict]) -> str:
    for verdict in (Verdict.APPLY, Verdict.NO_EVIDENCE, Verdict.STALE):
        if verdict in verdicts:
            return verdict.value
    return Verdict.UNCHANGED.value
