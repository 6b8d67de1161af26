"""Record sync bookkeeping: which fields really changed, and the jobs' encrypted payloads.

privasync keeps no profile: per field it keeps a keyed hash of the last value
(to tell a change from our own write echoing back) and, only until a job is
delivered, the changed values encrypted under the subject's key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from core.crypto import Keyring
from core.db import field_state, jobs, subjects
from core.keys import subject_key
from core.model import FieldValue

CUSTOMER_FIELD = "customer_since"
EMAIL_FIELD = "email"


def changed_fields(conn: Connection, keyring: Keyring, subject_id: str,
                   fields: Mapping[str, FieldValue]) -> dict[str, FieldValue]:
    """Fields whose value differs from the last one seen and is not older; records them."""
    known = {r.field: r for r in conn.execute(select(field_state).where(
        field_state.c.subject_id == subject_id, field_state.c.field.in_(list(fields))))}
    changed: dict[str, FieldValue] = {}
    for name, value in fields.items():
        digest = keyring.digest(f"field:{name}", value.value or "")
        row = known.get(name)
        if row is None and value.value is None:
            continue  # never seen and empty: nothing to tell anyone
        if row is not None and (row.digest == digest or value.collected_at < row.occurred_at):
            continue
        values = {"digest": digest, "occurred_at": value.collected_at}
        if row is None:
            conn.execute(insert(field_state).values(subject_id=subject_id, field=name, **values))
        else:
            conn.execute(update(field_state).where(field_state.c.subject_id == subject_id,
                                                   field_state.c.field == name).values(**values))
        changed[name] = value
    return changed


def note_customer(conn: Connection, subject_id: str, fields: Mapping[str, FieldValue]) -> None:
    """A subject with a customer-since date is a customer (contract basis, soft opt-in)."""
    if CUSTOMER_FIELD in fields:
        conn.execute(update(subjects).where(subjects.c.id == subject_id).values(
            is_customer=bool(fields[CUSTOMER_FIELD].value)))


def seal(conn: Connection, subject_id: str, fields: Mapping[str, FieldValue]) -> bytes | None:
    key = subject_key(conn, subject_id)
    if key is None:
        return None
    raw = {n: {"value": v.value, "collected_at": v.collected_at.isoformat()}
           for n, v in fields.items()}
    return Keyring.encrypt(key, json.dumps(raw).encode())


def unseal(conn: Connection, subject_id: str, blob: bytes | None) -> dict[str, FieldValue]:
    """The payload's fields; empty if there is none or the subject's key was shredded."""
    key = subject_key(conn, subject_id)
    plain = Keyring.decrypt(key, blob) if key is not None and blob is not None else None
    if plain is None:
        return {}
    return {n: FieldValue(v["value"], datetime.fromisoformat(v["collected_at"]))
            for n, v in json.loads(plain).items()}


def merge_into_pending(conn: Connection, job_id: int, subject_id: str,
                       fields: Mapping[str, FieldValue]) -> None:
    """Fold newer field values into a job that has not run yet (newest value wins)."""
    blob = conn.execute(select(jobs.c.payload).where(jobs.c.id == job_id)).scalar_one()
    merged = unseal(conn, subject_id, blob)
    for name, value in fields.items():
        if name not in merged or value.collected_at >= merged[name].collected_at:
            merged[name] = value
    conn.execute(update(jobs).where(jobs.c.id == job_id).values(
        payload=seal(conn, subject_id, merged)))
