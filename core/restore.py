"""After a database restore: erase again everyone the erasure log says was erased.

A backup taken before an erasure holds the person as they were: their wrapped key,
identifiers, refs, consent, open jobs, and perhaps no suppression and an erasure
request still in progress. ``replay`` takes each logged erasure (core.erasures) and,
where the restored database holds any of it again, shreds it by the same path as the
first time (core.dsr_store.shred_subjects), adds the suppression back, settles the request
as completed, and records ``subject.re_erased`` in the ledger. A person is found by
the subject ids logged (and subjects merged into them), by the keyed hashes of their
identifiers and by those of their vendor record ids.

Vendors are not restored with the database, so they still hold nothing; but if
processes ran on the restored database before the check, jobs may have pushed to them
since: each replayed erasure reports, per destination, the jobs delivered after the
logged erasure, for the operator to erase there again (the person's address is gone
by then, so privasync cannot address them itself).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, literal, or_, select, update
from sqlalchemy.engine import Connection, Engine

from core import dsr_store, keys, ledger, outbox
from core import subject_requests as rq
from core.crypto import SYSTEM_REF, Keyring
from core.db import (
    AwareDateTime,
    identifiers,
    insert_for,
    jobs,
    requests,
    subject_keys,
    subjects,
    suppression,
    system_refs,
)
from core.erasure_record import ErasureRecord
from core.erasures import ref_digest

RE_ERASED = "subject.re_erased"
NOTE = "erased again after a database restore"


@dataclass
class Replayed:
    """What one logged erasure needed after the restore."""

    request_id: str
    subjects: list[str] = field(default_factory=list)  # shredded again
    suppression_added: int = 0
    request: str | None = None  # "completed" (was open) or "recorded" (was missing)
    repushed: dict[str, int] = field(default_factory=dict)  # destination -> jobs done since
    cancelled: int = 0  # open jobs of the person, superseded
    digests_unknown: bool = False  # logged at a digest version this database lacks

    @property
    def needed(self) -> bool:
        return bool(self.subjects or self.suppression_added or self.request)


@dataclass
class RestoreReport:
    checked: int = 0
    replayed: list[Replayed] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """Nothing needed doing: the database already agreed with the log."""
        return not self.replayed


def replay(engine: Engine, keyring: Keyring, entries: Sequence[ErasureRecord],
           now: Callable[[], datetime]) -> RestoreReport:
    """Make the database agree with every logged erasure, one transaction each. Idempotent:
    run again, it finds nothing to do."""
    report = RestoreReport()
    refs: dict[int, dict[tuple[str, str], str]] = {}  # version -> (system, hash) -> subject
    for entry in entries:
        report.checked += 1
        with engine.begin() as conn:
            keys.fence(conn, keyring)
            done = _replay_one(conn, keyring, entry, now(), refs)
        if done.needed:
            report.replayed.append(done)
            refs.clear()  # refs were deleted: hash again for the next entry
    return report


def _replay_one(conn: Connection, keyring: Keyring, entry: ErasureRecord, now: datetime,
                refs: dict[int, dict[tuple[str, str], str]]) -> Replayed:
    done = Replayed(entry.request_id)
    view = keyring.digest_view
    known = entry.digest_version <= view.current
    done.digests_unknown = not known
    found = set(_present(conn, entry.subject_ids))
    if known:
        found |= _by_identifiers(conn, keyring, entry)
        found |= _by_refs(conn, keyring, entry, refs)
    ids = dsr_store.with_merged(conn, sorted(found)) if found else []
    before = _count(conn)
    if ids:
        conn.execute(insert_for(conn, suppression).from_select(
            ["digest", "kind", "request_id", "created_at", "key_version"],
            select(identifiers.c.digest, identifiers.c.kind, literal(entry.request_id),
                   literal(now, AwareDateTime()), identifiers.c.key_version)
            .where(identifiers.c.subject_id.in_(ids))).on_conflict_do_nothing())
    if known and entry.identifiers:
        conn.execute(insert_for(conn, suppression).values([
            {"digest": keyring.rekey(d, entry.digest_version), "kind": kind,
             "request_id": entry.request_id, "created_at": now, "key_version": view.current}
            for kind, d in entry.identifiers]).on_conflict_do_nothing())
    if known and entry.refs:  # the vendor record ids too: a record polled again stays out
        conn.execute(insert_for(conn, suppression).values([
            {"digest": keyring.rekey(d, entry.digest_version), "kind": SYSTEM_REF,
             "request_id": entry.request_id, "created_at": now, "key_version": view.current}
            for d in sorted({d for _, d in entry.refs})]).on_conflict_do_nothing())
    done.suppression_added = _count(conn) - before
    if ids:
        done.subjects = ids
        done.repushed = _repushed(conn, ids, entry.completed_at)
        done.cancelled = int(conn.execute(select(func.count()).select_from(jobs).where(
            jobs.c.subject_id.in_(ids), jobs.c.status.in_([outbox.PENDING, outbox.DEAD])))
            .scalar_one())
        dsr_store.shred_subjects(conn, ids, now, NOTE)
    done.request = _settle(conn, entry, now)
    if done.needed:
        ledger.append(conn, at=now, kind=RE_ERASED,
                      subject_id=entry.subject_ids[0] if entry.subject_ids else None,
                      sealed=False, detail={
                          "request": entry.request_id, "by": "restore-check",
                          "erased_at": entry.completed_at.isoformat(), "subjects": ids,
                          "suppression_added": done.suppression_added,
                          "request_was": done.request or "completed",
                          "jobs_cancelled": done.cancelled, "delivered_since": done.repushed})
    return done


def _present(conn: Connection, subject_ids: Sequence[str]) -> list[str]:
    """Of these subjects, those the database holds anything readable or linkable about."""
    held = or_(subjects.c.erased_at.is_(None),
               subjects.c.id.in_(select(subject_keys.c.subject_id)),
               subjects.c.id.in_(select(identifiers.c.subject_id)),
               subjects.c.id.in_(select(system_refs.c.subject_id)))
    return list(conn.execute(select(subjects.c.id).where(
        subjects.c.id.in_(list(subject_ids)), held)).scalars())


def _by_identifiers(conn: Connection, keyring: Keyring, entry: ErasureRecord) -> set[str]:
    """Subjects holding one of the logged identifiers, at any live digest version."""
    view = keyring.digest_view
    wanted: set[tuple[str, str, int]] = set()
    for kind, d in entry.identifiers:
        for version in range(max(entry.digest_version, view.floor), view.current + 1):
            wanted.add((kind, keyring.rekey(d, entry.digest_version, version), version))
    if not wanted:
        return set()
    rows = conn.execute(select(identifiers.c.subject_id, identifiers.c.kind,
                               identifiers.c.digest, identifiers.c.key_version).where(
        identifiers.c.digest.in_(sorted({w[1] for w in wanted})))).all()
    return {r.subject_id for r in rows if (r.kind, r.digest, r.key_version) in wanted}


def _by_refs(conn: Connection, keyring: Keyring, entry: ErasureRecord,
             refs: dict[int, dict[tuple[str, str], str]]) -> set[str]:
    """Subjects holding one of the logged vendor record ids (hashed at the log's version)."""
    if not entry.refs:
        return set()
    version = entry.digest_version
    if version not in refs:
        refs[version] = {(r.system, ref_digest(keyring, r.system, r.ref, version)): r.subject_id
                         for r in conn.execute(select(system_refs.c.system, system_refs.c.ref,
                                                      system_refs.c.subject_id))}
    table = refs[version]
    return {table[r] for r in entry.refs if r in table}


def _repushed(conn: Connection, ids: list[str], since: datetime) -> dict[str, int]:
    """Per destination, jobs of these subjects delivered after the logged erasure: the
    restored database sent to that system before this check."""
    rows = conn.execute(select(jobs.c.destination, func.count()).where(
        jobs.c.subject_id.in_(ids), jobs.c.status == outbox.DONE, jobs.c.done_at > since)
        .group_by(jobs.c.destination)).all()
    return dict(sorted((str(d), int(n)) for d, n in rows))


def _settle(conn: Connection, entry: ErasureRecord, now: datetime) -> str | None:
    """The request completed, as it was before the restore: completed if the restored
    database has it open, recorded if it has not heard of it (so the suppression names a
    request and a later one about the person points at it)."""
    row = conn.execute(select(requests.c.status).where(requests.c.id == entry.request_id)
                       ).first()
    if row is None:
        conn.execute(requests.insert().values(
            id=entry.request_id, kind="erasure",
            subject_id=entry.subject_ids[0] if entry.subject_ids else "-",
            source="restore-check", actor="restore-check", received_at=entry.completed_at,
            due_at=entry.completed_at, status=rq.COMPLETED, completed_at=entry.completed_at,
            paused_seconds=0, extended_months=0, note=NOTE))
        return "recorded"
    if row.status == rq.COMPLETED:
        return None
    conn.execute(update(requests).where(requests.c.id == entry.request_id).values(
        status=rq.COMPLETED, completed_at=entry.completed_at, paused_since=None, note=NOTE))
    return "completed"


def _count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(suppression)).scalar_one())

