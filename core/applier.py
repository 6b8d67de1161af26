"""The applier: the one active writer of domain state, applying the inbox as sets.

One applier leads at a time (the ``applier`` lease). Each tick it takes the
oldest unapplied inbox rows, parses them with their source's parser, reads
the state they touch, asks a vendor for the addresses of references nobody
knows yet (outside any transaction), decides every event in memory
(core.plan), and commits in one short transaction: the writes, the ledger
chain (it is the chain's only writer), and the rows marked applied. Before
writing it re-checks its lease; the rows must still be unapplied.

A batch that fails for a reason other than the database being away is cut in
halves until the row at fault stands alone; that row is tried again later and,
after ``max_attempts``, set aside as failed with its reason: visible in
``privasync status`` and the metrics, never silently dropped.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from core import (
    codec,
    dsr,
    dsr_store,
    erasures,
    inbox,
    keys,
    ledger,
    outbox,
    plan,
    plan_load,
    runtime,
    state,
)
from core.consent import Verdict, resolve
from core.crypto import Keyring
from core.db import event_counts, events, insert_for, ledger_pending, reader, scrub
from core.errors import BadInput, DeliveryError, PrivasyncError, Suppressed, UnknownSubject
from core.identity import IdentityMap
from core.mappings import Mappings
from core.model import (
    CanonicalEvent,
    RequestAcknowledged,
    RequestAction,
    SubjectHint,
    SubjectsMerged,
    SystemRef,
)
from core.ports import ErasureLog, EventParser, RefResolver
from core.routes import Routes

log = logging.getLogger("privasync.applier")

LEASE = "applier"


class LeaseLost(PrivasyncError):
    """This applier no longer leads (its lease expired, or rows were applied elsewhere)."""


@dataclass(frozen=True)
class ApplierPolicy:
    lease: timedelta = timedelta(seconds=15)
    max_rows: int = 100
    max_events: int = 2000
    max_attempts: int = 5
    retry_seconds: float = 5.0
    # How often subjects held for people who came back after an erasure are looked at,
    # and shredded again once nothing is left to do for them.
    returning_sweep: timedelta = timedelta(seconds=60)
    # ... and how long such a subject is kept after its last job ended: a system echoing
    # our own withdrawal back (a poller seeing the write) finds the person already
    # withdrawn, instead of a new subject that would send the withdrawal out again.
    returning_quiet: timedelta = timedelta(hours=1)


@dataclass
class TickReport:
    rows: int = 0
    events: int = 0
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    destinations: set[str] = field(default_factory=set)
    deferred: int = 0
    failed_rows: int = 0
    chained: int = 0


Parsed = tuple[inbox.Delivery, list[CanonicalEvent]]
Row = tuple[inbox.Delivery, list[CanonicalEvent] | str | Exception]


@dataclass
class _Batch:
    """What one write transaction stores besides the plan."""

    applied: list[int] = field(default_factory=list)
    failed: dict[str, list[inbox.Delivery]] = field(default_factory=dict)
    deferred: dict[str, list[inbox.Delivery]] = field(default_factory=dict)


class Applier:
    def __init__(self, engine: Engine, keyring: Keyring, mappings: Mappings, routes: Routes, *,
                 clock: Callable[[], datetime], holder: str,
                 parsers: Mapping[str, EventParser] | None = None,
                 resolvers: Mapping[str, RefResolver] | None = None,
                 policy: ApplierPolicy = ApplierPolicy(),
                 erasure_log: ErasureLog | None = None) -> None:
        self.engine = engine
        self.keyring = keyring
        self.mappings = mappings
        self.routes = routes
        self.clock = clock
        self.holder = holder
        self.parsers = dict(parsers or {})
        self.resolvers = dict(resolvers or {})
        self.policy = policy
        self.lease = runtime.Leadership(engine, LEASE, holder, policy.lease)
        self._scrub_pending = False
        self._next_sweep: datetime | None = None
        self.erasure_log = erasure_log
        self._log_pending = erasure_log is not None  # what a crash left queued goes first
        self._log_ready = self._log_failing = False

    def _fence(self, conn: Connection, now: datetime) -> None:
        if not self.lease.fence(conn, now):
            raise LeaseLost("the applier lease was lost")

    # -- one tick --------------------------------------------------------------------
    def tick(self, max_events: int | None = None) -> TickReport | None:
        """Apply the next batch of inbox rows (and chain pending ledger entries), at most
        ``max_events`` (the policy's by default); None when another applier leads."""
        now = self.clock()
        if not self.lease.held(now):
            return None
        report = TickReport()
        with reader(self.engine).connect() as conn:
            due = inbox.due(conn, now, max_rows=self.policy.max_rows,
                            max_events=min(max_events or self.policy.max_events,
                                           self.policy.max_events))
            chaining = conn.execute(select(ledger_pending.c.id).limit(1)).first() is not None
        if due:
            self._apply(self._parse(due), report)
        elif chaining:
            self._write(plan.Plan(plan_load.Loaded(), self.keyring, self.mappings, self.routes,
                                  self.clock()), _Batch(), report)
        if self._next_sweep is None or now >= self._next_sweep:
            self._next_sweep = now + self.policy.returning_sweep
            self.sweep_returning(report)
        if self._scrub_pending:  # until the old pages of a shredded key are gone
            self._scrub_pending = not scrub(self.engine)
        if self._log_pending:
            self._flush_erasure_log()
        return report

    def sweep_returning(self, report: TickReport | None = None) -> int:
        """Shred again the subjects of people who came back after an erasure and have
        nothing left to do here; returns how many."""
        now = self.clock()
        with reader(self.engine).connect() as conn:
            done = dsr_store.returning_done(conn, now - self.policy.returning_quiet)
        if not done:
            return 0
        decided = plan.Plan(plan_load.Loaded(), self.keyring, self.mappings, self.routes, now)
        for subject_id, erased_by in done:
            dsr.shred_returning(decided, subject_id, erased_by)
        self._write(decided, _Batch(), report or TickReport())
        return len(done)

    def _flush_erasure_log(self) -> None:
        """After the commit: append completed erasures to the erasure log (core.erasures).
        A log that cannot be written keeps them queued in the database, tried each tick."""
        if self.erasure_log is None:
            return
        try:
            if not self._log_ready:  # made at the first tick: missing later means lost
                self.erasure_log.ensure()
                self._log_ready = True
            erasures.flush(self.engine, self.erasure_log)
        except (OSError, PrivasyncError, DBAPIError) as exc:
            if not self._log_failing:  # once, not every tick
                log.warning("erasure log not written, erasures kept queued in the "
                            "database: %s", type(exc).__name__)
            self._log_failing = True
            return
        if self._log_failing:
            log.info("erasure log written again")
        self._log_failing = self._log_pending = False

    def _parse(self, due: Sequence[inbox.Delivery]) -> list[Row]:
        """Each row's events, or the reason it cannot be read (a string: for good), or the
        error a parser ran into (tried again, then set aside)."""
        out: list[Row] = []
        for d in due:
            body = self.keyring.unseal(d.body) if d.body is not None else None
            if body is None:
                out.append((d, "unreadable"))
                continue
            parse = self.parsers.get(d.source, codec.decode)
            try:
                out.append((d, list(parse(body, d.received_at))))
            except BadInput:
                out.append((d, "unparseable"))
            except Exception as exc:  # noqa: BLE001 - a parser bug must not stop the inbox
                out.append((d, exc))
        return out

    def _apply(self, rows: Sequence[Row],
               report: TickReport) -> None:
        """Apply ``rows`` together; on a failure, each half on its own, down to one row."""
        try:
            self._apply_set(rows, report)
        except keys.KeysMoved:
            self._apply_set(rows, report)  # decided again, with the digest keys now current
        except (LeaseLost, ledger.ChainMoved):
            raise
        except DBAPIError as exc:
            if not isinstance(exc, IntegrityError) or exc.connection_invalidated:
                raise  # the database is away: the whole tick waits for it
            self._split(rows, report, exc)
        except Exception as exc:  # noqa: BLE001 - a bad row must not stop the inbox
            self._split(rows, report, exc)

    def _split(self, rows: Sequence[Row], report: TickReport,
               exc: Exception) -> None:
        if len(rows) > 1:
            middle = len(rows) // 2
            self._apply(rows[:middle], report)
            self._apply(rows[middle:], report)
            return
        batch = _Batch()
        self._set_aside(rows[0][0], exc, batch)
        self._write(plan.Plan(plan_load.Loaded(), self.keyring, self.mappings, self.routes,
                              self.clock()), batch, report)

    def _set_aside(self, delivery: inbox.Delivery, exc: Exception, batch: _Batch) -> None:
        """A row that failed on its own: tried again later, given up after max_attempts."""
        log.error("inbox.row_failed", extra={"inbox_id": delivery.id, "source": delivery.source,
                                             "error": type(exc).__name__})
        if delivery.attempts + 1 >= self.policy.max_attempts:
            batch.failed.setdefault(f"error:{type(exc).__name__}"[:64], []).append(delivery)
        else:
            batch.deferred.setdefault(type(exc).__name__[:64], []).append(delivery)

    def _apply_set(self, rows: Sequence[Row],
                   report: TickReport) -> None:
        batch = _Batch()
        parsed: list[Parsed] = []
        for d, found in rows:
            if isinstance(found, str):
                batch.failed.setdefault(found, []).append(d)
            elif isinstance(found, Exception):
                self._set_aside(d, found, batch)
            else:
                parsed.append((d, found))
        with reader(self.engine).connect() as conn:
            loaded = plan_load.load(conn, self.keyring, [e for _, evs in parsed for e in evs])
        parsed, enriched = self._look_up(parsed, loaded, batch)
        if enriched:  # addresses learned from a vendor: read what they point at
            with reader(self.engine).connect() as conn:
                loaded = plan_load.load(conn, self.keyring, [e for _, evs in parsed for e in evs])
        decided = plan.Plan(loaded, self.keyring, self.mappings, self.routes, self.clock())
        for d, evs in parsed:
            for ev in sorted(evs, key=lambda e: e.meta.occurred_at):
                decided.apply(ev, d.received_at)
            batch.applied.append(d.id)
            report.events += d.events
        self._write(decided, batch, report)

    def _look_up(self, parsed: list[Parsed], loaded: plan_load.Loaded,
                 batch: _Batch) -> tuple[list[Parsed], bool]:
        """Ask each system for the addresses of its references nobody knows yet, outside any
        transaction; rows whose look-up failed wait (or, out of attempts, go without)."""
        wanted: dict[str, dict[SystemRef, None]] = {}
        for _, evs in parsed:
            for ev in evs:
                for hint in plan_load.hints(ev):
                    ref = hint.ref
                    if ref is not None and not hint.email and ref not in loaded.refs \
                            and ref.system in self.resolvers:
                        wanted.setdefault(ref.system, {})[ref] = None
        emails: dict[SystemRef, str] = {}
        broken: set[str] = set()
        for system, refs in wanted.items():
            try:
                emails |= self.resolvers[system].lookup_emails(list(refs))
            except DeliveryError as exc:
                log.warning("applier.lookup_failed", extra={
                    "system": system, "error": getattr(exc, "error_class", "delivery")})
                broken.add(system)
        if not emails and not broken:
            return parsed, False
        kept: list[Parsed] = []
        for d, evs in parsed:
            waits = broken and any(h.ref is not None and h.ref.system in broken and not h.email
                                   and h.ref not in loaded.refs
                                   for ev in evs for h in plan_load.hints(ev))
            if waits and d.attempts + 1 < self.policy.max_attempts:
                batch.deferred.setdefault("lookup_failed", []).append(d)
                continue
            kept.append((d, [_with_email(ev, emails) for ev in evs]))
        return kept, bool(emails)

    # -- writing ---------------------------------------------------------------------
    def _write(self, decided: plan.Plan, batch: _Batch, report: TickReport) -> None:
        now = decided.now
        counts = Counter(decided.outcomes)
        with self.engine.begin() as conn:
            self._fence(conn, now)
            if keys.fence(conn, self.keyring) and batch.applied:
                raise keys.KeysMoved("digest keys rotated since this batch was decided")
            decided.write(conn)
            merged = []
            for ev, received_at in decided.merges:
                outcome, subject_id = self._merge(conn, ev, received_at, now, decided)
                merged.append(_event_row(ev, outcome, subject_id, received_at))
                counts[(ev.meta.source, outcome)] += 1
            if merged:
                conn.execute(insert_for(conn, events).on_conflict_do_nothing(), merged)
            report.chained += ledger.chain(conn, decided.entries)
            if inbox.mark_applied(conn, batch.applied, now) != len(batch.applied):
                raise LeaseLost("inbox rows were applied by someone else")
            for reason, rows in batch.failed.items():
                inbox.mark_applied(conn, [d.id for d in rows], now, error=reason)
                for d in rows:
                    counts[(d.source, "failed")] += d.events
            for reason, rows in batch.deferred.items():
                retry = self.policy.retry_seconds * 2 ** max((d.attempts for d in rows),
                                                            default=0)
                inbox.defer(conn, [d.id for d in rows], now + timedelta(seconds=retry), reason)
            _count(conn, counts)
        if decided.requests.shreds:
            self._scrub_pending = True
            self._log_pending = self.erasure_log is not None
        report.rows += len(batch.applied) + sum(len(r) for r in batch.failed.values())
        report.failed_rows += sum(len(r) for r in batch.failed.values())
        report.deferred += sum(len(r) for r in batch.deferred.values())
        report.outcomes.update(counts)
        report.destinations |= decided.destinations

    def _merge(self, conn: Connection, ev: SubjectsMerged, received_at: datetime,
               now: datetime, decided: plan.Plan) -> tuple[str, str | None]:
        """Merges are rare: applied one by one, after the batch's set writes."""
        identity = IdentityMap(self.keyring)
        owners = identity.by_refs(conn, ev.merged)  # one query, not one per merged id
        losers = [s for s in dict.fromkeys(owners.get(r) for r in ev.merged) if s]
        try:
            winner, _ = identity.resolve(conn, ev.primary, now, create=False)
        except Suppressed as exc:  # an erased person's address or record: not taken in
            decided.request_entry("suppression.blocked", exc.subject_id, {
                "request": exc.request_id, "source": ev.meta.source,
                "event_kind": ev.meta.kind or type(ev).__name__})
            return "suppressed", None
        except UnknownSubject:
            if not losers or ev.primary.ref is None:
                return "unknown_subject", None
            winner = losers.pop(0)
            identity.add_ref(conn, winner, ev.primary.ref, now)
        current = state.load(conn, winner, self.keyring)
        changed: set[str] = set()
        for loser in [s for s in losers if s != winner]:
            for key, theirs in state.load(conn, loser, self.keyring).items():
                ours = current.get(key)
                purpose = self.mappings.purposes.get(theirs.purpose)
                verdict, stored = resolve(ours, theirs,
                                          purpose.consent_required if purpose else True)
                if stored is not None:
                    state.save(conn, self.keyring, winner, stored, ours is not None, now)
                    current[key] = stored
                if verdict is Verdict.APPLY:
                    changed.add(theirs.purpose)
            identity.merge(conn, loser, winner)
            ledger.append(conn, at=now, kind="subject.merged", subject_id=winner,
                          keyring=self.keyring,
                          detail={"merged": loser, "system": ev.meta.source})
        targets = self.routes.targets(changed, None)
        outbox.add(conn, now, [(outbox.CONSENT, d, winner, received_at, None) for d in targets])
        decided.jobs.update({(outbox.CONSENT, d, winner): received_at for d in targets})
        return ("merged" if changed else "recorded"), winner


def _event_row(ev: CanonicalEvent, outcome: str, subject_id: str | None,
               received_at: datetime) -> dict[str, object]:
    return {"source": ev.meta.source, "source_event_id": ev.meta.source_event_id,
            "kind": ev.meta.kind or type(ev).__name__, "subject_id": subject_id,
            "occurred_at": ev.meta.occurred_at, "received_at": received_at, "outcome": outcome}


def _count(conn: Connection, counts: Counter[tuple[str, str]]) -> None:
    rows = [{"source": s, "outcome": o, "n": n} for (s, o), n in sorted(counts.items()) if n]
    if rows:
        stmt = insert_for(conn, event_counts)
        conn.execute(stmt.on_conflict_do_update(
            index_elements=["source", "outcome"], set_={"n": event_counts.c.n + stmt.excluded.n}),
            rows)


def _with_email(ev: CanonicalEvent, emails: Mapping[SystemRef, str]) -> CanonicalEvent:
    def hint(h: SubjectHint) -> SubjectHint:
        if h.email or h.ref is None or h.ref not in emails:
            return h
        return SubjectHint(ref=h.ref, email=emails[h.ref])

    if isinstance(ev, SubjectsMerged):
        return dataclasses.replace(ev, primary=hint(ev.primary))
    if isinstance(ev, RequestAction | RequestAcknowledged):
        return ev
    return dataclasses.replace(ev, subject=hint(ev.subject))
