"""Free text about a person in the ledger: sealed under their key, chained as a salted hash.

An admin's reason (extend, reject, not applicable, review) and a partner's acknowledgement
detail are written by people and may describe the person ("her ex-husband asked
for ..."). A chained entry cannot be removed without breaking the chain, so it
must not hold such a text: it holds ``{"hmac_sha256": H}``, where H is the
HMAC-SHA256 of the text's UTF-8 under a salt of 32 random bytes drawn for this
text alone. The text and its salt are kept in ``ledger_texts``, sealed under the
person's key; erasing the person destroys the key and deletes the row. What is
left is H: the entry still says a text was given, nobody can read it, and an
evidence pack made before (which shows text and salt) still proves it was that
text.

Why a random salt, not a plain or a keyed hash: a reason is short and often
guessable ("identity not proven"), so SHA-256(text) would let anyone confirm a
guess after the erasure. A hash keyed with a server secret (the digest key) would
need that secret to check a pack offline, and whoever holds the secret (or a
backup with it) could confirm guesses for ever. A per-text salt that goes with the
person's key makes H unconfirmable once the key is gone (a guess needs the salt,
2^256 candidates), lets anyone check a pack with any HMAC library, and gives two
equal texts different hashes, so entries cannot be linked by their reasons.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection

from core import keys
from core.canonical import canonical
from core.crypto import Keyring
from core.db import ledger_texts

MARK = "hmac_sha256"
SALT_BYTES = 32
# What an entry holds instead when the person has no key (erased already): nothing is kept.
WITHHELD = {"withheld": "the person's key is destroyed: the text was not kept"}


@dataclass(frozen=True)
class Opened:
    """A sealed text read back with the person's key: the text and its salt (hex)."""

    text: str
    salt: str


def commitment(salt: bytes, text: str) -> str:
    """H: the HMAC-SHA256 (hex) of ``text``'s UTF-8 under ``salt``."""
    return hmac.new(salt, text.encode(), hashlib.sha256).hexdigest()


def seal(key: bytes | None, subject_id: str, text: str,
         at: datetime) -> tuple[dict[str, str], dict[str, object] | None]:
    """What a chained detail holds for ``text`` (``{"hmac_sha256": H}``), and the
    ``ledger_texts`` row keeping the text and its salt under ``key``; without a key (the
    person is erased) a value saying so, and no row. Raises ValueError for text that is
    not valid Unicode."""
    if key is None:
        return dict(WITHHELD), None
    salt = secrets.token_bytes(SALT_BYTES)
    digest = commitment(salt, text)
    sealed = Keyring.encrypt(key, canonical({"salt": salt.hex(), "text": text}))
    return {MARK: digest}, {"hash": digest, "subject_id": subject_id, "sealed": sealed,
                            "created_at": at}


def marks(detail: Mapping[str, object]) -> dict[str, str]:
    """The sealed texts a detail refers to: its field name -> H."""
    return {name: str(value[MARK]) for name, value in detail.items()
            if isinstance(value, Mapping) and isinstance(value.get(MARK), str)}


def write(conn: Connection, rows: Sequence[dict[str, object]]) -> None:
    """Keep these in the caller's transaction (the one chaining their entries)."""
    if rows:
        conn.execute(ledger_texts.insert(), list(rows))


def shred(conn: Connection, subject_ids: Sequence[str]) -> None:
    """The erased people's texts go with their key (unreadable already; now gone too)."""
    conn.execute(delete(ledger_texts).where(ledger_texts.c.subject_id.in_(list(subject_ids))))


def opened(conn: Connection, keyring: Keyring, hashes: Iterable[str]) -> dict[str, Opened]:
    """The texts behind these hashes that can still be read (H -> text and salt); a text
    whose person was erased is absent. Raises KeyUnavailable without the KEK."""
    wanted = sorted(set(hashes))
    rows: list[Any] = []
    for start in range(0, len(wanted), 500):
        rows += conn.execute(select(ledger_texts).where(
            ledger_texts.c.hash.in_(wanted[start:start + 500]))).all()
    found = keys.keys_of(conn, keyring, sorted({r.subject_id for r in rows}))
    out: dict[str, Opened] = {}
    for r in rows:
        key = found.get(r.subject_id)
        plain = Keyring.decrypt(key, r.sealed) if key is not None else None
        if plain is None:
            continue
        document = json.loads(plain)
        text, salt = str(document["text"]), str(document["salt"])
        if commitment(bytes.fromhex(salt), text) == r.hash:  # what the chain committed to
            out[r.hash] = Opened(text, salt)
    return out
