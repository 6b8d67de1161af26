"""The request rules' decisions, stored: the SQL behind core.dsr.

``write`` stores a batch's request decisions (core.subject_requests maps the requests' own
state to their columns; this adds the suppression list, the cancelled jobs, the kept
acknowledgements and free texts, the reviewed exports); ``shred`` is the
crypto-shredding that ends an erasure, ``shred_subjects`` the part a restore replays
(core.restore). ``returning_done`` finds the people who came back after an erasure and
are done with. Nothing here decides: the rules are in core.dsr.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, literal, or_, select, update
from sqlalchemy.engine import Connection

from core import ackproofs, dsr, erasures, freetext, outbox, review
from core import subject_requests as rq
from core.crypto import SYSTEM_REF
from core.db import (
    AwareDateTime,
    consents,
    field_state,
    identifiers,
    insert_for,
    jobs,
    request_exports,
    requests,
    subject_keys,
    subjects,
    suppression,
    system_refs,
)


def write(plan: dsr.Batch, conn: Connection) -> None:
    """Store the plan's request decisions in the caller's transaction (after subjects and
    identifiers, before jobs)."""
    now, decided = plan.now, plan.requests
    decided.changes.write(conn, now)
    if decided.unsuppress:  # first: an erasure asked again after a rejection holds the person
        conn.execute(delete(suppression).where(
            suppression.c.request_id.in_(decided.unsuppress)))
    for subject_id, request_id in decided.suppress:
        _suppress(plan, conn, with_merged(conn, [subject_id]), request_id)
    for subject_id, kinds in decided.cancel:
        _cancel(conn, [subject_id], kinds, now, "request rejected")
    ackproofs.write(conn, decided.ack_proofs)
    freetext.write(conn, decided.ledger_texts)
    review.write(conn, decided.reviews, plan.loaded.keys)


def _suppress(plan: dsr.Batch, conn: Connection, ids: list[str], request_id: str) -> None:
    """Keyed hashes of every address and every vendor record id these subjects have onto
    the suppression list (an entry there already stays as it is)."""
    conn.execute(insert_for(conn, suppression).from_select(
        ["digest", "kind", "request_id", "created_at", "key_version"],
        select(identifiers.c.digest, identifiers.c.kind, literal(request_id),
               literal(plan.now, AwareDateTime()), identifiers.c.key_version)
        .where(identifiers.c.subject_id.in_(ids)))
        .on_conflict_do_nothing())
    refs = conn.execute(select(system_refs.c.system, system_refs.c.ref)
                        .where(system_refs.c.subject_id.in_(ids))).all()
    rows = {plan.keyring.system_ref_digests(r.system, r.ref)[0]: r for r in refs}
    if rows:
        conn.execute(insert_for(conn, suppression).on_conflict_do_nothing(), [
            {"digest": digest, "kind": SYSTEM_REF, "request_id": request_id,
             "created_at": plan.now, "key_version": plan.keyring.digest_version}
            for digest in sorted(rows)])


def shred(plan: dsr.Batch, conn: Connection) -> None:
    """Crypto-shredding: the key goes, and with it every readable copy (ledger details,
    evidence, queued values, the ledger's free texts, backups taken from now on);
    identifiers, refs, consent and field hashes go too. Subjects merged into the erased one
    go with it. An erasure's shred first puts what was learned of the person meanwhile on
    the suppression list too, and queues the erasure log's entry (core.erasures). Runs last
    in the transaction."""
    for subject_id, request_id in plan.requests.shreds:
        ids = with_merged(conn, [subject_id])
        if request_id is not None:
            _suppress(plan, conn, ids, request_id)
            request = plan.loaded.requests.get(request_id)
            # The erasure log's entry, queued before the rows it hashes go.
            erasures.record(conn, plan.keyring, request_id, ids,
                            [d.name for d in request.destinations] if request else [],
                            plan.now)
        shred_subjects(conn, ids, plan.now, "subject erased")


def shred_subjects(conn: Connection, ids: list[str], now: datetime, why: str) -> None:
    """Destroy what privasync holds about these subjects: the key, identifiers, refs,
    consent and field hashes, their open jobs (dead letters too), gathered exports and
    kept acknowledgement bodies, the ledger's free texts about them (their requests' copies
    read ``rq.ERASED_TEXT``). Also the path ``restore-check`` takes (core.restore)."""
    for table in (subject_keys, identifiers, consents, field_state, system_refs):
        conn.execute(delete(table).where(table.c.subject_id.in_(ids)))
    _cancel(conn, ids, None, now, why)
    conn.execute(update(subjects).where(subjects.c.id.in_(ids)).values(erased_at=now))
    conn.execute(delete(request_exports).where(request_exports.c.request_id.in_(
        select(requests.c.id).where(requests.c.subject_id.in_(ids)))))
    ackproofs.shred(conn, ids)
    freetext.shred(conn, ids)
    rq.forget_texts(conn, ids)


def with_merged(conn: Connection, subject_ids: list[str]) -> list[str]:
    """These subjects and every subject merged into them, transitively."""
    ids, frontier = list(subject_ids), list(subject_ids)
    while frontier:
        frontier = [s for s in conn.execute(select(subjects.c.id).where(
            subjects.c.merged_into.in_(frontier))).scalars() if s not in ids]
        ids += frontier
    return ids


def _cancel(conn: Connection, subject_ids: list[str], kinds: tuple[str, ...] | None,
            now: datetime, why: str) -> None:
    # Dead letters go too: nothing may replay them (or keep their values) afterwards.
    where = [jobs.c.subject_id.in_(subject_ids), jobs.c.status.in_([outbox.PENDING,
                                                                    outbox.DEAD])]
    if kinds is not None:
        where.append(jobs.c.kind.in_(kinds))
    conn.execute(update(jobs).where(*where).values(
        status=outbox.SUPERSEDED, payload=None, note=why, done_at=now, updated_at=now))


def returning_done(conn: Connection, quiet_since: datetime,
                   limit: int = 100) -> list[tuple[str, str]]:
    """(subject, earlier erasure) of people who came back after an erasure and have nothing
    left to do here: no open request, no job waiting or dead, no access answer still kept,
    and nothing of theirs started or ended after ``quiet_since`` (an echo of our own write
    must find them). Their subjects are shredded again (``shred_returning``)."""
    candidates = {r.id: r.returned_after for r in conn.execute(
        select(subjects.c.id, subjects.c.returned_after).where(
            subjects.c.returned_after.is_not(None), subjects.c.erased_at.is_(None),
            subjects.c.merged_into.is_(None), subjects.c.created_at <= quiet_since)
        .order_by(subjects.c.created_at).limit(limit))}
    if not candidates:
        return []
    ids = sorted(candidates)
    busy = set(conn.execute(select(requests.c.subject_id).where(
        requests.c.subject_id.in_(ids), requests.c.status.in_(rq.OPEN))).scalars())
    busy |= set(conn.execute(select(jobs.c.subject_id).where(
        jobs.c.subject_id.in_(ids),
        or_(jobs.c.status.in_((outbox.PENDING, outbox.RUNNING, outbox.DEAD)),
            jobs.c.updated_at > quiet_since))).scalars())
    busy |= set(conn.execute(select(requests.c.subject_id).where(
        requests.c.subject_id.in_(ids), requests.c.completed_at > quiet_since)).scalars())
    busy |= set(conn.execute(select(requests.c.subject_id).join(
        request_exports, request_exports.c.request_id == requests.c.id).where(
        requests.c.subject_id.in_(ids))).scalars())
    return [(sid, candidates[sid]) for sid in ids if sid not in busy]
