"""``privasync check`` against the vendor emulators: one line per system, OK or what is
wrong and how to fix it; exit 1 if any fails; never a secret in what it says."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from privasync.cli.main import main
from privasync.demo.stack import Emulators

MAPPINGS = Path(__file__).parents[2] / "mappings"


@pytest.fixture(scope="module")
def emulators() -> Iterator[Emulators]:
    emu = Emulators().start()
    yield emu
    emu.stop()


@pytest.fixture
def env(emulators: Emulators, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulators]:
    for name in list(os.environ):
        if name.upper().startswith("PRIVASYNC_") and not name.upper().startswith(
                "PRIVASYNC_TEST_"):
            monkeypatch.delenv(name)
    emu = emulators
    for name, value in {
        "PRIVASYNC_MAPPINGS_DIR": str(MAPPINGS), "PRIVASYNC_VAR_DIR": str(tmp_path),
        "PRIVASYNC_SECRETS_DIR": str(tmp_path / "none"),
        "PRIVASYNC_DATABASE_URL": f"sqlite:///{tmp_path}/privasync.db",
        "PRIVASYNC_HUBSPOT__BASE_URL": emu.hubspot.url,
        "PRIVASYNC_HUBSPOT__ACCESS_TOKEN": emu.hubspot.access_token,
        "PRIVASYNC_SALESFORCE__INSTANCE_URL": emu.salesforce.url,
        "PRIVASYNC_SALESFORCE__SESSION_ID": emu.salesforce.session_id,
        "PRIVASYNC_MAILCHIMP__BASE_URL": f"{emu.mailchimp.url}/3.0",
        "PRIVASYNC_MAILCHIMP__API_KEY": emu.mailchimp.api_key,
        "PRIVASYNC_MAILCHIMP__LIST_ID": emu.mailchimp.list_id,
        "PRIVASYNC_PARTNER_CONTACT_CENTRE_SECRET": emu.partner.secret,
        "PRIVASYNC_PARTNER_CONTACT_CENTRE_URL": emu.partner.url + emu.partner.path,
    }.items():
        monkeypatch.setenv(name, value)
    scopes = emu.hubspot.scopes
    yield emu
    emu.hubspot.scopes = scopes


def check() -> tuple[Result, dict[str, str]]:
    result = CliRunner().invoke(main, ["check"], catch_exceptions=False)
    lines = {line[5:].split(": ", 1)[0]: line for line in result.output.splitlines()}
    assert "Traceback" not in result.output
    return result, lines


def test_every_system_answers_ok_with_good_credentials(env: Emulators):
    result, lines = check()
    assert result.exit_code == 0, result.output
    assert set(lines) == {"hubspot", "salesforce", "mailchimp", "partner:contact_centre"}
    assert all(line.startswith("OK ") for line in lines.values()), result.output
    for secret in (env.hubspot.access_token, env.salesforce.session_id, env.mailchimp.api_key,
                   env.partner.secret):
        assert secret not in result.output


def test_a_wrong_hubspot_token_fails_that_line_and_says_which_setting(
        env: Emulators, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PRIVASYNC_HUBSPOT__ACCESS_TOKEN", "pat-wrong-token")
    result, lines = check()
    assert result.exit_code == 1
    assert lines["hubspot"].startswith("FAIL") and "PRIVASYNC_HUBSPOT__ACCESS_TOKEN" in \
        lines["hubspot"]
    assert "pat-wrong-token" not in result.output
    assert lines["salesforce"].startswith("OK") and lines["mailchimp"].startswith("OK")


def test_a_hubspot_token_without_a_needed_scope_is_named(env: Emulators):
    env.hubspot.scopes = ("oauth", "crm.objects.contacts.read", "crm.objects.contacts.write")
    result, lines = check()
    assert result.exit_code == 1
    # Each scope a configured feature needs is named (the spec's security per call).
    assert "lacks scope(s) " in lines["hubspot"]
    assert "communication_preferences.statuses.batch.write (for consent writes)" in lines[
        "hubspot"]
    assert "communication_preferences.read (for subscription check)" in lines["hubspot"]
    assert "Private Apps" in lines["hubspot"]


def test_salesforce_session_and_api_version_are_checked(env: Emulators,
                                                        monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PRIVASYNC_SALESFORCE__API_VERSION", "61.0")
    result, lines = check()
    assert result.exit_code == 1
    assert "api version 61.0 is not served by this org (newest: 59.0)" in lines["salesforce"]
    assert "PRIVASYNC_SALESFORCE__API_VERSION" in lines["salesforce"]
    monkeypatch.delenv("PRIVASYNC_SALESFORCE__API_VERSION")
    monkeypatch.setenv("PRIVASYNC_SALESFORCE__SESSION_ID", "00Dexpired!session")
    result, lines = check()
    assert result.exit_code == 1 and lines["salesforce"].startswith("FAIL")
    assert "PRIVASYNC_SALESFORCE__SESSION_ID" in lines["salesforce"]


def test_mailchimp_key_and_list_are_checked(env: Emulators, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PRIVASYNC_MAILCHIMP__LIST_ID", "0000000000")
    result, lines = check()
    assert result.exit_code == 1 and "no audience has this list id" in lines["mailchimp"]
    assert "PRIVASYNC_MAILCHIMP__LIST_ID" in lines["mailchimp"]
    monkeypatch.setenv("PRIVASYNC_MAILCHIMP__LIST_ID", env.mailchimp.list_id)
    monkeypatch.setenv("PRIVASYNC_MAILCHIMP__API_KEY", "wrongkey-us6")
    result, lines = check()
    assert result.exit_code == 1 and "PRIVASYNC_MAILCHIMP__API_KEY" in lines["mailchimp"]


def test_mailchimp_webhooks_configured_need_the_audiences_webhook_to_the_intake(
        env: Emulators, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PRIVASYNC_MAILCHIMP__WEBHOOK_TOKEN", "check-token-0123")
    result, lines = check()
    assert result.exit_code == 1 and "no webhook to privasync's intake" in lines["mailchimp"]
    assert "PRIVASYNC_MAILCHIMP__WEBHOOK_TOKEN" in lines["mailchimp"]
    assert "check-token-0123" not in result.output


def test_a_partner_that_does_not_listen_or_has_no_secret_fails_alone(
        env: Emulators, monkeypatch: pytest.MonkeyPatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    monkeypatch.setenv("PRIVASYNC_PARTNER_CONTACT_CENTRE_URL", f"http://127.0.0.1:{closed}/x")
    result, lines = check()
    assert result.exit_code == 1 and lines["partner:contact_centre"].startswith("FAIL")
    assert "listens at its URL" in lines["partner:contact_centre"]
    monkeypatch.delenv("PRIVASYNC_PARTNER_CONTACT_CENTRE_SECRET")
    result, lines = check()
    assert result.exit_code == 1
    assert "PRIVASYNC_PARTNER_CONTACT_CENTRE_SECRET" in lines["partner:contact_centre"]
    assert lines["hubspot"].startswith("OK")


def test_systems_not_configured_are_listed_without_failing(env: Emulators,
                                                           monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("PRIVASYNC_SALESFORCE__INSTANCE_URL")
    result, lines = check()
    assert result.exit_code == 0, result.output
    assert lines["salesforce"].startswith("-") and "not configured" in lines["salesforce"]
