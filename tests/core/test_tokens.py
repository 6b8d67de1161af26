"""Admin tokens: kept only as keyed hashes, refused when unknown, revoked or expired, and
every creation and revocation in the ledger with who did it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import Engine

from core import ledger, tokens
from core.crypto import Keyring
from core.db import api_tokens, ledger_pending, metadata
from core.errors import BadInput, Conflict, Forbidden, Unauthenticated

KEYRING = Keyring(b"test-secret-key-0123456789abcdef")
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def create(engine: Engine, name: str = "ops", scopes: tuple[str, ...] = ("tokens:read",),
           expires_at: datetime | None = None, actor: str = "cli") -> str:
    with engine.begin() as conn:
        return tokens.create(conn, KEYRING, name, scopes, NOW, expires_at, actor=actor)


def authenticate(engine: Engine, token: str, now: datetime = NOW,
                 keyring: Keyring = KEYRING) -> tokens.Principal:
    with engine.connect() as conn:
        return tokens.authenticate(conn, keyring, token, now)


def everything_stored(engine: Engine) -> str:
    """Every row of every table, as text."""
    with engine.connect() as conn:
        return "\n".join(repr(conn.execute(select(table)).all())
                         for table in metadata.sorted_tables)


def test_a_token_is_shown_once_and_stored_only_as_a_keyed_hash(engine: Engine):
    token = create(engine, scopes=("tokens:write", "tokens:read", "tokens:read"))
    assert token.startswith("ps_") and len(token) >= 40
    assert token not in everything_stored(engine)
    assert token.removeprefix("ps_") not in everything_stored(engine)
    with engine.connect() as conn:
        row = conn.execute(select(api_tokens)).one()
    assert row.digest == KEYRING.digest("token", token) and row.scopes == "tokens:read tokens:write"
    principal = authenticate(engine, token)
    assert principal.name == "ops" and principal.scopes == {"tokens:read", "tokens:write"}
    assert principal.actor == "ops"


def test_the_sqlite_file_holds_no_token_text(tmp_path: Path, sqlite_url: str):
    from core.db import make_engine

    engine = make_engine(sqlite_url)
    token = create(engine)
    engine.dispose()
    files = list(tmp_path.glob("privasync.db*"))
    assert files and all(token.encode() not in f.read_bytes() for f in files)


def test_a_copy_of_the_database_without_the_secret_cannot_check_a_token(engine: Engine):
    token = create(engine)
    with pytest.raises(Unauthenticated):
        authenticate(engine, token, keyring=Keyring(b"another-installation-secret-0000"))


def test_unknown_revoked_and_expired_tokens_are_refused_alike(engine: Engine):
    token = create(engine)
    expiring = create(engine, "short", expires_at=NOW + timedelta(days=1))
    assert authenticate(engine, expiring, NOW + timedelta(hours=23)).name == "short"
    with engine.begin() as conn:
        assert tokens.revoke(conn, "ops", NOW, actor="cli")
    reasons = set()
    for guess, when in ((token, NOW), (expiring, NOW + timedelta(days=1)),
                        ("ps_" + "x" * 43, NOW), ("not-ours", NOW), ("ps_" + "y" * 200, NOW)):
        with pytest.raises(Unauthenticated) as refused:
            authenticate(engine, guess, when)
        reasons.add(str(refused.value))
        assert guess not in str(refused.value)
    assert reasons == {"invalid, expired or revoked token"}


def test_unknown_scopes_and_bad_names_are_refused_with_a_clear_reason(engine: Engine):
    with pytest.raises(BadInput, match="unknown scope 'requests:delete'; known scopes: "
                                       "requests:read"):
        create(engine, scopes=("requests:read", "requests:delete"))
    with pytest.raises(BadInput, match="at least one scope"):
        create(engine, scopes=())
    for name in ("Ops", "-ops", "", "o" * 65, "ops team", "ops/1"):
        with pytest.raises(BadInput, match="a token name is"):
            create(engine, name)
    for reserved in ("cli", "privasync"):  # the ledger's other actors
        with pytest.raises(BadInput, match="reserved"):
            create(engine, reserved)
    with pytest.raises(BadInput, match="future"):
        create(engine, expires_at=NOW)
    assert create(engine, "o" * 64) and create(engine, "0.ci_bot-2")
    with engine.connect() as conn:
        assert [t.name for t in tokens.listing(conn)] == ["0.ci_bot-2", "o" * 64]


def test_a_name_stays_taken_after_its_token_is_revoked(engine: Engine):
    create(engine)
    with engine.begin() as conn:
        tokens.revoke(conn, "ops", NOW, actor="cli")
    with pytest.raises(Conflict, match="a token of that name already exists"):
        create(engine)


def test_revoking_is_idempotent_and_unknown_names_say_so(engine: Engine):
    create(engine)
    later = NOW + timedelta(hours=1)
    with engine.begin() as conn:
        assert tokens.revoke(conn, "ops", NOW, actor="cli") is True
        assert tokens.revoke(conn, "ops", later, actor="cli") is True
        assert tokens.revoke(conn, "ghost", NOW, actor="cli") is False
        listed = tokens.listing(conn)
    assert [(t.name, t.revoked_at, t.status(later)) for t in listed] == [("ops", NOW, "revoked")]


def test_the_listing_tells_state_and_never_the_hash(engine: Engine):
    create(engine, "active", ("jobs:read", "audit:read"))
    create(engine, "expiring", expires_at=NOW + timedelta(days=2))
    with engine.connect() as conn:
        listed = {t.name: t for t in tokens.listing(conn)}
    assert listed["active"].scopes == ("audit:read", "jobs:read")
    assert listed["active"].status(NOW) == "active"
    assert listed["expiring"].status(NOW + timedelta(days=2)) == "expired"
    assert "digest" not in tokens.TokenInfo.__dataclass_fields__


def test_creation_and_revocation_reach_the_ledger_with_the_actor(engine: Engine):
    create(engine, "ci", ("jobs:read",), expires_at=NOW + timedelta(days=30), actor="ops")
    with engine.begin() as conn:
        tokens.revoke(conn, "ci", NOW + timedelta(days=1), actor="cli")
        tokens.revoke(conn, "ci", NOW + timedelta(days=2), actor="cli")
        pending = conn.execute(select(ledger_pending).order_by(ledger_pending.c.id)).all()
        chained = ledger.chain(conn)
        report = ledger.verify(conn)
    assert [(r.kind, r.subject_id) for r in pending] == [("token.created", None),
                                                         ("token.revoked", None)]
    details = [json.loads(r.detail) for r in pending]
    expiry = (NOW + timedelta(days=30)).isoformat()
    assert details == [
        {"name": "ci", "scopes": ["jobs:read"], "expires_at": expiry, "actor": "ops"},
        {"name": "ci", "scopes": ["jobs:read"], "expires_at": expiry, "actor": "cli"}]
    assert chained == 2 and report.ok


def test_last_use_is_written_at_most_once_a_minute(engine: Engine):
    token = create(engine)
    assert authenticate(engine, token).touch_due(NOW)
    with engine.begin() as conn:
        assert tokens.touch(conn, "ops", NOW)
        assert not tokens.touch(conn, "ops", NOW + timedelta(seconds=59))
    principal = authenticate(engine, token, NOW + timedelta(seconds=30))
    assert principal.last_used_at == NOW
    assert not principal.touch_due(NOW + timedelta(seconds=30))
    assert principal.touch_due(NOW + timedelta(seconds=60))
    with engine.begin() as conn:
        assert tokens.touch(conn, "ops", NOW + timedelta(seconds=60))
        assert conn.execute(text("SELECT last_used_at FROM api_tokens")).scalar_one() is not None


def test_a_principal_without_the_scope_is_forbidden_naming_it():
    principal = tokens.Principal("ops", frozenset({"jobs:read"}))
    principal.require("jobs:read")
    with pytest.raises(Forbidden, match="requires the scope jobs:write") as refused:
        principal.require("jobs:write")
    assert refused.value.scope == "jobs:write"
