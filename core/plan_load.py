"""What a batch reads before it is decided (core.plan): the slice of state its events
touch, in a handful of queries.

``load`` returns a ``Loaded``: seen event ids, the subjects behind refs and addresses
(merges followed), their keys, consent and field hashes, the suppression list's entries
for every digest the batch names, and the requests its request events name. The rules
in core.plan and core.dsr decide against it in memory; nothing here decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from core import keys
from core import subject_requests as rq
from core.crypto import Keyring
from core.db import (
    consents,
    events,
    field_state,
    identifiers,
    requests,
    subject_keys,
    subjects,
    suppression,
    system_refs,
)
from core.model import (
    CanonicalEvent,
    Channel,
    ConsentState,
    ConsentStatus,
    IdentifierChanged,
    RecordChanged,
    RequestAcknowledged,
    RequestAction,
    RequestReceived,
    SubjectHint,
    SubjectsMerged,
    SystemRef,
)
from core.records import EMAIL_FIELD, FieldState

Key = tuple[str, Channel]
_CHUNK = 500  # values per IN (...) list, well inside every driver's parameter limit


def _chunks(items: Sequence[object]) -> Iterable[list[object]]:
    for start in range(0, len(items), _CHUNK):
        yield list(items[start:start + _CHUNK])


def _grouped(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    grouped: dict[str, set[str]] = {}
    for first, second in pairs:
        grouped.setdefault(first, set()).add(second)
    return [(k, sorted(v)) for k, v in sorted(grouped.items())]


def hints(ev: CanonicalEvent) -> list[SubjectHint]:
    if isinstance(ev, SubjectsMerged):
        return [ev.primary]
    if isinstance(ev, RequestAction | RequestAcknowledged):
        return []
    return [ev.subject]


def emails_of(ev: CanonicalEvent) -> list[str]:
    """Every address an event names: its subject's, a new one, a record's e-mail field."""
    found = [h.email for h in hints(ev) if h.email]
    if isinstance(ev, IdentifierChanged):
        found.append(ev.new_email)
    if isinstance(ev, RecordChanged | RequestReceived):
        found += [v.value for n, v in ev.fields if n == EMAIL_FIELD and v.value]
    return found


def refs_of(ev: CanonicalEvent) -> list[SystemRef]:
    found = [h.ref for h in hints(ev) if h.ref is not None]
    if isinstance(ev, SubjectsMerged):
        found += list(ev.merged)
    if isinstance(ev, IdentifierChanged) and ev.new_ref is not None:
        found.append(ev.new_ref)
    return found


@dataclass
class Loaded:
    """The state a batch touches, as read before the write transaction."""

    seen: set[tuple[str, str]] = field(default_factory=set)
    refs: dict[SystemRef, str] = field(default_factory=dict)
    stored_refs: set[SystemRef] = field(default_factory=set)
    emails: dict[str, str] = field(default_factory=dict)
    keys: dict[str, bytes | None] = field(default_factory=dict)
    consents: dict[str, dict[Key, ConsentState]] = field(default_factory=dict)
    fields: dict[str, dict[str, FieldState]] = field(default_factory=dict)
    erased: set[str] = field(default_factory=set)
    suppressed: dict[str, tuple[str, str]] = field(default_factory=dict)  # digest: request, subj
    requests: dict[str, rq.Request] = field(default_factory=dict)
    open_erasure: dict[str, str] = field(default_factory=dict)  # subject: its open erasure
    # (request, destination) pairs an acknowledgement names whose erasure or export job
    # has gone out (claimed at least once) since the request was received.
    sent: set[tuple[str, str]] = field(default_factory=set)
    # (request, destination) pairs a review names whose gathered answer is still kept.
    kept_exports: set[tuple[str, str]] = field(default_factory=set)


def _follow(conn: Connection, found: dict[str, str | None]) -> dict[str, str]:
    """Each subject id -> the live subject it stands for (merges followed)."""
    live = {sid: sid for sid, merged in found.items() if merged is None}
    todo = {sid: merged for sid, merged in found.items() if merged is not None}
    for _ in range(16):
        if not todo:
            break
        rows = {r.id: r.merged_into for r in conn.execute(
            select(subjects.c.id, subjects.c.merged_into)
            .where(subjects.c.id.in_(set(todo.values()))))}
        for sid, target in list(todo.items()):
            if rows.get(target) is None:
                live[sid] = target
                del todo[sid]
            else:
                todo[sid] = rows[target]
    return live | {sid: target for sid, target in todo.items() if target is not None}


def load(conn: Connection, keyring: Keyring, batch: Sequence[CanonicalEvent]) -> Loaded:
    """Read what ``batch`` touches: seen event ids, refs, addresses, keys, consent, fields."""
    got = Loaded()
    # Grouped by the key's first column: a plain IN list uses the index and plans fast,
    # where a list of row values costs the planner an OR per pair.
    for source, ids in _grouped((e.meta.source, e.meta.source_event_id) for e in batch):
        for chunk in _chunks(ids):
            got.seen |= {(source, i) for i in conn.execute(select(events.c.source_event_id)
                                                           .where(events.c.source == source,
                                                                  events.c.source_event_id
                                                                  .in_(chunk))).scalars()}
    ref_rows: list[Any] = []
    for system, refs in _grouped((r.system, r.ref) for e in batch for r in refs_of(e)):
        for chunk in _chunks(refs):
            ref_rows += conn.execute(
                select(system_refs.c.system, system_refs.c.ref, system_refs.c.subject_id,
                       subjects.c.merged_into, subjects.c.erased_at)
                .join(subjects, subjects.c.id == system_refs.c.subject_id)
                .where(system_refs.c.system == system, system_refs.c.ref.in_(chunk))).all()
    digests = sorted({d for e in batch for a in emails_of(e) for d in keyring.email_digests(a)})
    id_rows = load_emails(conn, digests)
    ref_digests = sorted({d for e in batch for r in refs_of(e)
                          for d in keyring.system_ref_digests(r.system, r.ref)})
    live = _follow(conn, {r.subject_id: r.merged_into for r in (*ref_rows, *id_rows)})
    for r in ref_rows:
        ref = SystemRef(r.system, r.ref)
        got.stored_refs.add(ref)
        got.refs[ref] = live[r.subject_id]
    got.emails = {r.digest: live[r.subject_id] for r in id_rows}
    got.erased = {live[r.subject_id] for r in ref_rows if r.erased_at is not None}
    for chunk in _chunks([*digests, *ref_digests]):
        got.suppressed |= {r.digest: (r.request_id, r.subject_id) for r in conn.execute(
            select(suppression.c.digest, suppression.c.request_id, requests.c.subject_id)
            .join(requests, requests.c.id == suppression.c.request_id)
            .where(suppression.c.digest.in_(chunk)))}
    load_subjects(conn, keyring, got, set(live.values()),
                  fields=any(isinstance(e, RecordChanged | RequestReceived) for e in batch))
    # A received request's id too: an id already taken (a partner reusing one) opens nothing.
    named = [e.request_id for e in batch
             if isinstance(e, RequestAction | RequestAcknowledged | RequestReceived)]
    got.requests = rq.many(conn, named)
    acked = [(r, e.destination) for e in batch if isinstance(e, RequestAcknowledged)
             and (r := got.requests.get(e.request_id)) is not None]
    got.sent = rq.sent(conn, acked)
    got.kept_exports = rq.kept_exports(conn, [e.request_id for e in batch if isinstance(
        e, RequestAction) and e.records])
    # An acknowledgement's signed delivery, and any request's free text (a reason, an ack's
    # detail), is sealed under its request's subject's key.
    load_subjects(conn, keyring, got, {r.subject_id for r in got.requests.values()},
                  fields=False)
    got.open_erasure = rq.open_for(conn, sorted(set(live.values())), "erasure")
    return got


def load_emails(conn: Connection, digests: Sequence[str]) -> list[Any]:
    """Owners of these e-mail digests, with where they were merged into."""
    rows: list[Any] = []
    for chunk in _chunks(digests):
        rows += conn.execute(
            select(identifiers.c.digest, identifiers.c.subject_id, subjects.c.merged_into)
            .join(subjects, subjects.c.id == identifiers.c.subject_id)
            .where(identifiers.c.kind == "email", identifiers.c.digest.in_(chunk))).all()
    return rows


def load_subjects(conn: Connection, keyring: Keyring, got: Loaded, ids: set[str], *,
                  fields: bool) -> None:
    """Keys, consent and (for record changes) field hashes of subjects not loaded yet."""
    todo = sorted(ids - set(got.keys))
    for sid in todo:
        got.keys[sid] = None
        got.consents[sid] = {}
        got.fields[sid] = {}
    for chunk in _chunks(todo):
        got.keys.update(keys.unwrap_rows(keyring, conn.execute(
            select(subject_keys).where(subject_keys.c.subject_id.in_(chunk))).all()))
        for r in conn.execute(select(consents.c.subject_id, consents.c.purpose,
                                     consents.c.channel, consents.c.status,
                                     consents.c.occurred_at, consents.c.source)
                              .where(consents.c.subject_id.in_(chunk))):
            channel = Channel(r.channel)
            got.consents[r.subject_id][(r.purpose, channel)] = ConsentState(
                r.purpose, channel, ConsentStatus(r.status), r.occurred_at, r.source)
        if fields:
            for r in conn.execute(select(field_state).where(field_state.c.subject_id.in_(chunk))):
                got.fields[r.subject_id][r.field] = FieldState(r.digest, r.occurred_at,
                                                               r.key_version)
