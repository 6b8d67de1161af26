"""Admin tools: the data map, explain, and a diff with counts of people affected."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from core.db import make_engine
from core.model import (
    Channel,
    ConsentChange,
    ConsentChanged,
    ConsentStatus,
    EventMeta,
    Evidence,
    SubjectHint,
)
from privasync.cli.main import main
from tests.core.conftest import make_core

MAPPINGS = Path(__file__).parents[2] / "mappings"


@pytest.fixture
def env(tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PRIVASYNC_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("PRIVASYNC_MAPPINGS_DIR", str(MAPPINGS))
    return tmp_path


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args))


def test_show_json_is_the_data_map_for_tools(env: Path):
    result = run("mappings", "show", "--format", "json")
    assert result.exit_code == 0
    rows = {(r["field"], r["destination"]): r for r in json.loads(result.output)}
    assert rows[("date_of_birth", "mailchimp")]["purposes"] == {}
    assert rows[("health_note", "salesforce")] == {
        "field": "health_note", "category": "user.health_and_medical", "special": True,
        "destination": "salesforce", "purposes": {"service": "customer + explicit consent"}}
    assert rows[("product_interests", "partner:contact_centre")]["purposes"] == {
        "offers": "consent"}


def test_show_table_lists_each_field_and_where_it_may_go(env: Path):
    result = run("mappings", "show")
    assert result.exit_code == 0 and "health_note (Art. 9)" in result.output
    lines = [line.split() for line in result.output.splitlines()]
    assert ["field", "destination", "flows", "when"] in lines
    assert any(line[-3:] == ["partner:contact_centre", "offers:", "consent"] for line in lines)


def test_explain_says_why_a_date_of_birth_never_reaches_mailchimp(env: Path):
    result = run("mappings", "explain", "hubspot.date_of_birth", "--to", "mailchimp")
    assert result.exit_code == 1
    assert "collected for: age_check" in result.output
    assert "does not flow: no purpose in common" in result.output


def test_explain_for_a_subject_uses_their_consent(env: Path, sqlite_url: str):
    subject = _store_people(sqlite_url, 1, granted=False)[0]
    result = run("mappings", "explain", "hubspot.product_interests", "--to",
                 "partner:contact_centre", "--subject", subject)
    assert result.exit_code == 1
    assert f"subject {subject}, offers: blocked: consent_withdrawn" in result.output


def test_explain_rejects_an_unknown_field_or_destination(env: Path):
    assert run("mappings", "explain", "hubspot.shoe_size", "--to", "mailchimp").exit_code == 2
    assert "unknown destination" in run("mappings", "explain", "hubspot.firstname", "--to",
                                        "fax").output


def _store_people(url: str, n: int, granted: bool) -> list[str]:
    engine = make_engine(url)
    core = make_core(engine)
    status = ConsentStatus.GRANTED if granted else ConsentStatus.WITHDRAWN
    now = datetime(2026, 11, 1, tzinfo=UTC)
    core.accept([ConsentChanged(
        EventMeta("test", f"e{i}", now), SubjectHint(email=f"p{i}@example.org"),
        (ConsentChange("offers", Channel.EMAIL, status),),
        Evidence("web", "form", "v1", f"proof-{i}") if granted else None) for i in range(n)], now)
    with engine.connect() as conn:
        return [core.identity.by_email(conn, f"p{i}@example.org") or "" for i in range(n)]


def test_diff_names_what_would_start_flowing_and_counts_the_people(env: Path,
                                                                   sqlite_url: str):
    _store_people(sqlite_url, 3, granted=True)
    new = env / "new"
    shutil.copytree(MAPPINGS, new)
    mailchimp = new / "mailchimp.yaml"
    mailchimp.write_text(mailchimp.read_text().replace(
        "purposes: [product_news, offers]\nconsent", "purposes: [product_news]\nconsent"))
    result = run("mappings", "diff", str(MAPPINGS), str(new))
    assert result.exit_code == 1, result.output  # something would change: CI can gate on it
    assert ("product_interests -> mailchimp: offers: consent  =>  -  "
            "[0 people start, 3 stop, of 3]") in result.output


def test_diff_of_identical_mappings_says_so(env: Path):
    result = run("mappings", "diff", str(MAPPINGS), str(MAPPINGS), "--no-subjects")
    assert result.exit_code == 0 and "no change in what flows where" in result.output
