"""``/api/v1/tokens``: list, create and revoke admin tokens over HTTP.

The ledger names the calling token as the actor. A token can grant only scopes it
holds itself, so ``tokens:write`` cannot be used to mint a stronger token.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from core import tokens
from core.db import reader
from core.errors import Forbidden, NotFound
from core.tokens import Scope, Status
from privasync.app.views import Records
from privasync.web.admin.openapi import Call, Operation


class CreateToken(BaseModel):
    """A new token: its name, what it may do, and for how long."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(pattern=tokens.NAME_PATTERN, description=(
        "1-64 characters of a-z, 0-9, `_`, `.`, `-`, starting with a letter or digit; "
        "not `cli` or `privasync`; names stay taken after revocation."))
    scopes: list[Scope] = Field(min_length=1, description="At least one; only scopes the "
                                "calling token holds.")
    expires_in_days: int | None = Field(default=None, ge=1, le=3650,
                                        description="Omit for a token that does not expire.")


class CreatedToken(BaseModel):
    """The token, shown this once: only its keyed hash is kept."""

    name: str
    token: str = Field(description="`ps_...`: send as `Authorization: Bearer <token>`.")
    scopes: list[Scope]
    expires_at: datetime | None


class TokenView(BaseModel):
    """A token as listed: never the token nor its hash."""

    name: str
    scopes: list[Scope]
    status: Status
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None = Field(description="Updated at most once a minute.")


class TokenList(BaseModel):
    tokens: list[TokenView]


def list_tokens(call: Call[Records]) -> TokenList:
    with reader(call.uses.engine).connect() as conn:
        found = tokens.listing(conn)
    return TokenList(tokens=[TokenView(
        name=t.name, scopes=list(t.scopes), status=t.status(call.now),
        created_at=t.created_at, expires_at=t.expires_at, revoked_at=t.revoked_at,
        last_used_at=t.last_used_at) for t in found])


def create_token(call: Call[Records]) -> CreatedToken:
    body = call.body(CreateToken)
    beyond = sorted(set(body.scopes) - call.principal.scopes)
    if beyond:
        raise Forbidden(f"a token can grant only scopes it holds; this one lacks {beyond[0]}",
                        scope=beyond[0])
    expires_at = (call.now + timedelta(days=body.expires_in_days)
                  if body.expires_in_days is not None else None)
    c = call.uses
    with c.engine.begin() as conn:
        token = tokens.create(conn, c.keyring, body.name, body.scopes, call.now, expires_at,
                              actor=call.principal.actor)
    return CreatedToken(name=body.name, token=token, scopes=sorted(set(body.scopes)),
                        expires_at=expires_at)


def revoke_token(call: Call[Records]) -> None:
    with call.uses.engine.begin() as conn:
        if not tokens.revoke(conn, call.path["name"], call.now, actor=call.principal.actor):
            raise NotFound("no token of that name")


OPERATIONS = (
    Operation("GET", "/tokens", "List admin tokens", "tokens:read", list_tokens,
              response=TokenList, tag="tokens",
              description="Every token, revoked and expired ones too, by name."),
    Operation("POST", "/tokens", "Create an admin token", "tokens:write", create_token,
              body=CreateToken, response=CreatedToken, status=201, errors=(409,),
              tag="tokens", description="The answer holds the token, shown this once."),
    Operation("DELETE", "/tokens/{name}", "Revoke an admin token", "tokens:write",
              revoke_token, status=204, errors=(404,), tag="tokens",
              description="Takes effect at once; revoking twice is harmless."),
)
