"""The CLI's one output layer: the same --format choices everywhere, tables whole on a pipe,
CSV for listings, progress on stderr only for a terminal, and a start-up that loads no
database driver."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from privasync.cli import output
from privasync.cli.main import main

MAPPINGS = Path(__file__).parents[2] / "mappings"
FILE_FORMATS = {"requests export"}  # --format there is the file's (json, markdown)


@pytest.fixture
def env(tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PRIVASYNC_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("PRIVASYNC_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("PRIVASYNC_MAPPINGS_DIR", str(MAPPINGS))
    monkeypatch.setenv("PRIVASYNC_HUBSPOT__ACCESS_TOKEN", "pat-do-not-print")
    return tmp_path


def _commands(group: click.Group, prefix: str = "") -> dict[str, click.Command]:
    found: dict[str, click.Command] = {}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found |= _commands(command, f"{prefix}{name} ")
        else:
            found[prefix + name] = command
    return found


def test_every_format_option_offers_table_and_json_and_csv_only_for_listings():
    offered = {}
    for name, command in _commands(main).items():
        for param in command.params:
            if param.name == "fmt" and name not in FILE_FORMATS:
                assert isinstance(param.type, click.Choice), name
                offered[name] = tuple(param.type.choices)
                assert param.default == "table", name
    assert set(offered.values()) == {("table", "json"), ("table", "json", "csv")}, offered
    assert {n for n, c in offered.items() if "csv" in c} == {
        "config show", "jobs list", "requests list", "tokens list"}
    assert len(offered) >= 11


def test_text_is_still_the_table_for_scripts_that_pass_it(env: Path):
    table = CliRunner().invoke(main, ["config", "show"])
    text = CliRunner().invoke(main, ["config", "show", "--format", "text"])
    assert table.exit_code == text.exit_code == 0, text.output
    assert text.stdout == table.stdout


def test_config_show_as_csv_has_the_table_columns_and_masks_secrets(env: Path):
    result = CliRunner().invoke(main, ["config", "show", "--format", "csv"])
    assert result.exit_code == 0, result.output
    found = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(found[0]) == ["variable", "value", "origin"]
    by_name = {r["variable"]: r for r in found}
    assert by_name["PRIVASYNC_HUBSPOT__ACCESS_TOKEN"]["value"] == "********"
    assert "pat-do-not-print" not in result.output


def test_a_table_on_a_pipe_is_never_wrapped_or_cut(capsys: pytest.CaptureFixture[str]):
    long = "x" * 300
    output.table(["id", output.Column("n", numeric=True), "note"], [("a", 1, long),
                                                                   ("b", 22, "[env]")])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split() for line in lines] == [["id", "n", "note"], ["a", "1", long],
                                               ["b", "22", "[env]"]]
    assert all(line == line.rstrip() for line in lines)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_shows_on_a_terminal_and_stays_off_a_pipe(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    with output.progress("re-wrapping every key", total=3) as advance:
        advance(3)
    assert capsys.readouterr() == ("", "")
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with output.progress("re-wrapping every key", total=3) as advance:
        advance(3)
    assert "re-wrapping every key" in terminal.getvalue()
    assert capsys.readouterr().out == ""


def test_help_loads_no_database_driver_settings_or_logging_library():
    probe = ("import sys\nfrom privasync.cli.main import main\n"
             "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in ('sqlalchemy', 'pydantic', 'structlog', 'dramatiq', "
             "'rich', 'hubspot', 'simple_salesforce') if m in sys.modules))")
    ran = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True)
    assert ran.stdout.splitlines()[-1] == "[]", ran.stdout
