"""The CLI: exit codes and messages a person can act on."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from core.db import make_engine
from privasync.cli.main import main

MAPPINGS = Path(__file__).parents[2] / "mappings"


@pytest.fixture
def env(tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PRIVASYNC_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("PRIVASYNC_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("PRIVASYNC_MAPPINGS_DIR", str(MAPPINGS))
    return tmp_path


def test_mappings_validate_accepts_the_shipped_mappings(env: Path):
    result = CliRunner().invoke(main, ["mappings", "validate"])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output


def test_mappings_validate_names_file_line_and_problem(env: Path):
    broken = env / "mappings"
    shutil.copytree(MAPPINGS, broken)
    hubspot = broken / "hubspot.yaml"
    hubspot.write_text(hubspot.read_text().replace("all_email: [product_news, offers]",
                                                   "all_email: [product_news, ofers]"))
    line = next(i for i, text in enumerate(hubspot.read_text().splitlines(), 1)
                if "ofers" in text)
    result = CliRunner().invoke(main, ["mappings", "validate", "--dir", str(broken)])
    assert result.exit_code == 1
    assert f"hubspot.yaml:{line}: purpose 'ofers' does not exist" in result.output
    assert "Error: 1 error(s)" in result.output


def test_mappings_validate_reports_broken_yaml_with_its_line(env: Path):
    broken = env / "mappings"
    shutil.copytree(MAPPINGS, broken)
    (broken / "salesforce.yaml").write_text("system: salesforce\nconsent: [unclosed\n")
    result = CliRunner().invoke(main, ["mappings", "validate", "--dir", str(broken)])
    assert result.exit_code == 1 and "salesforce.yaml:3: not valid YAML" in result.output


def test_the_service_refuses_to_start_on_invalid_mappings(env: Path,
                                                          monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PRIVASYNC_MAPPINGS_DIR", str(env / "nowhere"))
    result = CliRunner().invoke(main, ["scheduler"])
    assert result.exit_code == 2 and "does not exist: set PRIVASYNC_MAPPINGS_DIR" in result.output


def test_a_partner_secret_missing_from_the_environment_is_named(env: Path):
    result = CliRunner().invoke(main, ["scheduler"])
    assert result.exit_code == 2
    assert "PRIVASYNC_PARTNER_CONTACT_CENTRE_SECRET" in result.output


def test_worker_without_a_broker_url_explains_what_to_do(env: Path,
                                                         monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PRIVASYNC_PARTNER_CONTACT_CENTRE_SECRET", "s3cret-for-test")
    result = CliRunner().invoke(main, ["worker"])
    assert result.exit_code == 2 and "PRIVASYNC_BROKER_URL" in result.output


def test_invalid_settings_name_the_variable_not_the_value(env: Path,
                                                          monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PRIVASYNC_WORKER__THREADS", "lots")
    result = CliRunner().invoke(main, ["status"])
    assert result.exit_code == 2 and "PRIVASYNC_WORKER__THREADS" in result.output
    assert "lots" not in result.output


def test_audit_verify_passes_then_fails_after_tampering(env: Path, sqlite_url: str):
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO ledger_head (id, seq, hash) VALUES (1, 0, :h)"),
                     {"h": "0" * 64})
    from datetime import UTC, datetime

    from core import ledger

    with engine.begin() as conn:
        ledger.append(conn, at=datetime(2026, 1, 1, tzinfo=UTC), kind="test.entry")
        ledger.append(conn, at=datetime(2026, 1, 2, tzinfo=UTC), kind="test.entry")
    waiting = CliRunner().invoke(main, ["audit", "verify"])
    assert "2 newer entries wait to be chained" in waiting.output
    with engine.begin() as conn:
        ledger.chain(conn)
    ok = CliRunner().invoke(main, ["audit", "verify"])
    assert ok.exit_code == 0 and "2 entries, chain verified" in ok.output
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM ledger WHERE seq = 1"))
    broken = CliRunner().invoke(main, ["audit", "verify"])
    assert broken.exit_code == 1
    assert "BROKEN at entry 1: the entry is missing" in broken.output  # not its successor
    assert "0 of 2 entries before it are intact" in broken.output


def test_debug_logging_never_lets_vendor_clients_log_bodies():
    import logging

    from privasync.cli.main import configure_logging

    before = logging.getLevelName(logging.getLogger().level)
    try:
        configure_logging("DEBUG")
        assert logging.getLogger("privasync.worker").isEnabledFor(logging.DEBUG)
        for name in ("hubspot.crm.contacts.rest", "urllib3.connectionpool",
                     "simple_salesforce.api"):
            assert not logging.getLogger(name).isEnabledFor(logging.DEBUG), name
    finally:
        configure_logging(before)


def test_mappings_validate_warns_of_empty_files_and_systems_not_configured(
        env: Path, monkeypatch: pytest.MonkeyPatch):
    mine = env / "mappings"
    shutil.copytree(MAPPINGS, mine)
    (mine / "zendesk.yaml").write_text("# nothing here yet\n")
    monkeypatch.setenv("PRIVASYNC_HUBSPOT__ACCESS_TOKEN", "pat-configured")
    monkeypatch.setenv("PRIVASYNC_MAILCHIMP__API_KEY", "key-us6")
    monkeypatch.setenv("PRIVASYNC_MAILCHIMP__LIST_ID", "list")
    result = CliRunner().invoke(main, ["mappings", "validate", "--dir", str(mine)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output  # warnings only
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: zendesk.yaml is empty: it maps no system",
        "warning: salesforce is mapped but not configured (set "
        "PRIVASYNC_SALESFORCE__INSTANCE_URL); until then nothing syncs with it",
        "warning: partner contact_centre: PRIVASYNC_PARTNER_CONTACT_CENTRE_SECRET is not set, "
        "so serve will not start; set it, or remove the partner from partners.yaml"]
    assert result.output.rstrip().endswith("valid")


def test_mappings_validate_warns_of_a_system_privasync_has_no_connector_for(
        env: Path, monkeypatch: pytest.MonkeyPatch):
    mine = env / "mappings"
    shutil.copytree(MAPPINGS, mine)
    (mine / "zendesk.yaml").write_text("system: zendesk\npurposes: [service]\n")
    monkeypatch.setenv("PRIVASYNC_PARTNER_CONTACT_CENTRE_SECRET", "set")
    result = CliRunner().invoke(main, ["mappings", "validate", "--dir", str(mine)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "warning: zendesk: privasync has no connector for this system" in result.output


def test_a_missing_mappings_directory_is_one_line_and_exit_2(env: Path):
    result = CliRunner().invoke(main, ["mappings", "validate", "--dir", str(env / "nowhere")],
                                catch_exceptions=False)
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"Error: mappings directory {env / 'nowhere'} does not exist: set "
        "PRIVASYNC_MAPPINGS_DIR (or --dir) to the directory holding purposes.yaml"]
