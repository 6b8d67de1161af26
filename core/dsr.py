"""Data-subject requests as the applier decides them: received, moved on, acknowledged.

The applier is the one writer of subjects, consent and requests, so everything a
request does to them happens here: opening it (its destinations, its jobs, the
suppression of an erased person's identifiers), the admin's steps (verify
identity, extend, reject, not applicable, retry, review of held records),
processors' acknowledgements, and, when every destination is done and the person
was told, the crypto-shredding that leaves nothing readable about them. Ledger
entries about requests hold no personal data and stay readable after the shredding:
they are the proof. A free text in one (an admin's reason, a partner's
acknowledgement detail) may describe the person, so the entry holds only its salted
hash and the text is sealed under the person's key (core.freetext); the requests'
own copies are cleared at the shredding.

The rules live here and touch no table: a request's own state changes through its
methods (core.subject_requests), everything else is queued in ``Decisions``; core.dsr_store
writes both, and does the shredding.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from core import ackproofs, freetext, review
from core import subject_requests as rq
from core.crypto import Keyring
from core.errors import BadInput, Suppressed, UnknownSubject
from core.mappings import Mappings
from core.model import (
    EXCLUDE,
    INCLUDE,
    Channel,
    ConsentChange,
    ConsentChanged,
    ConsentStatus,
    ErasureRequested,
    EventMeta,
    Evidence,
    RecordChanged,
    RequestAcknowledged,
    RequestAction,
    RequestKind,
    RequestReceived,
    RequestStep,
    SubjectHint,
    SystemRef,
)
from core.plan_load import Loaded
from core.records import addresses
from core.routes import Routes

ERASE, EXPORT, NOTIFY = "erasure", "export", "notify"
NOTIFIER = "notifier"  # the destination name of the confirmation to the person
PRIVASYNC = "privasync"  # privasync's own records, in an access request's bundle
_NAMESPACE = uuid.UUID("6f1c3e1a-9a55-4a53-9d0e-5d6a1d3c0b11")


@dataclass
class Decisions:
    """A batch's decisions on requests and what follows from them, until ``write``."""

    changes: rq.Changes = field(default_factory=rq.Changes)
    suppress: list[tuple[str, str]] = field(default_factory=list)  # (subject, request)
    unsuppress: list[str] = field(default_factory=list)  # requests
    cancel: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)  # subject, kinds
    # (subject, erasure request; None for a returning person's subject, done with)
    shreds: list[tuple[str, str | None]] = field(default_factory=list)
    ack_proofs: list[dict[str, object]] = field(default_factory=list)  # ackproofs.row
    ledger_texts: list[dict[str, object]] = field(default_factory=list)  # freetext.seal
    reviews: list[review.Reviewed] = field(default_factory=list)
    finish_if_ready: set[str] = field(default_factory=set)


class Batch(Protocol):
    """What the request rules use of the batch being decided: what it read, its identity
    and consent rules, its jobs and ledger entries (core.plan.Plan is the one)."""

    loaded: Loaded
    keyring: Keyring
    mappings: Mappings
    routes: Routes
    now: datetime
    requests: Decisions

    def resolve(self, hint: SubjectHint, *, create: bool = True) -> tuple[str, bool]: ...

    def returning(self, hint: SubjectHint, stop: Suppressed, why: str) -> tuple[str, bool]: ...

    def unidentified(self, ref: SystemRef) -> str: ...

    def refuse_suppressed(self, emails: Iterable[str | None]) -> None: ...

    def record_for(self, subject_id: str, ev: RecordChanged, received_at: datetime) -> str: ...

    def consent_for(self, subject_id: str, ev: ConsentChanged,
                    received_at: datetime) -> str: ...

    def job(self, kind: str, destination: str, subject_id: str,
            received_at: datetime) -> None: ...

    def drop_jobs(self, subject_id: str, kinds: tuple[str, ...]) -> None: ...

    def request_entry(self, kind: str, subject_id: str | None,
                      detail: dict[str, object]) -> None: ...


def request_id_for(ev: ErasureRequested) -> str:
    """A vendor's erasure event becomes a request whose id follows from the event, so a
    redelivered event names the same request."""
    return str(uuid.uuid5(_NAMESPACE, f"{ev.meta.source}:{ev.meta.source_event_id}"))


def received(plan: Batch, ev: RequestReceived | ErasureRequested,
             received_at: datetime) -> tuple[str, str | None]:
    recorded_at = received_at  # when privasync got it: an identity check is asked from then
    if isinstance(ev, ErasureRequested):
        ev = RequestReceived(ev.meta, ev.subject, RequestKind.ERASURE, request_id_for(ev),
                             actor=ev.meta.source)
    else:  # customer service may record a request that came by letter days ago
        received_at = min(received_at, ev.meta.occurred_at)
    taken = plan.loaded.requests.get(ev.request_id)
    if taken is not None:  # a request id names one request: a sender's reuse opens nothing
        return "duplicate_request", taken.subject_id
    kind = ev.kind
    unidentified = False
    try:
        subject_id, _ = plan.resolve(ev.subject, create=bool(ev.subject.email))
    except UnknownSubject:
        if ev.subject.ref is None:
            raise
        # A system erased a record we never stored, and can no longer say whose it was:
        # the request waits for someone to find out who asked, and says so.
        subject_id, unidentified = plan.unidentified(ev.subject.ref), True
    except Suppressed as exc:
        # A person erased before who asks again is answered like anyone: the systems are
        # read again (they may hold new data of theirs), under a new subject for the request.
        try:
            subject_id, _ = plan.returning(ev.subject, exc, "request")
        except Suppressed:  # no address to hold them by
            _already_erased(plan, ev, received_at, exc)
            return "suppressed", None
    if kind == RequestKind.ERASURE and subject_id in plan.loaded.open_erasure:
        return "duplicate_request", subject_id
    verified = ev.identity_verified and not unidentified
    status = rq.IN_PROGRESS if verified else rq.IDENTITY_PENDING
    asked = None if verified else recorded_at  # Art. 12(6): the pause starts when asked
    identity_due = None if asked is None else asked + plan.routes.identity_wait
    unreached = sorted(plan.routes.not_configured)
    note = rq.UNIDENTIFIED_NOTE if unidentified else None
    destinations = _destinations(plan, kind)
    request = rq.Request(
        ev.request_id, kind.value, subject_id, ev.meta.source, ev.actor or ev.meta.source,
        received_at, status, asked, 0, 0, None, None, None, None,
        note, tuple(rq.Destination(d, rq.PENDING, None, None, None, {}, plan.now)
                    for d in destinations), identity_due_at=identity_due,
        not_configured=tuple(unreached))
    plan.requests.changes.open(request)
    if kind == RequestKind.ERASURE:
        plan.loaded.open_erasure[subject_id] = ev.request_id
    plan.loaded.requests[ev.request_id] = request
    plan.request_entry("request.received", subject_id, {
        "request": ev.request_id, "kind": kind.value, "source": ev.meta.source,
        "actor": ev.actor or ev.meta.source, "identity": "verified" if verified else "pending",
        "due_at": rq.due_at(received_at).isoformat(), "destinations": destinations,
        "not_configured": unreached})
    if asked is not None and identity_due is not None:
        plan.request_entry("request.identity_asked", subject_id, {
            "request": ev.request_id, "asked_at": asked.isoformat(),
            "identity_due_at": identity_due.isoformat(), "clock": "paused until verified"})
    if unidentified:
        assert ev.subject.ref is not None
        plan.request_entry("request.unidentified", subject_id, {
            "request": ev.request_id, "system": ev.subject.ref.system,
            "record": ev.subject.ref.ref, "why": "the system no longer holds the record and "
            "privasync never stored it: who asked is unknown"})
    if verified:
        _start(plan, request, ev)
    return "request_opened", subject_id


def _hold_off(plan: Batch, subject_id: str, request_id: str) -> None:
    """The suppression an erasure queues, as the rest of the batch reads it: the subject's
    addresses and records it knows are refused from now on, as a later batch would."""
    got = plan.loaded
    digests = [d for d, owner in got.emails.items() if owner == subject_id]
    digests += [plan.keyring.system_ref_digests(ref.system, ref.ref)[0]
                for ref, owner in got.refs.items() if owner == subject_id]
    for digest in digests:  # an entry there already stays, as in the table
        got.suppressed.setdefault(digest, (request_id, subject_id))


def _destinations(plan: Batch, kind: RequestKind) -> list[str]:
    if kind == RequestKind.ERASURE:
        return sorted(plan.routes.erasure)
    if kind in (RequestKind.ACCESS, RequestKind.PORTABILITY):
        return sorted([*plan.routes.exports, PRIVASYNC])
    return []


def _already_erased(plan: Batch, ev: RequestReceived, received_at: datetime,
                    exc: Suppressed) -> None:
    """A request about someone already erased: recorded as done, pointing at the erasure.
    Known to the batch from now on, as it is to a later one: its id is taken."""
    request = rq.Request(
        ev.request_id, ev.kind.value, exc.subject_id or "-", ev.meta.source,
        ev.actor or ev.meta.source, received_at, rq.COMPLETED, None, 0, 0, None, None,
        plan.now, None, f"already erased by request {exc.request_id}")
    plan.requests.changes.open(request)
    plan.loaded.requests[ev.request_id] = request
    plan.request_entry("request.already_erased", exc.subject_id, {
        "request": ev.request_id, "erased_by": exc.request_id, "kind": ev.kind.value})


def _start(plan: Batch, request: rq.Request, ev: RequestReceived | None = None) -> None:
    """The identity is known: do what was asked."""
    request_id, kind, subject_id = request.id, request.kind, request.subject_id
    received_at = request.received_at
    if kind == RequestKind.ERASURE:
        plan.requests.suppress.append((subject_id, request_id))
        _hold_off(plan, subject_id, request_id)
        for destination in plan.routes.erasure:
            plan.job(ERASE, destination, subject_id, received_at)
        plan.requests.finish_if_ready.add(request_id)  # nothing to wait for if no system erases
    elif kind in (RequestKind.ACCESS, RequestKind.PORTABILITY):
        for destination in plan.routes.exports:
            plan.job(EXPORT, destination, subject_id, received_at)
        plan.requests.changes.move(request.move(PRIVASYNC, rq.DONE, receipt={
            "at": plan.now.isoformat(),
            "verified": "read from privasync's own records when the bundle is made"}))
        if not plan.routes.exports:
            _complete(plan, request)
    elif kind == RequestKind.OBJECTION:
        _object(plan, request)
    elif kind == RequestKind.RECTIFICATION and ev is not None:
        try:
            plan.refuse_suppressed(addresses(ev.fields))
            plan.record_for(subject_id, RecordChanged(
                EventMeta(PRIVASYNC, f"request:{request_id}", ev.meta.occurred_at,
                          kind="rectification"), ev.subject, ev.fields), received_at)
        except Suppressed as exc:  # the corrected address is an erased person's
            plan.request_entry("suppression.blocked", subject_id, {
                "request": request_id, "erased_by": exc.request_id, "source": PRIVASYNC,
                "event_kind": "rectification"})
            plan.requests.changes.change(request_id, request.annotate(
                "not applied: the corrected address is on the suppression list"))
        _complete(plan, request)


def _object(plan: Batch, request: rq.Request) -> None:
    """Art. 21(3): every direct-marketing purpose, on every channel, withdrawn."""
    request_id, subject_id = request.id, request.subject_id
    changes = tuple(ConsentChange(name, channel, ConsentStatus.WITHDRAWN)
                    for name, purpose in sorted(plan.mappings.purposes.items())
                    if purpose.direct_marketing
                    for channel in sorted({*purpose.channels, Channel.EMAIL}))
    if changes:
        plan.consent_for(subject_id, ConsentChanged(
            EventMeta(PRIVASYNC, f"request:{request_id}", plan.now, kind="objection"),
            SubjectHint(ref=SystemRef(PRIVASYNC, f"subject:{subject_id}")), changes,
            Evidence(PRIVASYNC, "objection", proof_reference=f"request:{request_id}")),
            request.received_at)
    _complete(plan, request)


def _complete(plan: Batch, request: rq.Request) -> None:
    plan.requests.changes.change(request.id, request.complete(plan.now))
    plan.request_entry("request.completed", request.subject_id, {"request": request.id})


def _sealed(plan: Batch, request: rq.Request, text: str) -> tuple[dict[str, str], str]:
    """A free text about ``request`` as its ledger entry holds it (the salted hash; the
    text goes sealed under the person's key) and as the request's row keeps it (the text,
    for the notice and the admin, until the person is erased; not kept if they are)."""
    key = plan.loaded.keys.get(request.subject_id)
    value, row = freetext.seal(key, request.subject_id, text, plan.now)
    if row is not None:
        plan.requests.ledger_texts.append(row)
    return value, text if key is not None else rq.ERASED_TEXT


def step(plan: Batch, ev: RequestAction) -> tuple[str, str | None]:
    """Apply an admin's or a worker's step to the request as this batch's earlier steps
    left it, so that it decides what it would decide in a batch of its own. Raises
    BadInput when the step does not apply."""
    loaded = plan.loaded.requests.get(ev.request_id)
    if loaded is None:
        raise BadInput("no such request")
    request = plan.requests.changes.current(loaded)
    handler = _STEPS[ev.step]
    handler(plan, request, ev)
    return f"request_{ev.step.value}", request.subject_id


def _verify_identity(plan: Batch, request: rq.Request, ev: RequestAction) -> None:
    change = request.verify_identity(plan.now)
    plan.requests.changes.change(request.id, change)
    plan.request_entry("request.identity_verified", request.subject_id, {
        "request": request.id, "actor": ev.actor, "clock_paused_seconds":
        change.paused_seconds})
    _start(plan, request)


def _extend(plan: Batch, request: rq.Request, ev: RequestAction) -> None:
    """Art. 12(3): once, by one or two months, with a reason the person is told (queued for
    the notifier like a confirmation). Raises BadInput, also for a second extension in the
    same batch."""
    if not request.open:
        raise BadInput("only an open request can be extended")
    if request.extended_months:
        raise BadInput("a request is extended once (Art. 12(3))")
    if not 1 <= ev.months <= rq.MAX_EXTENSION_MONTHS or not ev.reason.strip():
        raise BadInput("an extension is 1 or 2 months, with a reason")
    first_due = request.due(plan.now)
    if plan.now > first_due:
        raise BadInput("an extension must be decided (and told) within the first month")
    sealed, kept = _sealed(plan, request, ev.reason[:500])
    change = request.extend(ev.months, kept, plan.now)
    plan.requests.changes.change(request.id, change)
    assert change.due_at is not None
    plan.request_entry("request.extended", request.subject_id, {
        "request": request.id, "months": ev.months, "reason": sealed,
        "actor": ev.actor, "due_at": change.due_at.isoformat()})
    if plan.routes.notifier:
        plan.job(NOTIFY, NOTIFIER, request.subject_id, plan.now)


def _reject(plan: Batch, request: rq.Request, ev: RequestAction) -> None:
    if not request.open:
        raise BadInput("only an open request can be rejected")
    if not ev.reason.strip():
        raise BadInput("a rejection needs a reason")
    sealed, kept = _sealed(plan, request, ev.reason[:500])
    plan.requests.changes.change(request.id, request.reject(kept, plan.now))
    _let_go(plan, request)
    plan.request_entry("request.rejected", request.subject_id, {
        "request": request.id, "reason": sealed, "actor": ev.actor,
        "complaint": "the person may complain to the supervisory authority (Art. 77)"})
    if plan.routes.notifier:
        plan.job(NOTIFY, NOTIFIER, request.subject_id, plan.now)


def _let_go(plan: Batch, request: rq.Request) -> None:
    """A rejected request lets go of the person, for the rest of its batch as for later
    ones: its suppression (stored, or queued by this batch; unsuppressing is written before
    any later erasure's suppression), its erasure and export jobs (queued, or planned by
    this batch), its place among the open erasures (the person may ask again)."""
    decided, got = plan.requests, plan.loaded
    decided.suppress = [s for s in decided.suppress if s[1] != request.id]
    decided.unsuppress.append(request.id)
    for digest in [d for d, (r, _) in got.suppressed.items() if r == request.id]:
        del got.suppressed[digest]
    if got.open_erasure.get(request.subject_id) == request.id:
        del got.open_erasure[request.subject_id]
    decided.cancel.append((request.subject_id, (ERASE, EXPORT)))
    plan.drop_jobs(request.subject_id, (ERASE, EXPORT))


def _not_applicable(plan: Batch, request: rq.Request, ev: RequestAction) -> None:
    if not request.open:
        raise BadInput("the request is no longer open")
    if ev.destination not in {d.name for d in request.destinations}:
        raise BadInput("the request has no such destination")
    if not ev.reason.strip():
        raise BadInput("marking a destination not applicable needs a reason")
    sealed, kept = _sealed(plan, request, ev.reason[:500])
    plan.requests.changes.move(request.move(ev.destination, rq.NOT_APPLICABLE, reason=kept))
    plan.request_entry("request.not_applicable", request.subject_id, {
        "request": request.id, "destination": ev.destination, "reason": sealed,
        "actor": ev.actor})
    plan.requests.finish_if_ready.add(request.id)


def _retry(plan: Batch, request: rq.Request, ev: RequestAction) -> None:
    failed = [d.name for d in request.destinations if d.status == rq.FAILED
              and (not ev.destination or d.name == ev.destination)]
    if not request.open or not failed:
        raise BadInput("nothing failed to retry")
    kind = ERASE if request.kind == RequestKind.ERASURE else EXPORT
    for destination in failed:
        plan.requests.changes.move(request.move(destination, rq.PENDING))
        plan.job(kind, destination, request.subject_id, plan.now)
    plan.request_entry("request.retried", request.subject_id, {
        "request": request.id, "destinations": failed, "actor": ev.actor})


def _review(plan: Batch, request: rq.Request, ev: RequestAction) -> None:
    """Records held for review, included in the answer or excluded from it, each once, with
    the admin's reason (sealed like any reason; the entry names record ids only). Raises
    BadInput when any one cannot be decided (core.review says which)."""
    decided = review.decide(plan.requests.changes, plan.loaded.kept_exports, request, ev)
    sealed, _ = _sealed(plan, request, ev.reason[:500])
    plan.requests.reviews += review.plan_decisions(plan.requests.changes, request, decided)
    plan.request_entry("request.reviewed", request.subject_id, {
        "request": request.id, "destinations": sorted(decided),
        "included": sorted(r for d in decided.values() for r, x in d.items() if x == INCLUDE),
        "excluded": sorted(r for d in decided.values() for r, x in d.items() if x == EXCLUDE),
        "reason": sealed, "actor": ev.actor})
    plan.requests.finish_if_ready.add(request.id)  # the last held record decided: answer whole


def _confirmed(plan: Batch, request: rq.Request, ev: RequestAction) -> None:
    plan.requests.changes.change(request.id, request.confirm(plan.now))
    plan.request_entry("request.person_told", request.subject_id, {
        "request": request.id, **dict(ev.receipt)})
    if request.kind == RequestKind.ERASURE and request.status == rq.IN_PROGRESS:
        _shred(plan, request)


def _extension_told(plan: Batch, request: rq.Request, ev: RequestAction) -> None:
    """The person was told of the extension, or the notice was given up (its receipt says
    which, with the error class only): either way it is not sent again."""
    if request.extension_told_at is not None:
        return  # a redelivered step changes nothing
    plan.requests.changes.change(request.id, request.extension_told(plan.now))
    plan.request_entry("request.extension_told", request.subject_id, {
        "request": request.id, **dict(ev.receipt)})


def _not_told(plan: Batch, request: rq.Request, ev: RequestAction) -> None:
    """The notice was refused, or given up after its retries: recorded with its reason (an
    error class, never the address or the relay's words), and the request finishes as a
    told one would. An address that bounces must not keep the person's data alive."""
    if request.confirmed_at is not None or (request.note or "").startswith(rq.NOT_TOLD_NOTE):
        return  # told meanwhile, or recorded already: a redelivered step changes nothing
    receipt = dict(ev.receipt)
    reason = receipt.get("reason", "unknown")
    plan.requests.changes.change(request.id,
                                 request.annotate(f"{rq.NOT_TOLD_NOTE}: {reason}"[:200]))
    plan.request_entry("request.person_not_told", request.subject_id, {
        "request": request.id, "told": "could not tell the person", **receipt})
    if request.kind == RequestKind.ERASURE and request.status == rq.IN_PROGRESS:
        _shred(plan, request)


def _finish(plan: Batch, request: rq.Request, ev: RequestAction) -> None:
    plan.requests.finish_if_ready.add(request.id)


def finish_ready(plan: Batch) -> None:
    """Requests whose destinations all ended: tell the person, or shred, or complete."""
    changes = plan.requests.changes
    for request_id in sorted(plan.requests.finish_if_ready):
        request = plan.loaded.requests.get(request_id)
        if request is None or changes.status(request) != rq.IN_PROGRESS:
            continue
        if not all(s in rq.FINAL for s in changes.statuses(request).values()):
            continue
        if request.kind != RequestKind.ERASURE:
            _complete(plan, request)
        elif plan.routes.notifier and request.confirmed_at is None:
            plan.job(NOTIFY, NOTIFIER, request.subject_id, plan.now)
        else:
            _shred(plan, request)


def _shred(plan: Batch, request: rq.Request) -> None:
    """Every destination is done and the person was told (or could not be): destroy what
    privasync holds."""
    plan.requests.shreds.append((request.subject_id, request.id))
    _complete(plan, request)
    plan.request_entry("subject.erased", request.subject_id, {
        "request": request.id, "kept": "keyed hashes of the identifiers (suppression list)"})


def acknowledged(plan: Batch, ev: RequestAcknowledged) -> tuple[str, str | None]:
    """A partner's acknowledgement moves its destination only while that destination waits
    for it: the erasure or export went out and no final acknowledgement came yet. Any other
    (a late "rejected" after completion, an ack before anything was sent, a second one) is
    recorded as ignored, with why, and changes nothing. Raises BadInput when it names no
    request sent to this partner."""
    request = plan.loaded.requests.get(ev.request_id)
    if request is None or ev.destination not in {d.name for d in request.destinations}:
        raise BadInput("the acknowledgement names no request sent to this partner")
    signed = ackproofs.row(ev, request.id, plan.loaded.keys.get(request.subject_id))
    if signed is not None:  # applied or ignored, what the partner signed is kept
        plan.requests.ack_proofs.append(signed)
    why_not = _ack_out_of_place(plan, request, ev.destination)
    if why_not is not None:
        plan.request_entry("request.ack_ignored", request.subject_id, {
            "request": request.id, "destination": ev.destination, "completed": ev.completed,
            "event": ev.meta.source_event_id, "proof_sha256": ev.proof, "why": why_not})
        return "ack_ignored", request.subject_id
    status = rq.DONE if ev.completed else rq.FAILED
    sealed, kept = _sealed(plan, request, ev.detail[:500])
    receipt = {"at": plan.now.isoformat(), "acknowledged": "completed" if ev.completed
               else "rejected", "proof_sha256": ev.proof, "event": ev.meta.source_event_id}
    plan.requests.changes.move(request.move(
        ev.destination, status, reason=None if ev.completed else kept, receipt=receipt))
    plan.request_entry("request.acknowledged", request.subject_id, {
        "request": request.id, "destination": ev.destination, "completed": ev.completed,
        "detail": sealed, "proof_sha256": ev.proof})
    plan.requests.finish_if_ready.add(request.id)
    return ("acknowledged" if ev.completed else "ack_rejected"), request.subject_id


def _ack_out_of_place(plan: Batch, request: rq.Request, destination: str) -> str | None:
    """Why an acknowledgement cannot apply to ``destination`` now (None: it can). The
    destination's state counts this batch's earlier decisions: two acks in one batch are a
    first and a second."""
    status = plan.requests.changes.status(request)
    if status != rq.IN_PROGRESS:
        return f"the request is {status}"
    current = next(d for d in request.destinations if d.name == destination)
    state, receipt = current.status, dict(current.receipt)
    for move in plan.requests.changes.moves(request.id):
        if move.destination == destination:  # a move without a receipt leaves none here
            state, receipt = move.status, dict(move.receipt or {})
    if state == rq.AWAITING_ACK:
        return None
    if "acknowledged" in receipt:
        return "a final acknowledgement was applied already"
    if state in (*rq.FINAL, rq.AWAITING_REVIEW):  # answered; an admin decides the rest
        return f"the destination is {state} already"
    if (request.id, destination) not in plan.loaded.sent:
        return "nothing was sent to this partner yet"
    return None  # sent, and the ack overtook our own receipt (or our call's failure)


_STEPS = {
    RequestStep.VERIFY_IDENTITY: _verify_identity,
    RequestStep.EXTEND: _extend,
    RequestStep.REJECT: _reject,
    RequestStep.NOT_APPLICABLE: _not_applicable,
    RequestStep.RETRY: _retry,
    RequestStep.REVIEW: _review,
    RequestStep.CONFIRMED: _confirmed,
    RequestStep.EXTENSION_TOLD: _extension_told,
    RequestStep.NOT_TOLD: _not_told,
    RequestStep.FINISH: _finish,
}


def shred_returning(plan: Batch, subject_id: str, erased_by: str) -> None:
    """A person who came back after an erasure, done with: shredded again. Their address
    stays on the suppression list as it was."""
    plan.requests.shreds.append((subject_id, None))
    plan.request_entry("subject.erased", subject_id, {
        "returned_after": erased_by, "why": "what the person came back for is done",
        "kept": "keyed hashes of the identifiers (suppression list)"})
