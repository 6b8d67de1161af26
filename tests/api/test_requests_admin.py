"""Requests and proof over the admin API and the CLI, on the app alone (nothing applies
what it stores): breach scoping refuses a destination that does not exist."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from api.cli import main
from tests.api.door import Door

MAPPINGS = Path(__file__).parents[2] / "mappings"
WINDOW = {"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"}


@pytest.fixture
def cli_env(tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PRIVASYNC_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("PRIVASYNC_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("PRIVASYNC_MAPPINGS_DIR", str(MAPPINGS))
    monkeypatch.setenv("PRIVASYNC_PARTNER_CONTACT_CENTRE_SECRET", "partner-secret")
    return tmp_path


def _get(door: Door, path: str, *scopes: str, **params: str):  # type: ignore[no-untyped-def]
    token = door.token(*scopes)
    return door.client.get(f"/api/v1{path}", params=params,
                           headers={"Authorization": f"Bearer {token}"})


def test_breach_scope_refuses_a_destination_that_does_not_exist_naming_the_real_ones(
        door: Door):
    answer = _get(door, "/breach-scope", "audit:read", destination="partner:nobody",
                  **WINDOW)
    assert answer.status_code == 422
    problem = answer.json()
    assert problem["fields"][0]["field"] == "destination"
    assert "no such destination" in problem["reason"]
    assert "partner:contact_centre" in problem["reason"] and "mailchimp" in problem["reason"]
    assert "nobody" not in problem["reason"]  # a refusal never quotes what came in


def test_breach_scope_still_answers_for_a_configured_destination(door: Door):
    answer = _get(door, "/breach-scope", "audit:read", destination="partner:contact_centre",
                  **WINDOW)
    assert answer.status_code == 200 and answer.json()["people"] == 0


def test_the_cli_breach_scope_refuses_an_unknown_destination_with_exit_2(cli_env: Path):
    result = CliRunner().invoke(main, ["breach", "scope", "--destination", "salesfroce",
                                       "--from", "2026-01-01", "--to", "2026-02-01"])
    assert result.exit_code == 2, result.output
    assert "no such destination" in result.output
    assert "partner:contact_centre" in result.output
    assert "0 people" not in result.output
