"""Settings from the environment, .env and a secrets directory; ``config show`` says where
each came from and never prints a secret; a misspelt ``PRIVASYNC_`` name stops every
command, naming the closest setting."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from privasync.app.environment import LayeredEnviron
from privasync.cli.main import main

MAPPINGS = Path(__file__).parents[2] / "mappings"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.upper().startswith("PRIVASYNC_") and not name.upper().startswith(
                "PRIVASYNC_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # .env is read from the working directory
    monkeypatch.setenv("PRIVASYNC_MAPPINGS_DIR", str(MAPPINGS))
    monkeypatch.setenv("PRIVASYNC_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("PRIVASYNC_SECRETS_DIR", str(tmp_path / "secrets"))
    (tmp_path / "secrets").mkdir()
    return tmp_path


def show(*args: str) -> dict[str, dict[str, object]]:
    result = CliRunner().invoke(main, ["config", "show", "--format", "json", *args],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return {row["variable"]: row for row in json.loads(result.output)}


def test_config_show_says_where_each_setting_came_from_and_masks_secrets(
        env: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PRIVASYNC_DATABASE_URL", "postgresql+psycopg://ops:pg-pass-1@db/ps")
    monkeypatch.setenv("PRIVASYNC_HUBSPOT__ACCESS_TOKEN", "pat-env-token")
    (env / ".env").write_text("PRIVASYNC_WORKER__THREADS=7\n"
                              "PRIVASYNC_MAILCHIMP__API_KEY=mc-dotenv-key-us6\n")
    (env / "secrets" / "PRIVASYNC_HUBSPOT__CLIENT_SECRET").write_text("hs-file-secret\n")
    (env / "secrets" / "PRIVASYNC_PARTNER_CONTACT_CENTRE_SECRET").write_text("cc-file\n")

    rows = show()

    assert rows["PRIVASYNC_DATABASE_URL"] == {
        "variable": "PRIVASYNC_DATABASE_URL", "value": "postgresql+psycopg://ops:***@db/ps",
        "origin": "env", "secret": False}
    assert rows["PRIVASYNC_HUBSPOT__ACCESS_TOKEN"]["origin"] == "env"
    assert rows["PRIVASYNC_WORKER__THREADS"]["value"] == "7"
    assert rows["PRIVASYNC_WORKER__THREADS"]["origin"] == ".env"
    assert rows["PRIVASYNC_MAILCHIMP__API_KEY"]["origin"] == ".env"
    assert rows["PRIVASYNC_HUBSPOT__CLIENT_SECRET"]["origin"] == "secrets file"
    assert rows["PRIVASYNC_PARTNER_CONTACT_CENTRE_SECRET"]["origin"] == "secrets file"
    assert rows["PRIVASYNC_BROKER_URL"]["origin"] == "default"
    for name in ("PRIVASYNC_HUBSPOT__ACCESS_TOKEN", "PRIVASYNC_MAILCHIMP__API_KEY",
                 "PRIVASYNC_HUBSPOT__CLIENT_SECRET", "PRIVASYNC_PARTNER_CONTACT_CENTRE_SECRET"):
        assert rows[name]["secret"] is True and rows[name]["value"] == "********", name
    table = CliRunner().invoke(main, ["config", "show"], catch_exceptions=False).output
    for secret in ("pg-pass-1", "pat-env-token", "mc-dotenv-key", "hs-file-secret", "cc-file"):
        assert secret not in table and secret not in json.dumps(rows), secret


def test_the_environment_beats_dotenv_which_beats_the_secrets_directory(
        env: Path, monkeypatch: pytest.MonkeyPatch):
    (env / "secrets" / "PRIVASYNC_ORGANISATION").write_text("From File BV")
    (env / "secrets" / "PRIVASYNC_NOTIFY_LANGUAGE").write_text("nl")
    (env / ".env").write_text("PRIVASYNC_ORGANISATION=From Dotenv BV\n")
    assert show()["PRIVASYNC_ORGANISATION"]["value"] == "From Dotenv BV"
    assert show()["PRIVASYNC_NOTIFY_LANGUAGE"]["value"] == "nl"
    monkeypatch.setenv("PRIVASYNC_ORGANISATION", "From Env BV")
    assert show()["PRIVASYNC_ORGANISATION"] == {
        "variable": "PRIVASYNC_ORGANISATION", "value": "From Env BV", "origin": "env",
        "secret": False}


def test_a_partner_secret_can_come_from_the_secrets_directory(env: Path):
    (env / "secrets" / "PRIVASYNC_PARTNER_CONTACT_CENTRE_SECRET").write_text("cc-secret\n")
    assert LayeredEnviron()["PRIVASYNC_PARTNER_CONTACT_CENTRE_SECRET"] == "cc-secret"
    # serve's composition root finds it there: the partner is built, nothing is missing
    result = CliRunner().invoke(main, ["requests", "show", "no-such-request"],
                                catch_exceptions=False)
    assert result.exit_code == 2 and "no such request" in result.output, result.output


@pytest.mark.parametrize(("given", "closest"), [
    ("PRIVASYNC_DATABSE_URL", "PRIVASYNC_DATABASE_URL"),
    ("PRIVASYNC_HUBSPOT_ACCESS_TOKEN", "PRIVASYNC_HUBSPOT__ACCESS_TOKEN"),
    ("PRIVASYNC_PARTNER_CONTACT_CENTER_SECRET", "PRIVASYNC_PARTNER_CONTACT_CENTRE_SECRET"),
])
def test_an_unknown_variable_stops_every_command_and_names_the_closest(
        env: Path, monkeypatch: pytest.MonkeyPatch, given: str, closest: str):
    monkeypatch.setenv(given, "some-value-not-to-print")
    for args in (["status"], ["mappings", "show"], ["config", "show"]):
        result = CliRunner().invoke(main, args, catch_exceptions=False)
        assert result.exit_code == 2, result.output
        assert f"{given} in the environment (did you mean {closest}?)" in result.output
        assert "some-value-not-to-print" not in result.output


def test_unknown_names_in_dotenv_and_the_secrets_directory_are_caught_too(env: Path):
    (env / ".env").write_text("PRIVASYNC_LOG_LEVLE=DEBUG\n")
    result = CliRunner().invoke(main, ["status"], catch_exceptions=False)
    assert result.exit_code == 2
    assert "PRIVASYNC_LOG_LEVLE in the .env (did you mean PRIVASYNC_LOG_LEVEL?)" in result.output
    (env / ".env").unlink()
    (env / "secrets" / "PRIVASYNC_SMTP__PASSWROD").write_text("x")
    result = CliRunner().invoke(main, ["status"], catch_exceptions=False)
    assert result.exit_code == 2 and "PRIVASYNC_SMTP__PASSWORD" in result.output


def test_partner_variables_and_the_test_suites_own_are_not_unknown(
        env: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PRIVASYNC_PARTNER_CONTACT_CENTRE_URL", "http://127.0.0.1:9/x")
    monkeypatch.setenv("PRIVASYNC_TEST_SOMETHING", "1")
    monkeypatch.setenv("PRIVASYNC_BENCH_SOMETHING", "1")
    result = CliRunner().invoke(main, ["mappings", "show"], catch_exceptions=False)
    assert result.exit_code == 0, result.output


def test_version(env: Path):
    from importlib.metadata import version

    result = CliRunner().invoke(main, ["--version"], catch_exceptions=False)
    assert result.exit_code == 0 and result.output == f"privasync {version('privasync')}\n"


def test_keyed_settings_are_known_and_shown_per_key(env: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PRIVASYNC_RETRY__HUBSPOT__MAX_ATTEMPTS", "3")
    rows = show()
    assert rows["PRIVASYNC_RETRY__HUBSPOT__MAX_ATTEMPTS"]["value"] == "3"
    assert rows["PRIVASYNC_RETRY__HUBSPOT__MAX_ATTEMPTS"]["origin"] == "env"
