"""``privasync requests evidence --verify FILE`` checks a pack offline: a pack made by
the real command holds; one byte changed in any part is caught and named (exit 1); a
file that is not a pack is refused in one line (exit 2)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from core.errors import NotFound
from core.ledger import Entry, chain
from privasync.app.evidence import evidence
from privasync.cli.context import build as _build
from privasync.cli.main import main
from tests.timing import wait_until

MAPPINGS = Path(__file__).parents[2] / "mappings"
PERSON = "ana.evidence@example.org"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def pack(tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A pack written by ``privasync requests evidence`` for an applied erasure request."""
    monkeypatch.setenv("PRIVASYNC_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("PRIVASYNC_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("PRIVASYNC_MAPPINGS_DIR", str(MAPPINGS))
    monkeypatch.setenv("PRIVASYNC_PARTNER_CONTACT_CENTRE_SECRET", "partner-secret")
    created = run("requests", "create", "--kind", "erasure", "--email", PERSON,
                  "--identity", "verified", "--format", "json")
    assert created.exit_code == 0, created.output
    request_id = json.loads(created.stdout)["id"]
    container = _build()
    try:
        def chained() -> bool:
            container.applier.tick()
            entries = evidence(container, request_id)["entries"]
            return bool(entries) and all(e["seq"] is not None for e in entries)
        wait_until("the applier chains the request's entries", chained, tolerate=(NotFound,))
    finally:
        container.close()
    out = tmp_path / "pack.json"
    made = run("requests", "evidence", request_id, "--out", str(out))
    assert made.exit_code == 0, made.output
    return out


def test_a_pack_made_by_the_real_command_holds(pack: Path):
    checked = run("requests", "evidence", "--verify", str(pack))
    assert checked.exit_code == 0, checked.output
    assert [line.split()[0] for line in checked.stdout.splitlines()[:5]] == ["holds"] * 5
    made = json.loads(pack.read_text())
    assert made["canonicalization"] == "RFC 8785" and made["entries"]
    assert PERSON not in pack.read_text()


def _entry(part: str) -> Callable[[dict[str, Any]], None]:
    def change(made: dict[str, Any]) -> None:
        first = made["entries"][0]
        first[part] = _flip(first[part])
    return change


def _flip(text: str) -> str:
    """One character changed (a hex digit or a letter stays one)."""
    return text[:-1] + ("0" if text[-1] != "0" else "1")


def _detail(made: dict[str, Any]) -> None:
    detail = made["entries"][0]["detail"]
    detail["request"] = _flip(detail["request"])


def _segment(made: dict[str, Any]) -> None:
    made["segment"][0]["at"] = _flip(made["segment"][0]["at"])


def _request(made: dict[str, Any]) -> None:
    made["request"]["status"] = _flip(made["request"]["status"])


def _top(part: str) -> Callable[[dict[str, Any]], None]:
    def change(made: dict[str, Any]) -> None:
        made[part] = _flip(made[part])
    return change


def _digest(made: dict[str, Any]) -> None:
    made["digests"]["segment"] = _flip(made["digests"]["segment"])


@pytest.mark.parametrize(("change", "named"), [
    (_detail, "does not hash to its detail_sha256"),
    (_entry("detail_sha256"), "does not hash to its detail_sha256"),
    (_entry("hash"), "its hash differs from the segment's"),
    (_entry("prev_hash"), "its prev_hash differs from the segment's"),
    (_segment, "its at differs from the segment's"),
    (_request, "part 'request' does not match its digest"),
    (_top("how_to_check"), "part 'how_to_check' does not match its digest"),
    (_top("generated_at"), "part 'generated_at' does not match its digest"),
    (_digest, "part 'segment' does not match its digest"),
    (_top("canonicalization"), "this checker knows RFC 8785"),
], ids=["detail", "detail_sha256", "entry hash", "entry prev_hash", "segment", "request",
        "how_to_check", "generated_at", "digests", "canonicalization"])
def test_one_changed_byte_in_any_part_is_caught_and_named(
        pack: Path, change: Callable[[dict[str, Any]], None], named: str):
    made = json.loads(pack.read_text())
    change(made)
    pack.write_text(json.dumps(made, indent=2))
    checked = run("requests", "evidence", "--verify", str(pack))
    assert checked.exit_code == 1, checked.output
    assert "FAILS" in checked.stdout
    assert checked.stderr.startswith("BROKEN: ") and named in checked.stderr


def test_an_entry_changed_alike_in_entries_and_segment_breaks_the_chain_there(pack: Path):
    made = json.loads(pack.read_text())
    last = made["segment"][-1]
    last["kind"] = _flip(last["kind"])
    for e in made["entries"]:
        if e["seq"] == last["seq"]:
            e["kind"] = last["kind"]
    pack.write_text(json.dumps(made))
    checked = run("requests", "evidence", "--verify", str(pack))
    assert checked.exit_code == 1
    assert f"BROKEN: entry {last['seq']} ({last['kind']}): its hash is not the hash" in \
        checked.stderr


@pytest.mark.parametrize(("content", "said"), [
    ("{not json", "is not JSON (line 1)"),
    ('{"request": {}, "entries": "none"}', "is not an evidence pack"),
    ("[1, 2, 3]", "is not an evidence pack"),
    ("\udcff", "is not JSON"),
])
def test_a_file_that_is_not_a_pack_is_refused_in_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str, said: str):
    monkeypatch.setenv("PRIVASYNC_DATABASE_URL", f"sqlite:///{tmp_path}/never/made.db")
    path = tmp_path / "file.json"
    path.write_bytes(content.encode("utf-8", "surrogateescape"))
    checked = run("requests", "evidence", "--verify", str(path))
    assert checked.exit_code == 2, checked.output
    assert said in checked.output and len(checked.output.strip().splitlines()) == 1
    assert "Traceback" not in checked.output
    assert not (tmp_path / "never").exists()  # no database was opened


def test_a_missing_file_and_a_mixed_call_are_refused_in_one_line(tmp_path: Path):
    missing = run("requests", "evidence", "--verify", str(tmp_path / "nothing.json"))
    assert missing.exit_code == 2 and "cannot read" in missing.output
    both = run("requests", "evidence", "some-id", "--verify", str(tmp_path / "x.json"))
    assert both.exit_code == 2 and "--verify FILE alone" in both.output


def test_an_entry_stored_before_rfc_8785_is_shown_with_its_stored_text_and_holds(pack: Path):
    made = json.loads(pack.read_text())
    request_id, subject_id = made["request"]["id"], made["entries"][0]["subject_id"]
    legacy = json.dumps({"request": request_id, "step": "older"}, sort_keys=True).encode()
    container = _build()
    try:
        with container.engine.begin() as conn:
            chain(conn, [Entry(datetime.now(UTC), "request.note", subject_id, legacy)])
    finally:
        container.close()
    again = run("requests", "evidence", request_id, "--out", str(pack))
    assert again.exit_code == 0, again.output
    older = json.loads(pack.read_text())["entries"][-1]
    assert older["detail_stored"] == legacy.decode()
    checked = run("requests", "evidence", "--verify", str(pack))
    assert checked.exit_code == 0, checked.output
