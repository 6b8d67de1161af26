"""Carrying out outbox jobs, per destination: claim a batch under a lease, read current
state, call the destination once, record every outcome as a set with one ledger receipt.

No broker here: the worker's dispatch actor wraps ``Deliverer.run``. The claim
and the outcome are two short transactions with the vendor call between them,
outside any transaction.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.engine import Connection, Engine

from core import keys, ledger, outbox, records, state
from core.crypto import Keyring
from core.db import insert_for, reader, system_refs
from core.errors import DeliveryError, PermanentError, Throttled, TransientError
from core.mappings import Mappings
from core.minimise import SubjectContext, minimise
from core.model import DestinationRecord, Outcome
from core.ports import ConsentDestination, RecordDestination

log = logging.getLogger("privasync.delivery")

# attempts so far, the vendor's Retry-After (seconds) -> seconds until the next attempt
Backoff = Callable[[int, float | None], float]
# (the outcome's transaction, its time, each subject's job status) -> None
After = Callable[[Connection, datetime, Mapping[str, str]], None]
# Jobs recorded alike: (status, error class, attempts (retries only), why it is dead)
Group = tuple[str, str | None, int, str | None]


@dataclass
class DeliveryReport:
    """What one run did; the worker turns it into metrics."""

    destination: str
    outcomes: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)
    # batches handed to the destination by result: ok, throttled (a 429, or held back by
    # the vendor's rate window), error
    batches: Counter[str] = field(default_factory=Counter)
    claimed: int = 0
    more: bool = False
    lost: int = 0
    # Seconds until the soonest job a rate limit deferred may go (None: none was).
    throttled_for: float | None = None


@dataclass(frozen=True)
class Budget:
    """When a destination's failing job is given up (``dead``): after ``max_attempts``
    attempts, or at a failure once it has waited longer than ``max_age`` since it was
    queued (or retried by an operator). A throttled call (429) is no attempt and never
    ends a job by age: nothing was tried."""

    max_attempts: int = 12
    max_age: timedelta = timedelta(days=1)


@dataclass(frozen=True)
class Policy:
    """How long a claim lasts, how long it may be held at most, and when a job is dead:
    ``max_attempts`` and ``max_age`` unless ``budgets`` names the destination."""

    lease: timedelta = timedelta(seconds=30)
    max_hold: timedelta = timedelta(minutes=5)
    max_attempts: int = 12
    max_batch: int = 0  # subjects per vendor call at most; 0: each destination's own limit
    max_age: timedelta = timedelta(days=1)
    budgets: Mapping[str, Budget] = field(default_factory=dict)

    def budget(self, destination: str) -> Budget:
        return self.budgets.get(destination) or Budget(self.max_attempts, self.max_age)


class Deliverer:
    def __init__(self, engine: Engine, destinations: Mapping[str, ConsentDestination],
                 backoff: Backoff, clock: Callable[[], datetime], *, holder: str,
                 keyring: Keyring, policy: Policy = Policy(), mappings: Mappings | None = None,
                 record_destinations: Mapping[str, RecordDestination] | None = None,
                 backoffs: Mapping[str, Backoff] | None = None) -> None:
        self.engine = engine
        self.keyring = keyring
        self.destinations = destinations
        self.record_destinations = record_destinations or {}
        self.mappings = mappings
        self.backoff = backoff
        self.backoffs = dict(backoffs or {})  # per destination, where it differs
        self.clock = clock
        self.holder = holder
        self.policy = policy
        # Claims a thread of this process is working on now: the only ones the heartbeat
        # extends (see ``outbox.extend``).
        self._working: set[str] = set()
        self._working_lock = threading.Lock()
        # Other kinds of jobs (requests: erasure, export, notify) register here:
        # kind -> (batch size for a destination, or None if it takes none; the handler).
        self.handlers: dict[str, tuple[Callable[[str], int | None],
                                       Callable[[outbox.Claim, DeliveryReport], None]]] = {}

    def kinds(self, destination: str) -> list[tuple[str, int]]:
        """The job kinds this destination takes, with how many one call may carry."""
        consent = self.destinations.get(destination)
        record = self.record_destinations.get(destination)
        found = [(outbox.CONSENT, consent.batch_size if consent is not None else 100),
                 (outbox.RECORD, record.record_batch_size if record is not None else 100)]
        for kind, (size, _) in self.handlers.items():
            limit = size(destination)
            if limit is not None:
                found.append((kind, limit))
        cap = self.policy.max_batch
        return [(kind, min(limit, cap) if cap else limit) for kind, limit in found]

    def run(self, destination: str,
            more: Callable[[str], object] | None = None) -> DeliveryReport:
        """Deliver one batch of each kind of ``destination``'s due jobs. When a claim comes
        back full, ``more(destination)`` is called before the vendor call, so that another
        worker takes the next batch meanwhile."""
        report = DeliveryReport(destination)
        keys.refresh(self.engine, self.keyring)  # a rotation's new digest version, if any
        with reader(self.engine).connect() as conn:
            due = outbox.due_kinds(conn, destination, self.clock())
        for kind, limit in self.kinds(destination):
            if kind not in due:
                continue
            claim = outbox.claim(self.engine, destination, kind, limit=limit,
                                 holder=self.holder, lease=self.policy.lease, now=self.clock())
            if claim is None:
                continue
            report.claimed += len(claim.jobs)
            if len(claim.jobs) >= limit and not report.more and more is not None:
                more(destination)
            report.more |= len(claim.jobs) >= limit
            with self._working_lock:
                self._working.add(claim.token)
            try:
                if kind == outbox.RECORD:
                    self._records(claim, report)
                elif kind in self.handlers:
                    self.handlers[kind][1](claim, report)
                else:
                    self._consent(claim, report)
            finally:
                with self._working_lock:
                    self._working.discard(claim.token)
        return report

    def working(self) -> frozenset[str]:
        """The claim tokens this process's threads are working on now."""
        with self._working_lock:
            return frozenset(self._working)

    def _consent(self, claim: outbox.Claim, report: DeliveryReport) -> None:
        destination = self.destinations.get(claim.destination)
        if destination is None:
            self._finish(claim, {}, PermanentError(
                f"destination {claim.destination} is not configured",
                error_class="not_configured"), report)
            return
        with reader(self.engine).connect() as conn:
            snaps = state.snapshots(conn, self.keyring, list(claim.by_subject()),
                                    claim.destination)
        try:
            results = destination.apply_consent(list(snaps.values()))
        except Exception as exc:  # noqa: BLE001 - recorded against the batch, never lost
            self._finish(claim, {}, as_delivery_error(exc), report)
            return
        self._finish(claim, {o.subject_id: o for o in results}, None, report)

    def _records(self, claim: outbox.Claim, report: DeliveryReport) -> None:
        """Minimise each subject's newest field values for this destination, now; push
        what may go."""
        destination = self.record_destinations.get(claim.destination)
        if destination is None or self.mappings is None:
            self._finish(claim, {}, PermanentError(
                f"destination {claim.destination} takes no fields", error_class="not_configured"),
                report)
            return
        purposes = self.mappings.destination_purposes(claim.destination)
        now = self.clock()
        outgoing: list[DestinationRecord] = []
        receipts: dict[str, dict[str, str]] = {}
        grouped = claim.by_subject()
        with reader(self.engine).connect() as conn:
            opened = state.keys_of(conn, self.keyring, list(grouped))
            snaps = state.snapshots(conn, self.keyring, list(grouped), claim.destination,
                                    opened)
            customers = state.customers(conn, list(grouped))
            seen = records.last_seen(conn, list(grouped))
        for subject_id, claimed in grouped.items():
            snap = snaps[subject_id]
            # A value older than the last one seen for its field (a dead job retried after
            # newer changes) stays behind: the newer value has its own job.
            fields = records.current(records.newest(
                records.unseal(opened.get(subject_id), j.payload) for j in claimed),
                seen.get(subject_id, {}))
            context = SubjectContext({(c.purpose, c.channel): c for c in snap.consents},
                                     is_customer=subject_id in customers)
            decision = minimise(fields, context, purposes, self.mappings, now)
            report.dropped.update(r.value for r in decision.dropped.values())
            receipts[subject_id] = {
                "kept": ",".join(sorted(decision.kept)),
                "dropped": ",".join(f"{n}:{r.value}" for n, r in sorted(decision.dropped.items()))}
            if decision.kept:
                outgoing.append(DestinationRecord(subject_id, snap.email, snap.refs,
                                                  {n: v.value for n, v in decision.kept.items()},
                                                  listed=snap.listed,
                                                  unlisted_at=snap.unlisted_at))
        results: dict[str, Outcome] = {
            sid: Outcome(sid, note="nothing may flow to this destination")
            for sid in receipts if sid not in {r.subject_id for r in outgoing}}
        try:
            if outgoing:
                results.update({o.subject_id: o for o in destination.push_fields(outgoing)})
        except Exception as exc:  # noqa: BLE001 - recorded against the batch, never lost
            self._finish(claim, {}, as_delivery_error(exc), report)
            return
        for sid, outcome in results.items():
            results[sid] = Outcome(sid, outcome.error, outcome.learned_refs, outcome.note,
                                   {**outcome.detail, **receipts.get(sid, {})})
        self._finish(claim, results, None, report)

    def finish(self, claim: outbox.Claim, results: Mapping[str, Outcome],
               whole: DeliveryError | None, report: DeliveryReport,
               after: After | None = None) -> None:
        """``_finish`` for other kinds' handlers."""
        self._finish(claim, results, whole, report, after)

    def _finish(self, claim: outbox.Claim, results: Mapping[str, Outcome],
                whole: DeliveryError | None, report: DeliveryReport,
                after: After | None = None) -> None:
        """Record every outcome in one transaction: a statement per kind of outcome, the
        references learned, and one ledger receipt listing the batch's jobs. ``after``
        runs in the same transaction with each subject's job status, if the claim was
        still held."""
        now = self.clock()
        budget = self.policy.budget(claim.destination)
        backoff = self.backoffs.get(claim.destination, self.backoff)
        # (status, error class, attempts (retries only), why it is dead) -> job ids
        groups: dict[tuple[str, str | None, int, str | None], list[int]] = {}
        refunded: set[tuple[str, str | None, int, str | None]] = set()
        retry_after: dict[tuple[str, str | None, int, str | None], float | None] = {}
        receipt: dict[str, object] = {"destination": claim.destination, "kind": claim.kind,
                                      "claim": claim.token}
        subjects: dict[str, dict[str, object]] = {}
        learned: list[dict[str, object]] = []
        statuses: dict[str, str] = {}
        sent: dict[int, str] = {}
        for subject_id, claimed in claim.by_subject().items():
            result = results.get(subject_id)
            error: Exception | None = whole
            if whole is None:
                error = result.error if result is not None else TransientError(
                    "destination returned no outcome", error_class="no_outcome")
            throttled = isinstance(error, Throttled)
            attempts = max(j.attempts for j in claimed) - throttled  # a 429 is no attempt
            since = max((j.since for j in claimed if j.since is not None), default=None)
            waited = now - since if since is not None and not throttled else None
            status, error_class, why = judge(error, attempts, waited, budget)
            key = (status, error_class, attempts if status == outbox.PENDING else 0, why)
            if throttled:
                refunded.add(key)
            groups.setdefault(key, []).extend(j.id for j in claimed)
            if isinstance(error, TransientError):
                retry_after[key] = max(retry_after.get(key) or 0.0, error.retry_after or 0.0)
            entry: dict[str, object] = {"jobs": [j.id for j in claimed], "status": status}
            if error_class is not None:
                entry["error_class"] = error_class
            if result is not None and error is None:
                entry |= {"note": result.note, **dict(result.detail)}
                learned += [{"system": claim.destination, "ref": ref, "subject_id": subject_id,
                             "created_at": now} for ref in result.learned_refs]
                report.latencies += [(now - j.origin_received_at).total_seconds()
                                     for j in claimed]
                what = result.detail.get("kept", "") if claim.kind == outbox.RECORD \
                    else claim.kind
                sent |= {j.id: what for j in claimed if what}
            subjects[subject_id] = entry
            statuses[subject_id] = status
            report.outcomes[status] += 1
        receipt["subjects"] = subjects
        report.batches[_batch_result(whole, results)] += 1
        outcomes = self._outcomes(groups, retry_after, refunded, now, report, backoff)
        with self.engine.begin() as conn:
            touched = outbox.finish(conn, claim, outcomes, now, sent)
            if learned:
                conn.execute(insert_for(conn, system_refs).on_conflict_do_nothing(), learned)
            ledger.append(conn, at=now, kind="delivery.batch", detail=receipt)
            if after is not None and touched == len(claim.jobs):
                after(conn, now, statuses)
        report.lost += len(claim.jobs) - touched
        if touched < len(claim.jobs):
            log.warning("claim.lease_lost", extra={"destination": claim.destination,
                                                   "jobs": len(claim.jobs) - touched})

    def _outcomes(self, groups: Mapping[Group, list[int]],
                  retry_after: Mapping[Group, float | None], refunded: set[Group],
                  now: datetime, report: DeliveryReport, backoff: Backoff
                  ) -> list[outbox.Outcome]:
        """One outcome per group, with its next attempt's time; the soonest a rate limit
        allows is noted on the report. A throttled job was never tried: it goes as soon
        as the limit said, without backoff."""
        outcomes: list[outbox.Outcome] = []
        for key, ids in groups.items():
            status, error_class, attempts, why = key
            retry_at = None
            if status == outbox.PENDING:
                wait = retry_after.get(key)
                delay = wait if key in refunded and wait else backoff(max(attempts, 1), wait)
                retry_at = now + timedelta(seconds=delay)
                if key in refunded:
                    report.throttled_for = min(report.throttled_for or delay, delay)
            outcomes.append(outbox.Outcome(status, tuple(ids), error_class, retry_at, note=why,
                                           refund=key in refunded))
        return outcomes


def judge(error: Exception | None, attempts: int, waited: timedelta | None,
          budget: Budget) -> tuple[str, str | None, str | None]:
    """A subject's jobs after a call: (status, error class, why they are dead). ``waited``:
    since the job was queued or retried; None when the call was throttled (no attempt)."""
    if error is None:
        return outbox.DONE, None, None
    error_class = str(getattr(error, "error_class", type(error).__name__))
    if not isinstance(error, TransientError):
        return outbox.DEAD, error_class, "permanent error"
    if attempts >= budget.max_attempts:
        return outbox.DEAD, error_class, "attempts exhausted"
    if waited is not None and waited >= budget.max_age:
        return outbox.DEAD, error_class, "past its max age"
    return outbox.PENDING, error_class, None


def _batch_result(whole: DeliveryError | None, results: Mapping[str, Outcome]) -> str:
    errors = [whole] if whole is not None else [r.error for r in results.values() if r.error]
    if any(isinstance(e, Throttled) for e in errors):
        return "throttled"
    return "error" if errors else "ok"


def as_delivery_error(exc: Exception) -> DeliveryError:
    """A connector's DeliveryError as it is; anything else is a bug or a library surprise:
    logged by type and retried like a transient failure."""
    if isinstance(exc, DeliveryError):
        return exc
    log.error("delivery.unexpected_error", extra={"error": type(exc).__name__})
    return TransientError(f"unexpected {type(exc).__name__}", error_class="worker_error")
