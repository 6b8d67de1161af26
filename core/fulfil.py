"""Carrying out data-subject requests at destinations: erase, export, tell the person.

These are outbox jobs like consent and record jobs (the same claims, leases,
batching, retries and Retry-After), registered with the Deliverer as three
more kinds. Each records, in the transaction that ends its jobs, where the
request now stands at the destination with a receipt, and when a request's
every destination has ended, hands it back to the applier (an inbox entry),
which is the one to tell the person or destroy the key. A notice given up
(refused, or out of retries) is handed back too, with its reason: the request
ends all the same.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.engine import Connection

from core import codec, inbox, ledger, outbox, review, state
from core import subject_requests as rq
from core.crypto import Keyring
from core.db import (
    identifiers,
    insert_for,
    reader,
    request_exports,
    request_notices,
    requests,
    system_refs,
)
from core.delivery import Deliverer, DeliveryReport, as_delivery_error
from core.dsr import ERASE, EXPORT, NOTIFIER, NOTIFY
from core.errors import AuthError, DeliveryError, TransientError
from core.model import (
    ErasureReceipt,
    ErasureStatus,
    EventMeta,
    ExportedField,
    ExportResult,
    Outcome,
    PersonAt,
    RequestAction,
    RequestKind,
    RequestStep,
)
from core.ports import ErasureDestination, ExportSource, Notifier

DEFAULT_ACK_WITHIN = timedelta(hours=72)
# Notifier error classes that say our own sending is misconfigured, not that the person
# cannot be reached (connectors/notify: SMTP TLS; a refused login is an AuthError).
OUR_RELAY = frozenset({"smtp_tls", "smtp_auth"})
EXTENSION = "extension"  # the kind of notice that tells the person of an extension


class Fulfiller:
    def __init__(self, deliverer: Deliverer, keyring: Keyring, *,
                 erasure: Mapping[str, ErasureDestination],
                 exports: Mapping[str, ExportSource], notifier: Notifier | None,
                 ack_within: Mapping[str, timedelta], export_keep: timedelta) -> None:
        self.deliverer = deliverer
        self.engine = deliverer.engine
        self.keyring = keyring
        self.erasure = erasure
        self.exports = exports
        self.notifier = notifier
        self.ack_within = ack_within
        self.export_keep = export_keep
        deliverer.handlers[ERASE] = (
            lambda d: self.erasure[d].erase_batch_size if d in self.erasure else None,
            self._erase)
        deliverer.handlers[EXPORT] = (
            lambda d: self.exports[d].export_batch_size if d in self.exports else None,
            self._export)
        deliverer.handlers[NOTIFY] = (lambda d: 20 if d == NOTIFIER else None, self._notify)

    # -- who is where ----------------------------------------------------------------
    def _people(self, subject_ids: Sequence[str], destination: str,
                kind: str) -> tuple[dict[str, PersonAt], dict[str, bytes]]:
        """Each subject with an open request of ``kind``: every address (decrypted for the
        job only) and its refs at ``destination``; and their keys."""
        with reader(self.engine).connect() as conn:
            open_requests = rq.open_for(conn, subject_ids, kind)
            ids = list(open_requests)
            keys = state.keys_of(conn, self.keyring, ids)
            emails: dict[str, list[str]] = {sid: [] for sid in ids}
            for row in conn.execute(select(identifiers.c.subject_id, identifiers.c.ciphertext)
                                    .where(identifiers.c.subject_id.in_(ids),
                                           identifiers.c.kind == "email")):
                key = keys.get(row.subject_id)
                plain = Keyring.decrypt(key, row.ciphertext) if key is not None else None
                if plain is not None:
                    emails[row.subject_id].append(plain.decode())
            refs: dict[str, list[str]] = {sid: [] for sid in ids}
            for row in conn.execute(select(system_refs.c.subject_id, system_refs.c.ref).where(
                    system_refs.c.subject_id.in_(ids), system_refs.c.system == destination)):
                refs[row.subject_id].append(row.ref)
        return ({sid: PersonAt(sid, open_requests[sid], tuple(sorted(emails[sid])),
                               tuple(sorted(refs[sid]))) for sid in ids}, keys)

    def _no_request(self, subject_ids: Sequence[str],
                    people: Mapping[str, PersonAt]) -> dict[str, Outcome]:
        return {sid: Outcome(sid, note="no open request (rejected or finished meanwhile)")
                for sid in subject_ids if sid not in people}

    # -- erasure ---------------------------------------------------------------------
    def _erase(self, claim: outbox.Claim, report: DeliveryReport) -> None:
        destination = self.erasure.get(claim.destination)
        subject_ids = list(claim.by_subject())
        people, _ = self._people(subject_ids, claim.destination, RequestKind.ERASURE)
        results = self._no_request(subject_ids, people)
        receipts: dict[str, ErasureReceipt] = {}
        if people and destination is not None:
            try:
                found = destination.erase(list(people.values()))
            except Exception as exc:  # noqa: BLE001 - recorded against each person's request
                # Each request learns of it too: a job given up leaves its request failed
                # (visible, retryable), never waiting on a job that is dead.
                error = as_delivery_error(exc)
                found = [ErasureReceipt(sid, error=error) for sid in people]
            receipts = {r.subject_id: r for r in found}
            results |= {r.subject_id: Outcome(r.subject_id, error=r.error, note=r.status.value)
                        for r in found}

        def after(conn: Connection, now: datetime, statuses: Mapping[str, str]) -> None:
            for sid, status in statuses.items():
                receipt, person = receipts.get(sid), people.get(sid)
                if receipt is not None and person is not None:
                    self._erased(conn, now, claim.destination, person.request_id, status,
                                 receipt)
            self._hand_back(conn, now, [p.request_id for p in people.values()])

        self.deliverer.finish(claim, results, None, report, after)

    def _erased(self, conn: Connection, now: datetime, destination: str, request_id: str,
                status: str, receipt: ErasureReceipt) -> None:
        proof = {"at": now.isoformat(), "vendor_status": receipt.vendor_status,
                 "vendor_request_id": receipt.vendor_request_id,
                 "verified": receipt.verified, "records": receipt.records}
        # A fast partner's acknowledgement may be applied before this outcome is recorded,
        # and an admin may have marked the destination meanwhile: only a destination still
        # waiting on this job takes its outcome.
        waiting = (rq.PENDING,)
        if status == outbox.DONE and receipt.status is ErasureStatus.AWAITING_ACK:
            due = now + self.ack_within.get(destination, DEFAULT_ACK_WITHIN)
            rq.record(conn, request_id, destination, status=rq.AWAITING_ACK, now=now,
                      receipt=proof | {"ack_due": due.isoformat()}, ack_due=due,
                      only_from=waiting)
            kind = "request.asked"
        elif status == outbox.DONE:
            rq.record(conn, request_id, destination, status=rq.DONE, now=now, receipt=proof,
                      only_from=waiting)
            kind = "request.erased"
        elif status in (outbox.FAILED, outbox.DEAD):
            error = str(getattr(receipt.error, "error_class", "error"))
            rq.record(conn, request_id, destination, status=rq.FAILED, now=now,
                      receipt=proof, reason=error, only_from=waiting)
            kind = "request.failed"
        else:
            error = str(getattr(receipt.error, "error_class", "error"))
            rq.record(conn, request_id, destination, status=rq.PENDING, now=now,
                      reason=f"retrying after {error}", only_from=waiting)
            return
        self._entry(conn, now, kind, request_id, {"destination": destination, **proof})

    # -- export ----------------------------------------------------------------------
    def _export(self, claim: outbox.Claim, report: DeliveryReport) -> None:
        source = self.exports.get(claim.destination)
        subject_ids = list(claim.by_subject())
        people: dict[str, PersonAt] = {}
        keys: dict[str, bytes] = {}
        for kind in (RequestKind.ACCESS, RequestKind.PORTABILITY):
            found, found_keys = self._people(subject_ids, claim.destination, kind)
            people |= {sid: p for sid, p in found.items() if sid not in people}
            keys |= found_keys
        results = self._no_request(subject_ids, people)
        exported: dict[str, ExportResult] = {}
        if people and source is not None:
            try:
                exported = {r.subject_id: r for r in source.export(list(people.values()))}
            except Exception as exc:  # noqa: BLE001 - recorded against the batch
                self.deliverer.finish(claim, {}, as_delivery_error(exc), report)
                return
            results |= {sid: Outcome(sid, error=r.error, note=f"{len(r.fields)} field(s)" + (
                f", {len(r.review)} record(s) held for review" if r.review else ""))
                for sid, r in exported.items()}

        def after(conn: Connection, now: datetime, statuses: Mapping[str, str]) -> None:
            for sid, status in statuses.items():
                result, person, key = exported.get(sid), people.get(sid), keys.get(sid)
                if result is None or person is None or key is None or status != outbox.DONE:
                    continue
                self._store_export(conn, now, claim.destination, person.request_id, key, result)
            self._hand_back(conn, now, [p.request_id for p in people.values()])

        self.deliverer.finish(claim, results, None, report, after)

    def _store_export(self, conn: Connection, now: datetime, destination: str,
                      request_id: str, key: bytes, result: ExportResult) -> None:
        payload = Keyring.encrypt(key, json.dumps(
            {"note": result.note, "fields": [_field_row(f) for f in result.fields],
             "review": [{"record": h.record, "reason": h.reason,
                         "fields": [_field_row(f) for f in h.fields]}
                        for h in result.review]}).encode())
        stmt = insert_for(conn, request_exports).values(
            request_id=request_id, destination=destination, payload=payload, created_at=now,
            expires_at=now + self.export_keep)
        conn.execute(stmt.on_conflict_do_update(
            index_elements=["request_id", "destination"],
            set_={"payload": stmt.excluded.payload, "created_at": now,
                  "expires_at": stmt.excluded.expires_at}))
        records = len({f.record for f in result.fields})
        proof: dict[str, Any] = {"at": now.isoformat(), "fields": len(result.fields),
                                 "records": records}
        reason, status = None, rq.DONE
        if result.review:
            # Ids only: which records wait for an admin, never what they hold. The request
            # waits for the decisions (core.review), so its deadline covers them.
            proof["held_for_review"] = [h.record for h in result.review]
            status = rq.AWAITING_REVIEW
            reason = (f"{review.waiting(len(result.review))}: "
                      f"{'; '.join(sorted({h.reason for h in result.review}))}")
        rq.record(conn, request_id, destination, status=status, now=now, receipt=proof,
                  reason=reason)
        self._entry(conn, now, "request.exported", request_id,
                    {"destination": destination, **proof})

    # -- telling the person ----------------------------------------------------------
    def _notify(self, claim: outbox.Claim, report: DeliveryReport) -> None:
        subject_ids = list(claim.by_subject())
        now = self.deliverer.clock()
        with reader(self.engine).connect() as conn:
            pending = _to_tell(conn, subject_ids)
            snaps = state.snapshots(conn, self.keyring, subject_ids, NOTIFIER)
        results: dict[str, Outcome] = {}
        told: list[tuple[str, str, dict[str, str]]] = []  # request, kind, receipt
        untold: dict[str, tuple[list[tuple[str, str]], dict[str, str]]] = {}  # subject -> why
        for sid in subject_ids:
            email = snaps[sid].email
            waiting = pending.get(sid, [])
            for i, (request, kind) in enumerate(waiting):
                receipt: dict[str, str] = {"told": "no address known: nobody to tell"}
                if email and self.notifier is not None:
                    try:
                        receipt = dict(self.notifier.notify(
                            email, kind=kind, request_id=request.id, **_what_to_say(
                                request, kind, now)))
                    except Exception as exc:  # noqa: BLE001 - retried like any job
                        error = as_delivery_error(exc)
                        results[sid] = Outcome(sid, error=error)
                        if not _our_relay(error):
                            untold[sid] = ([(r.id, k) for r, k in waiting[i:]],
                                           _why_not_told(error))
                        break
                told.append((request.id, kind, receipt))
            results.setdefault(sid, Outcome(sid, note="told" if waiting else "nothing to tell"))

        def after(conn: Connection, now: datetime, statuses: Mapping[str, str]) -> None:
            for request_id, kind, receipt in told:
                # Kept with this job's outcome, so that a notice job planned before the
                # applier saw the step below finds the person told already.
                conn.execute(insert_for(conn, request_notices).values(
                    request_id=request_id, kind=kind, sent_at=now).on_conflict_do_nothing())
                _store_step(conn, self.keyring, now, _told_step(now, request_id, kind, receipt))
            # A notice given up (refused for good, or out of retries) still ends its request:
            # the person could not be told, and why. A transient failure is tried again.
            for sid, (requests_untold, why) in untold.items():
                if statuses.get(sid) != outbox.DEAD:
                    continue
                for request_id, kind in requests_untold:
                    if kind == EXTENSION:  # recorded as given up; the request goes on
                        _store_step(conn, self.keyring, now, _told_step(
                            now, request_id, kind, {"told": "could not tell the person",
                                                    **why}))
                        continue
                    _store_step(conn, self.keyring, now, RequestAction(
                        EventMeta("privasync", f"not_told:{request_id}", now,
                                  kind="request.step"),
                        request_id, RequestStep.NOT_TOLD, actor="privasync",
                        receipt=tuple(sorted(why.items()))))

        self.deliverer.finish(claim, results, None, report, after)

    # -- shared ----------------------------------------------------------------------
    def _hand_back(self, conn: Connection, now: datetime, request_ids: Sequence[str]) -> None:
        """Requests whose every destination ended go back to the applier to be finished."""
        hand_back(conn, self.keyring, now, [r.id for r in rq.ready_to_finish(conn, request_ids)])

    @staticmethod
    def _entry(conn: Connection, now: datetime, kind: str, request_id: str,
               detail: dict[str, Any]) -> None:
        subject_id = conn.execute(select(requests.c.subject_id)
                                  .where(requests.c.id == request_id)).scalar_one_or_none()
        ledger.append(conn, at=now, kind=kind, subject_id=subject_id,
                      detail={"request": request_id, **detail}, sealed=False)


def hand_back(conn: Connection, keyring: Keyring, now: datetime,
              request_ids: Sequence[str]) -> None:
    """Ask the applier, through the inbox, to finish these requests (tell the person,
    shred, complete); finishing one already finished changes nothing."""
    for request_id in request_ids:
        _store_step(conn, keyring, now, RequestAction(
            EventMeta("privasync", f"finish:{request_id}:{uuid.uuid4()}", now,
                      kind="request.step"),
            request_id, RequestStep.FINISH, actor="privasync"))


def _our_relay(error: DeliveryError) -> bool:
    """A failure of our own sending (the relay refused our login, TLS failed): not the
    person's. The job stays a dead letter for an operator to fix and replay, and the request
    waits; ending it would shred the address that a fixed relay still needs."""
    return isinstance(error, AuthError) or error.error_class in OUR_RELAY


def _why_not_told(error: DeliveryError) -> dict[str, str]:
    """The reason a notice failed, as the ledger keeps it: the error class only (an
    identifier; a relay's reply text may quote the address, so it is never kept)."""
    error_class = re.sub(r"[^a-z0-9_.]", "_", str(error.error_class).lower())[:64]
    given_up = "retries exhausted" if isinstance(error, TransientError) else "refused"
    return {"reason": error_class or "error", "given_up": given_up}


def _to_tell(conn: Connection,
             subject_ids: Sequence[str]) -> dict[str, list[tuple[rq.Request, str]]]:
    """What the person still has to be told, per subject, as (request, kind of notice): an
    extension (Art. 12(3)) first, then an erasure done everywhere, or a rejection (not one
    whose notice was given up already)."""
    untold_extension = (requests.c.extended_months > 0) & requests.c.extension_told_at.is_(
        None) & requests.c.status.in_(list(rq.OPEN))
    untold_end = requests.c.confirmed_at.is_(None) & requests.c.status.in_(
        [rq.IN_PROGRESS, rq.REJECTED]) & or_(requests.c.note.is_(None),
                                             ~requests.c.note.startswith(rq.NOT_TOLD_NOTE))
    ids = conn.execute(select(requests.c.id).where(
        requests.c.subject_id.in_(list(subject_ids)), or_(untold_extension, untold_end))
    ).scalars()
    found: dict[str, list[tuple[rq.Request, str]]] = {}
    untold = sorted(rq.many(conn, ids).values(), key=lambda r: r.received_at)
    sent = {(row.request_id, row.kind) for row in conn.execute(
        select(request_notices.c.request_id, request_notices.c.kind).where(
            request_notices.c.request_id.in_([r.id for r in untold])))}
    for request in untold:
        if request.open and request.extended_months and request.extension_told_at is None \
                and (request.id, EXTENSION) not in sent:
            found.setdefault(request.subject_id, []).append((request, EXTENSION))
        if request.confirmed_at is not None or (request.note or "").startswith(
                rq.NOT_TOLD_NOTE) or {(request.id, "rejection"),
                                      (request.id, str(request.kind))} & sent:
            continue
        done = request.kind == RequestKind.ERASURE and request.status == rq.IN_PROGRESS \
            and all(d.status in rq.FINAL for d in request.destinations)
        if request.status == rq.REJECTED:
            found.setdefault(request.subject_id, []).append((request, "rejection"))
        elif done:
            found.setdefault(request.subject_id, []).append((request, request.kind))
    return found


def _what_to_say(request: rq.Request, kind: str, now: datetime) -> dict[str, Any]:
    """The notice's time and reason: for an extension, the new deadline and why."""
    if kind == EXTENSION:
        return {"at": request.due(now), "reason": request.extension_reason or ""}
    return {"at": now, "reason": request.rejection_reason or ""}


def _told_step(now: datetime, request_id: str, kind: str,
               receipt: Mapping[str, str]) -> RequestAction:
    step = RequestStep.EXTENSION_TOLD if kind == EXTENSION else RequestStep.CONFIRMED
    return RequestAction(EventMeta("privasync", f"{step.value}:{request_id}", now,
                                   kind="request.step"),
                         request_id, step, actor="privasync",
                         receipt=tuple(sorted(receipt.items())))


def _store_step(conn: Connection, keyring: Keyring, now: datetime, ev: RequestAction) -> None:
    body = codec.encode([ev])
    inbox.store(conn, source="privasync", sealed=keyring.seal(body),
                key=keyring.delivery_key(body), received_at=now, events=1)


def _field_row(f: ExportedField) -> list[str | None]:
    """A field as kept in the encrypted export: record, name, value, record type."""
    return [f.record, f.field, f.value, f.kind]
