"""``privasync tokens``: create prints the token once, list never shows it, revoke takes
effect; bad input is one line and exit code 2; the ledger names the CLI as actor."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from core import tokens
from core.crypto import Keyring
from core.db import ledger_pending, make_engine
from core.errors import Unauthenticated
from privasync.app.bootstrap import secret_key
from privasync.app.settings import Settings
from privasync.cli.main import main

MAPPINGS = Path(__file__).parents[2] / "mappings"


@pytest.fixture
def env(tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PRIVASYNC_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("PRIVASYNC_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("PRIVASYNC_MAPPINGS_DIR", str(MAPPINGS))
    return sqlite_url


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["tokens", *args])


def authenticate(url: str, token: str) -> tokens.Principal:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return tokens.authenticate(conn, Keyring(secret_key(Settings())), token,
                                       datetime.now(UTC))
    finally:
        engine.dispose()


def test_create_list_and_revoke_round_trip(env: str):
    created = run("create", "ops", "--scope", "tokens:read", "--scope", "jobs:read",
                  "--expires-in-days", "30")
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    assert token.startswith("ps_") and "\n" not in token
    assert "will not be shown again" in created.stderr
    assert authenticate(env, token).scopes == {"tokens:read", "jobs:read"}

    table = run("list")
    assert table.exit_code == 0 and token not in table.output
    assert "ops" in table.output and "active" in table.output
    listed = json.loads(run("list", "--format", "json").output)
    assert [(t["name"], t["scopes"], t["status"]) for t in listed] == [
        ("ops", ["jobs:read", "tokens:read"], "active")]
    assert listed[0]["expires_at"] and "digest" not in listed[0]

    revoked = run("revoke", "ops")
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    with pytest.raises(Unauthenticated):
        authenticate(env, token)
    assert json.loads(run("list", "--format", "json").output)[0]["status"] == "revoked"

    engine = make_engine(env)
    with engine.connect() as conn:
        entries = conn.execute(select(ledger_pending.c.kind, ledger_pending.c.detail)).all()
    engine.dispose()
    assert [(kind, json.loads(detail)["actor"]) for kind, detail in entries] == [
        ("token.created", "cli"), ("token.revoked", "cli")]


@pytest.mark.parametrize(("args", "message"), [
    (("create", "ops", "--scope", "tokens:admin"), "unknown scope 'tokens:admin'"),
    (("create", "ops"), "at least one scope"),
    (("create", "Ops!", "--scope", "jobs:read"), "a token name is"),
    (("revoke", "ghost"), "no token named 'ghost'"),
])
def test_bad_input_is_one_line_and_exit_code_2(env: str, args: tuple[str, ...], message: str):
    result = run(*args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert message in result.output and "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


def test_a_taken_name_is_refused(env: str):
    assert run("create", "ops", "--scope", "jobs:read").exit_code == 0
    again = run("create", "ops", "--scope", "jobs:read")
    assert again.exit_code == 2 and "already exists" in again.output
    assert again.stdout == ""  # no second token printed
