"""`make demo` runs the main job on the embedded default and exits 0; the database URL it
prints is one the CLI can read."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from privasync.cli.main import main
from privasync.demo.run import run_demo


def test_the_demo_shows_every_system_catching_up_and_exits_0(capsys,  # type: ignore[no-untyped-def]
                                                              monkeypatch: pytest.MonkeyPatch):
    assert run_demo(2) == 0
    out = capsys.readouterr().out
    for system in ("Salesforce", "Mailchimp", "Partner"):
        assert any(line.strip().startswith(f"✔ {system}") and "caught up after" in line
                   for line in out.splitlines()), system
    assert "caused 0 new job(s)" in out and "chain verified" in out
    assert "customer1@example.com" not in out  # the demo masks addresses

    url = re.search(r"export PRIVASYNC_DATABASE_URL=(\S+)", out)
    assert url is not None, out
    monkeypatch.setenv("PRIVASYNC_DATABASE_URL", url[1])
    var = re.search(r"export PRIVASYNC_VAR_DIR=(\S+)", out)
    assert var is not None, out
    monkeypatch.setenv("PRIVASYNC_VAR_DIR", var[1])
    runner = CliRunner()
    status = runner.invoke(main, ["status"], catch_exceptions=False)
    assert status.exit_code == 0, status.output
    assert re.search(r"^mailchimp\s+done\s+1$", status.output,
                     re.M), status.output
    verified = runner.invoke(main, ["audit", "verify"], catch_exceptions=False)
    assert verified.exit_code == 0 and "chain verified" in verified.output, verified.output
    # Listing requests reads the database alone: no partner secret needed.
    listed = runner.invoke(main, ["requests", "list"], catch_exceptions=False)
    assert listed.exit_code == 0, listed.output
    # A command that opens subject keys needs the demo's KEK, found through its var dir
    # (and, building every connector, the shipped partner's secret, as README says).
    monkeypatch.setenv("PRIVASYNC_PARTNER_CONTACT_CENTRE_SECRET", "demo-partner-secret")
    shown = runner.invoke(main, ["requests", "show", "no-such-request"],
                          catch_exceptions=False)
    assert shown.exit_code == 2 and "no such request" in shown.output, shown.output
