"""Record sync bookkeeping: which fields really changed, and the jobs' encrypted payloads.

privasync keeps no profile: per field it keeps a keyed hash of the last value
(to tell a change from our own write echoing back) and, only until a job is
delivered, the changed values encrypted under the subject's key.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Connection

from core.crypto import Keyring
from core.db import field_state
from core.model import FieldValue

CUSTOMER_FIELD = "customer_since"
EMAIL_FIELD = "email"


@dataclass(frozen=True)
class FieldState:
    """What privasync remembers of a field's last value: a keyed hash, and when."""

    digest: str
    occurred_at: datetime
    version: int = 1  # the digest key version the hash was made under


def changed_fields(keyring: Keyring, known: dict[str, FieldState],
                   fields: Mapping[str, FieldValue]) -> dict[str, FieldValue]:
    """Fields whose value differs from the last one seen and is not older; ``known`` is
    updated in place with the new hashes."""
    changed: dict[str, FieldValue] = {}
    for name, value in fields.items():
        kind, plain = f"field:{name}", value.value or ""
        row = known.get(name)
        if row is None and value.value is None:
            continue  # never seen and empty: nothing to tell anyone
        if row is not None and (value.collected_at < row.occurred_at
                                or row.digest == keyring.digest_at(kind, plain, row.version)):
            continue
        known[name] = FieldState(keyring.digest(kind, plain), value.collected_at,
                                 keyring.digest_version)
        changed[name] = value
    return changed


def is_customer(fields: Mapping[str, FieldValue]) -> bool | None:
    """A subject with a customer-since date is a customer (contract basis, soft opt-in);
    None when the fields do not say."""
    found = fields.get(CUSTOMER_FIELD)
    return None if found is None else bool(found.value)


def seal(key: bytes, fields: Mapping[str, FieldValue]) -> bytes:
    raw = {n: {"value": v.value, "collected_at": v.collected_at.isoformat()}
           for n, v in fields.items()}
    return Keyring.encrypt(key, json.dumps(raw).encode())


def unseal(key: bytes | None, blob: bytes | None) -> dict[str, FieldValue]:
    """The payload's fields; empty if there is none or the subject's key was shredded."""
    plain = Keyring.decrypt(key, blob) if key is not None and blob is not None else None
    if plain is None:
        return {}
    return {n: FieldValue(v["value"], datetime.fromisoformat(v["collected_at"]))
            for n, v in json.loads(plain).items()}


def newest(payloads: Iterable[Mapping[str, FieldValue]]) -> dict[str, FieldValue]:
    """Fold several payloads into one: per field, the most recently collected value."""
    merged: dict[str, FieldValue] = {}
    for fields in payloads:
        for name, value in fields.items():
            if name not in merged or value.collected_at >= merged[name].collected_at:
                merged[name] = value
    return merged


def last_seen(conn: Connection, subject_ids: Sequence[str]) -> dict[str, dict[str, datetime]]:
    """Per subject and field, when the newest value privasync saw was collected."""
    found: dict[str, dict[str, datetime]] = {}
    if subject_ids:
        for row in conn.execute(select(field_state.c.subject_id, field_state.c.field,
                                       field_state.c.occurred_at)
                                .where(field_state.c.subject_id.in_(list(subject_ids)))):
            found.setdefault(row.subject_id, {})[row.field] = row.occurred_at
    return found


def current(fields: Mapping[str, FieldValue],
            seen: Mapping[str, datetime]) -> dict[str, FieldValue]:
    """The fields whose value is not older than the newest one seen for that field: an
    older one (a dead job retried after newer changes) must not overwrite the newer."""
    return {name: value for name, value in fields.items()
            if name not in seen or value.collected_at >= seen[name]}


def addresses(fields: Iterable[tuple[str, FieldValue]]) -> list[str]:
    """The addresses a record's fields carry (its e-mail field)."""
    return [v.value for n, v in fields if n == EMAIL_FIELD and v.value]
