"""Admin API tokens: bearer secrets with scopes, kept only as keyed hashes (Art. 32).

A token is shown once, when it is created. The database holds its HMAC under
the installation secret (``Keyring.token_digest``), so a copy of the
database alone can neither use a token nor check guesses against the hashes.
Creating and revoking are recorded in the ledger with the actor; tokens carry
no personal data, so those entries are not encrypted.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, get_args

from sqlalchemy import or_, select, update
from sqlalchemy.engine import Connection

from core import ledger
from core.crypto import Keyring
from core.db import api_tokens, insert_for
from core.errors import BadInput, Conflict, Forbidden, Unauthenticated

Scope = Literal["requests:read", "requests:write", "jobs:read", "jobs:write", "subjects:read",
                "mappings:read", "audit:read", "tokens:read", "tokens:write"]
SCOPES: tuple[str, ...] = get_args(Scope)
Status = Literal["active", "expired", "revoked"]
NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
PREFIX = "ps_"
MAX_LENGTH = 128  # a longer bearer is not ours: refused before it is hashed
TOUCH_EVERY = timedelta(minutes=1)  # last_used_at moves at most this often
_NAME = re.compile(NAME_PATTERN)
# The ledger's other actors: a token by these names would pass for the CLI or privasync.
RESERVED = frozenset({"cli", "privasync"})
_REFUSED = "invalid, expired or revoked token"  # one reason for all three: no oracle


@dataclass(frozen=True)
class Principal:
    """Who an admin request acts as: a token's name and what it may do."""

    name: str
    scopes: frozenset[str]
    last_used_at: datetime | None = None

    @property
    def actor(self) -> str:
        """How the ledger names this caller: the token's name (never ``cli`` or
        ``privasync``, the other actors, which no token may be called)."""
        return self.name

    def require(self, scope: str) -> None:
        """Raises Forbidden naming the scope when this token lacks it."""
        if scope not in self.scopes:
            raise Forbidden(f"this operation requires the scope {scope}", scope=scope)

    def touch_due(self, now: datetime) -> bool:
        return self.last_used_at is None or now - self.last_used_at >= TOUCH_EVERY


@dataclass(frozen=True)
class TokenInfo:
    """A token as listed: everything but its hash."""

    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    def status(self, now: datetime) -> Status:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


def check_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """The scopes sorted and without repeats. Raises BadInput naming an unknown one."""
    chosen = tuple(sorted(set(scopes)))
    unknown = [s for s in chosen if s not in SCOPES]
    if unknown:
        raise BadInput(f"unknown scope {unknown[0]!r}; known scopes: {', '.join(SCOPES)}")
    if not chosen:
        raise BadInput("a token needs at least one scope")
    return chosen


def create(conn: Connection, keyring: Keyring, name: str, scopes: Iterable[str],
           now: datetime, expires_at: datetime | None = None, *, actor: str) -> str:
    """Store a new token and return its text, which is never shown again.

    Raises BadInput for a bad or reserved name, unknown scope or a past expiry,
    Conflict when the name is taken (revoked names stay taken: the ledger names them).
    """
    if not _NAME.fullmatch(name):
        raise BadInput("a token name is 1-64 characters of a-z, 0-9, '_', '.', '-', "
                       "starting with a letter or digit")
    if name in RESERVED:
        raise BadInput(f"{name!r} is reserved: the ledger uses it for "
                       + ("the CLI" if name == "cli" else "privasync itself"))
    chosen = check_scopes(scopes)
    if expires_at is not None and expires_at <= now:
        raise BadInput("a token's expiry must be in the future")
    token = PREFIX + secrets.token_urlsafe(32)
    added = conn.execute(insert_for(conn, api_tokens).values(
        name=name, digest=keyring.token_digest(token), scopes=" ".join(chosen),
        created_at=now, expires_at=expires_at).on_conflict_do_nothing(index_elements=["name"])
        .returning(api_tokens.c.name)).first()
    if added is None:
        raise Conflict("a token of that name already exists (revoked names stay taken)")
    ledger.append(conn, at=now, kind="token.created", detail={
        "name": name, "scopes": list(chosen), "expires_at": _iso(expires_at), "actor": actor})
    return token


def authenticate(conn: Connection, keyring: Keyring, token: str, now: datetime) -> Principal:
    """The principal a bearer token stands for. Reads only (a reader connection will do).

    The lookup goes by the keyed hash, whose timing tells nothing about a guess to
    whoever lacks the secret; the stored hash is then compared in constant time.
    Raises Unauthenticated for an unknown, revoked or expired token, without saying which.
    """
    if not token.startswith(PREFIX) or len(token) > MAX_LENGTH:
        raise Unauthenticated(_REFUSED)
    digest = keyring.token_digest(token)
    row = conn.execute(select(api_tokens).where(api_tokens.c.digest == digest)).first()
    if row is None or not hmac.compare_digest(row.digest, digest) \
            or row.revoked_at is not None \
            or (row.expires_at is not None and row.expires_at <= now):
        raise Unauthenticated(_REFUSED)
    return Principal(row.name, frozenset(row.scopes.split()), row.last_used_at)


def touch(conn: Connection, name: str, now: datetime) -> bool:
    """Record a use, unless one was recorded less than ``TOUCH_EVERY`` ago (by any
    process): a busy token costs a write a minute, not one per request."""
    moved = conn.execute(update(api_tokens).where(
        api_tokens.c.name == name,
        or_(api_tokens.c.last_used_at.is_(None),
            api_tokens.c.last_used_at <= now - TOUCH_EVERY)).values(last_used_at=now))
    return moved.rowcount == 1


def revoke(conn: Connection, name: str, now: datetime, *, actor: str) -> bool:
    """Revoke the named token; False if there is none. Revoking twice changes nothing
    (the first time stays the one recorded, with its one ledger entry)."""
    moved = conn.execute(update(api_tokens).where(api_tokens.c.name == name,
                                                  api_tokens.c.revoked_at.is_(None))
                         .values(revoked_at=now))
    row = conn.execute(select(api_tokens.c.scopes, api_tokens.c.expires_at)
                       .where(api_tokens.c.name == name)).first()
    if row is None:
        return False
    if moved.rowcount == 1:
        ledger.append(conn, at=now, kind="token.revoked", detail={
            "name": name, "scopes": row.scopes.split(), "expires_at": _iso(row.expires_at),
            "actor": actor})
    return True


def listing(conn: Connection) -> list[TokenInfo]:
    """Every token, revoked and expired ones too, by name; never a hash."""
    rows = conn.execute(select(
        api_tokens.c.name, api_tokens.c.scopes, api_tokens.c.created_at,
        api_tokens.c.expires_at, api_tokens.c.revoked_at, api_tokens.c.last_used_at)
        .order_by(api_tokens.c.name)).all()
    return [TokenInfo(r.name, tuple(r.scopes.split()), r.created_at, r.expires_at,
                      r.revoked_at, r.last_used_at) for r in rows]


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None
