"""Carrying out outbox jobs: claim a batch, read current state, call the destination,
record each outcome with a ledger receipt. No broker here: the worker wraps this.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from core import keys, ledger, outbox, records, state
from core.errors import DeliveryError, PermanentError, TransientError
from core.identity import IdentityMap
from core.mappings import Mappings
from core.minimise import SubjectContext, minimise
from core.model import DestinationRecord, Outcome, SystemRef
from core.ports import ConsentDestination, RecordDestination


@dataclass
class DeliveryReport:
    """What one run did; the worker turns it into metrics and a retry."""

    destination: str | None = None
    outcomes: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    retry_job_id: int | None = None
    retry_in: float | None = None
    dropped: Counter[str] = field(default_factory=Counter)


class Deliverer:
    def __init__(self, engine: Engine, identity: IdentityMap,
                 destinations: Mapping[str, ConsentDestination], backoff: outbox.Backoff,
                 clock: Callable[[], datetime], *, mappings: Mappings | None = None,
                 record_destinations: Mapping[str, RecordDestination] | None = None) -> None:
        self.engine = engine
        self.identity = identity
        self.destinations = destinations
        self.record_destinations = record_destinations or {}
        self.mappings = mappings
        self.backoff = backoff
        self.clock = clock

    def _batch_size(self, destination: str, kind: str) -> int:
        if kind == outbox.RECORD:
            found_r = self.record_destinations.get(destination)
            return found_r.record_batch_size if found_r is not None else 100
        found = self.destinations.get(destination)
        return found.batch_size if found is not None else 100

    def run(self, job_id: int) -> DeliveryReport:
        """Deliver ``job_id`` together with its destination's other due jobs."""
        report = DeliveryReport()
        claim = outbox.claim(self.engine, job_id, self._batch_size, self.clock())
        if claim is None:
            report.outcomes["noop"] += 1
            return report
        report.destination = claim.destination
        if claim.kind == outbox.RECORD:
            self._run_records(claim, report)
            return report
        destination = self.destinations.get(claim.destination)
        if destination is None:
            self._finish(claim, {}, PermanentError(
                f"destination {claim.destination} is not configured",
                error_class="not_configured"), report)
            return report
        with self.engine.connect() as conn:
            snaps = state.snapshots(conn, [j.subject_id for j in claim.jobs], claim.destination)
        subjects = list(snaps.values())
        try:
            results = destination.apply_consent(subjects)
        except DeliveryError as exc:
            self._finish(claim, {}, exc, report)
            return report
        except BaseException:
            outbox.release(self.engine, [j.id for j in claim.jobs], self.clock())
            raise
        self._finish(claim, {o.subject_id: o for o in results}, None, report)
        return report

    def _run_records(self, claim: outbox.Claim, report: DeliveryReport) -> None:
        """Minimise each job's fields for this destination, now; push what may go."""
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
        with self.engine.connect() as conn, keys.cached(conn):
            ids = [j.subject_id for j in claim.jobs]
            snaps = state.snapshots(conn, ids, claim.destination)
            customers = state.customers(conn, ids)
            for job in claim.jobs:
                snap = snaps[job.subject_id]
                fields = records.unseal(conn, job.subject_id, job.payload)
                context = SubjectContext({(c.purpose, c.channel): c for c in snap.consents},
                                         is_customer=job.subject_id in customers)
                decision = minimise(fields, context, purposes, self.mappings, now)
                report.dropped.update(r.value for r in decision.dropped.values())
                receipts[job.subject_id] = {
                    "kept": ",".join(sorted(decision.kept)),
                    "dropped": ",".join(f"{n}:{r.value}" for n, r in sorted(
                        decision.dropped.items()))}
                if decision.kept:
                    outgoing.append(DestinationRecord(
                        job.subject_id, snap.email, snap.refs,
                        {n: v.value for n, v in decision.kept.items()}))
        results: dict[str, Outcome] = {
            sid: Outcome(sid, note="nothing may flow to this destination")
            for sid in receipts if sid not in {r.subject_id for r in outgoing}}
        try:
            if outgoing:
                results.update({o.subject_id: o for o in destination.push_fields(outgoing)})
        except DeliveryError as exc:
            self._finish(claim, {}, exc, report)
            return
        except BaseException:
            outbox.release(self.engine, [j.id for j in claim.jobs], self.clock())
            raise
        self._finish(claim, {sid: dataclasses.replace(o, detail={**o.detail, **receipts[sid]})
                             for sid, o in results.items() if sid in receipts}, None, report)

    def _finish(self, claim: outbox.Claim, results: Mapping[str, Outcome],
                whole: DeliveryError | None, report: DeliveryReport) -> None:
        """Record every outcome in one transaction; retried if the database refuses it,
        and the claim released if it keeps refusing (the jobs then run again)."""
        for attempt in range(3):
            outcomes: Counter[str] = Counter()
            try:
                self._record_all(claim, results, whole, report, outcomes)
            except DBAPIError:
                if attempt < 2:
                    continue
                outbox.release(self.engine, [j.id for j in claim.jobs], self.clock())
                raise
            report.outcomes.update(outcomes)
            return

    def _record_all(self, claim: outbox.Claim, results: Mapping[str, Outcome],
                    whole: DeliveryError | None, report: DeliveryReport,
                    outcomes: Counter[str]) -> None:
        now = self.clock()
        report.latencies.clear()
        report.retry_in = report.retry_job_id = None
        with self.engine.begin() as conn, keys.cached(conn), ledger.writing(conn):
            for job in claim.jobs:
                result = results.get(job.subject_id)
                error: Exception | None = whole
                if whole is None:
                    error = result.error if result is not None else TransientError(
                        "destination returned no outcome", error_class="no_outcome")
                status = self._record(conn, claim.destination, job, result, error, now, report)
                outcomes[status] += 1

    def _record(self, conn: Connection, destination: str, job: outbox.ClaimedJob,
                result: Outcome | None, error: Exception | None, now: datetime,
                report: DeliveryReport) -> str:
        receipt: dict[str, object] = {"destination": destination, "job": job.id,
                                      "attempt": job.attempts}
        if error is None and result is not None:
            for ref in result.learned_refs:
                self.identity.add_ref(conn, job.subject_id, SystemRef(destination, ref), now)
            outbox.complete(conn, job.id, now, result.note)
            receipt.update({"note": result.note, **dict(result.detail)})
            ledger.append(conn, at=now, kind="delivery.done", subject_id=job.subject_id,
                          detail=receipt)
            report.latencies.append((now - job.origin_received_at).total_seconds())
            return "done"
        error_class = str(getattr(error, "error_class", type(error).__name__))
        receipt["error_class"] = error_class
        if isinstance(error, TransientError):
            delay = outbox.retry(conn, job, now, self.backoff, error_class, error.retry_after)
            if delay is not None:
                if report.retry_in is None or delay < report.retry_in:
                    report.retry_in, report.retry_job_id = delay, job.id
                return "retry"
            ledger.append(conn, at=now, kind="delivery.dead", subject_id=job.subject_id,
                          detail=receipt)
            return "dead"
        outbox.fail(conn, job.id, now, error_class)
        ledger.append(conn, at=now, kind="delivery.failed", subject_id=job.subject_id,
                      detail=receipt)
        return "failed"
