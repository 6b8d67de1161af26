"""Reading and writing a subject's consent state, and the snapshot a destination gets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from core.crypto import Keyring
from core.db import consents, subjects
from core.identity import IdentityMap
from core.keys import subject_key
from core.minimise import SubjectContext
from core.model import Channel, ConsentState, ConsentStatus, DestinationSubject, Evidence

Key = tuple[str, Channel]


def load(conn: Connection, subject_id: str) -> dict[Key, ConsentState]:
    """Every (purpose, channel) decision of a subject, evidence decrypted if the key lives."""
    key = subject_key(conn, subject_id)
    out: dict[Key, ConsentState] = {}
    for row in conn.execute(select(consents).where(consents.c.subject_id == subject_id)):
        evidence = None
        if row.evidence is not None and key is not None:
            plain = Keyring.decrypt(key, row.evidence)
            evidence = Evidence(**json.loads(plain)) if plain is not None else None
        channel = Channel(row.channel)
        out[(row.purpose, channel)] = ConsentState(
            purpose=row.purpose, channel=channel, status=ConsentStatus(row.status),
            occurred_at=row.occurred_at, source=row.source, evidence=evidence)
    return out


def save(conn: Connection, subject_id: str, state: ConsentState, exists: bool,
         now: datetime) -> None:
    key = subject_key(conn, subject_id)
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
    return SubjectContext(consents=load(conn, subject_id), is_customer=bool(customer))


def live_subjects(conn: Connection) -> Iterator[str]:
    """Ids of subjects neither merged away nor erased."""
    yield from conn.execute(select(subjects.c.id).where(
        subjects.c.merged_into.is_(None), subjects.c.erased_at.is_(None))).scalars()


def snapshot(conn: Connection, identity: IdentityMap, subject_id: str, system: str,
             event_id: str = "") -> DestinationSubject:
    """What a destination is told: its refs, the e-mail (decrypted) and current consent."""
    states = load(conn, subject_id)
    return DestinationSubject(
        subject_id=subject_id, email=identity.email(conn, subject_id),
        refs=identity.refs(conn, subject_id, system),
        consents=tuple(sorted(states.values(), key=lambda s: (s.purpose, s.channel.value))),
        event_id=event_id)
