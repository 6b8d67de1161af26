"""Reading and writing a subject's consent state, and the snapshot a destination gets."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from core import directory, keys
from core.crypto import Keyring
from core.db import consents, identifiers, subjects, system_refs
from core.keys import subject_key
from core.minimise import SubjectContext
from core.model import Channel, ConsentState, ConsentStatus, DestinationSubject, Evidence

Key = tuple[str, Channel]


def _state(row: Any, key: bytes | None) -> ConsentState:
    evidence = None
    if row.evidence is not None and key is not None:
        plain = Keyring.decrypt(key, row.evidence)
        evidence = Evidence(**json.loads(plain)) if plain is not None else None
    channel = Channel(row.channel)
    return ConsentState(purpose=row.purpose, channel=channel, status=ConsentStatus(row.status),
                        occurred_at=row.occurred_at, source=row.source, evidence=evidence)


def load(conn: Connection, subject_id: str,
         keyring: Keyring | None) -> dict[Key, ConsentState]:
    """Every (purpose, channel) decision of a subject, evidence decrypted if the key lives
    (without a keyring: without evidence)."""
    key = subject_key(conn, keyring, subject_id) if keyring is not None else None
    rows = conn.execute(select(consents).where(consents.c.subject_id == subject_id))
    return {(r.purpose, Channel(r.channel)): _state(r, key) for r in rows}


def save(conn: Connection, keyring: Keyring, subject_id: str, state: ConsentState,
         exists: bool, now: datetime) -> None:
    key = subject_key(conn, keyring, subject_id)
    blob = None
    if state.evidence is not None and key is not None:
        blob = Keyring.encrypt(key, json.dumps(asdict(state.evidence)).encode())
    values = {"status": state.status.value, "occurred_at": state.occurred_at,
              "source": state.source, "evidence": blob, "updated_at": now}
    if exists:
        conn.execute(update(consents).where(
            consents.c.subject_id == subject_id, consents.c.purpose == state.purpose,
            consents.c.channel == state.channel.value).values(**values))
    else:
        conn.execute(insert(consents).values(subject_id=subject_id, purpose=state.purpose,
                                             channel=state.channel.value, **values))


def context(conn: Connection, subject_id: str) -> SubjectContext:
    """What the minimisation rules need: current consent and whether it is a customer."""
    customer = conn.execute(select(subjects.c.is_customer)
                            .where(subjects.c.id == subject_id)).scalar_one_or_none()
    return SubjectContext(consents=load(conn, subject_id, None), is_customer=bool(customer))


def live_subjects(conn: Connection) -> Iterator[str]:
    """Ids of subjects neither merged away nor erased."""
    yield from conn.execute(select(subjects.c.id).where(
        subjects.c.merged_into.is_(None), subjects.c.erased_at.is_(None))).scalars()


def customers(conn: Connection, subject_ids: Sequence[str]) -> set[str]:
    """Which of these subjects are customers (contract basis, soft opt-in)."""
    return set(conn.execute(select(subjects.c.id).where(
        subjects.c.id.in_(list(subject_ids)), subjects.c.is_customer.is_(True))).scalars())


def keys_of(conn: Connection, keyring: Keyring,
            subject_ids: Sequence[str]) -> dict[str, bytes]:
    """The live keys of these subjects, unwrapped (a shredded one is absent)."""
    return keys.keys_of(conn, keyring, subject_ids)


def snapshots(conn: Connection, keyring: Keyring, subject_ids: Sequence[str], system: str,
              subject_keys: dict[str, bytes] | None = None) -> dict[str, DestinationSubject]:
    """What a destination is told about a batch of subjects, in six queries: their refs
    there, their e-mail (decrypted), their current consent, whether its list holds them
    (and, if not, since when it is known not to)."""
    ids = list(dict.fromkeys(subject_ids))
    opened = keys_of(conn, keyring, ids) if subject_keys is None else subject_keys
    states: dict[str, list[ConsentState]] = {sid: [] for sid in ids}
    for row in conn.execute(select(consents).where(consents.c.subject_id.in_(ids))):
        states[row.subject_id].append(_state(row, opened.get(row.subject_id)))
    emails: dict[str, str] = {}
    for row in conn.execute(select(identifiers.c.subject_id, identifiers.c.ciphertext).where(
            identifiers.c.subject_id.in_(ids), identifiers.c.kind == "email")
            .order_by(identifiers.c.id)):
        key = opened.get(row.subject_id)
        plain = Keyring.decrypt(key, row.ciphertext) if key is not None else None
        if plain is not None:
            emails[row.subject_id] = plain.decode()  # the newest address wins
    refs: dict[str, list[str]] = {sid: [] for sid in ids}
    for row in conn.execute(select(system_refs.c.subject_id, system_refs.c.ref).where(
            system_refs.c.subject_id.in_(ids), system_refs.c.system == system)
            .order_by(system_refs.c.ref)):
        refs[row.subject_id].append(row.ref)
    # The read's start first: a refresh ending between the two statements then leaves an
    # older start with newer entries, which still hold everyone on the list since then.
    read_at = directory.read_at(conn, system)
    on_list = directory.held(conn, keyring, system, ids)
    return {sid: DestinationSubject(
        subject_id=sid, email=emails.get(sid), refs=tuple(refs[sid]),
        consents=tuple(sorted(states[sid], key=lambda s: (s.purpose, s.channel.value))),
        listed=on_list.get(sid, False), unlisted_at=None if sid in on_list else read_at)
        for sid in ids}
